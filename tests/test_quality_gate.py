"""Quality gate: what `scan` stores and serves for the example site must not fall below pinned floors.

In the style of trafilatura's `tests/eval_gate.py`: floors live in `tests/quality_baseline.json`
a small margin below the measured values, beside a hash of the eval corpus they were measured
on. The session's `analysed_site` database (the 60 labelled developments crawled from the
served example site and analysed) is measured with `scanner.evaluate.store_quality`, the same
function the full harness (`python -m scanner.evaluate`) reports.

Re-pin after a deliberate change:  SCAN_PIN_QUALITY=1 pytest tests/test_quality_gate.py
Lowering a floor also needs         SCAN_ALLOW_REGRESSION=1 (say why in the commit).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from scanner.evaluate import BUNDLED_EVAL, eval_corpus_hash, label_ids, read_jsonl, store_quality
from scanner.store import Store

pytestmark = pytest.mark.timeout(1200)  # the first user of `analysed_site` pays for crawl + analyse

BASELINE = Path(__file__).with_name("quality_baseline.json")
MARGIN = 0.02
"""Noise allowance below the measured value (a floor) or above it (a ceiling)."""
HIGHER_IS_BETTER = ("search.scan", "attached.ndcg@5", "attached.recall@5", "attached.precision")
LOWER_IS_BETTER = ("attached.irrelevant_with_clauses",)


@pytest.fixture(scope="module")
def measured(analysed_site, tmp_path_factory) -> dict[str, Any]:
    from scanner.config import load_config

    config = load_config(analysed_site.copy_to(tmp_path_factory.mktemp("gate")))
    with Store.open(config.database) as store:
        labels = label_ids(store, read_jsonl(BUNDLED_EVAL / "dev.jsonl"))
        return store_quality(store, BUNDLED_EVAL, labels)


def flatten(result: dict[str, Any]) -> dict[str, float]:
    return {name: float(result[name.split(".")[0]][name.split(".")[1]]) for name in HIGHER_IS_BETTER + LOWER_IS_BETTER}


def test_every_labelled_development_is_in_the_measured_store(measured: dict[str, Any]) -> None:
    assert measured["developments_labelled"] == len(read_jsonl(BUNDLED_EVAL / "dev.jsonl"))


def test_quality_does_not_fall_below_the_pinned_floors(measured: dict[str, Any]) -> None:
    values = flatten(measured)
    if os.environ.get("SCAN_PIN_QUALITY"):
        pin(values)
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))
    assert baseline["corpus_sha256"] == eval_corpus_hash(BUNDLED_EVAL), (
        "the eval corpus changed since the floors were pinned: re-measure and re-pin "
        "(SCAN_PIN_QUALITY=1 pytest tests/test_quality_gate.py)")
    failures = []
    for name, floor in baseline["floors"].items():
        if values[name] < floor:
            failures.append(f"{name}: {values[name]:.3f} < floor {floor:.3f}")
    for name, ceiling in baseline["ceilings"].items():
        if values[name] > ceiling:
            failures.append(f"{name}: {values[name]:.3f} > ceiling {ceiling:.3f}")
    assert not failures, "quality regressed: " + "; ".join(failures) + f" (measured {values})"


def pin(values: dict[str, float]) -> None:
    """Write floors/ceilings MARGIN away from `values`, atomically; refuse to loosen without consent."""
    old = json.loads(BASELINE.read_text(encoding="utf-8")) if BASELINE.exists() else {"floors": {}, "ceilings": {}}
    floors = {n: math.floor((values[n] - MARGIN) * 1000) / 1000 for n in HIGHER_IS_BETTER}
    ceilings = {n: math.ceil((values[n] + MARGIN) * 1000) / 1000 for n in LOWER_IS_BETTER}
    looser = [n for n, v in floors.items() if v < old["floors"].get(n, -math.inf)]
    looser += [n for n, v in ceilings.items() if v > old["ceilings"].get(n, math.inf)]
    if looser and not os.environ.get("SCAN_ALLOW_REGRESSION"):
        pytest.fail(f"pinning would loosen {', '.join(looser)}; set SCAN_ALLOW_REGRESSION=1 if that is intended")
    data = {"corpus_sha256": eval_corpus_hash(BUNDLED_EVAL), "margin": MARGIN,
            "measured": {n: round(v, 4) for n, v in values.items()}, "floors": floors, "ceilings": ceilings}
    tmp = BASELINE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, BASELINE)
