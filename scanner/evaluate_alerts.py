"""Measure topic alerts: precision and recall of alerted developments against subscriptions-dev.json.

Run on a database that holds the labelled developments (e.g. the example site crawled and analysed):
`python -m scanner.evaluate_alerts --db scanner.db /work/shared/eval [--json] [--sweep]`.
Every development counts as eligible (as with an unlimited `--backfill`); the subscription's
jurisdiction filter applies as in production. Micro-averaged over all subscriptions.
Also reported: the best-F1 threshold in-sample and leave-one-subscription-out figures (each
subscription alerted at the threshold calibrated on the others), the honest estimate for new topics.
`scanner.evaluate` (the quality harness) calls `alert_quality`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .alerts import DEFAULT_THRESHOLD, TopicScorer
from .store import Store


def dev_ids_by_title(store: Store, items: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    """Development row id → labelled item id, matched on whitespace-normalised title."""
    by_title = {_norm(i["title"]): i["id"] for i in items}
    return {r["id"]: by_title[_norm(r["title"] or "")] for r in store.developments.list() if _norm(r["title"] or "") in by_title}


def alert_quality(
    store: Store,
    subscriptions: Sequence[Mapping[str, Any]],
    dev_ids: Mapping[int, str],
    *,
    threshold: float | None = None,
    sweep: Iterable[float] = (),
) -> dict[str, Any]:
    """Precision/recall of alerts for `subscriptions` (`{"name","topic","jurisdictions","expected"}`).

    `dev_ids` maps development row ids to labelled ids (see `dev_ids_by_title`); unmapped
    developments still count as false alerts when they alert. `sweep` adds P/R at other thresholds.
    """
    scorer = TopicScorer(store)
    rows = store.developments.list()
    scored = []
    for sub in subscriptions:
        allowed = {j.upper() for j in sub.get("jurisdictions") or []}
        scores = scorer.scores(sub["topic"])
        for row in rows:
            if allowed and (row["jurisdiction"] or "").upper() not in allowed:
                continue
            label = dev_ids.get(row["id"], f"row-{row['id']}")
            scored.append((sub["name"], label, scores[row["id"]], label in sub["expected"]))
    expected = sum(len(s["expected"]) for s in subscriptions)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    result = {"threshold": threshold, **_pr(scored, threshold, expected), "subscriptions": {}}
    for sub in subscriptions:
        mine = [s for s in scored if s[0] == sub["name"]]
        alerted = [s[1] for s in mine if s[2] >= threshold]
        result["subscriptions"][sub["name"]] = {
            **_pr(mine, threshold, len(sub["expected"])),
            "missed": sorted(set(sub["expected"]) - set(alerted)),
            "false": sorted(a for a in alerted if a not in sub["expected"]),
        }
    result["sweep"] = {f"{t:.2f}": _pr(scored, t, expected) for t in sweep}
    result["calibrated"] = {"threshold": round(calibrate(scored, expected), 4),
                            **_pr(scored, calibrate(scored, expected), expected)}
    result["leave_one_out"] = leave_one_out(scored, subscriptions)
    return result


def calibrate(scored: Sequence[tuple[str, str, float, bool]], expected: int) -> float:
    """The threshold with the best F1 on `scored`: midway between the lowest alerted score and the next below.

    Taking the middle of the gap (not the lowest alerted score itself) keeps a threshold
    calibrated on some subscriptions from sitting right on one of their developments.
    """
    values = sorted({s[2] for s in scored}, reverse=True)
    if not values:
        return DEFAULT_THRESHOLD
    best = max(range(len(values)), key=lambda i: (_f1(_pr(scored, values[i], expected)), -i))
    below = values[best + 1] if best + 1 < len(values) else 0.0
    return (values[best] + below) / 2


def leave_one_out(scored: Sequence[tuple[str, str, float, bool]], subscriptions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Honest P/R: each subscription is alerted at the threshold `calibrate` picks on the other ones."""
    expected = {s["name"]: len(s["expected"]) for s in subscriptions}
    alerted = hits = 0
    thresholds = {}
    for name in expected:
        rest = [s for s in scored if s[0] != name]
        threshold = calibrate(rest, sum(n for other, n in expected.items() if other != name))
        thresholds[name] = round(threshold, 4)
        mine = [s for s in scored if s[0] == name and s[2] >= threshold]
        alerted += len(mine)
        hits += sum(s[3] for s in mine)
    total = sum(expected.values())
    return {"precision": round(hits / alerted, 4) if alerted else 1.0, "recall": round(hits / total, 4) if total else 1.0,
            "alerts": alerted, "thresholds": thresholds}


def _f1(pr: Mapping[str, float]) -> float:
    p, r = pr["precision"], pr["recall"]
    return 2 * p * r / (p + r) if p + r else 0.0


def _pr(scored: Sequence[tuple[str, str, float, bool]], threshold: float, expected: int) -> dict[str, float]:
    alerted = [s for s in scored if s[2] >= threshold]
    hits = sum(s[3] for s in alerted)
    return {"precision": round(hits / len(alerted), 4) if alerted else 1.0,
            "recall": round(hits / expected, 4) if expected else 1.0, "alerts": len(alerted)}


def _norm(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip().casefold()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanner.evaluate_alerts", description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path, help="folder with dev.jsonl and subscriptions-dev.json")
    parser.add_argument("--db", type=Path, required=True, help="a scan database holding the dev developments")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sweep", action="store_true", help="also report thresholds 0.05 … 0.95")
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    items = [json.loads(line) for line in (args.eval_dir / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    subscriptions = json.loads((args.eval_dir / "subscriptions-dev.json").read_text(encoding="utf-8"))
    with Store.open(args.db, readonly=True) as store:
        result = alert_quality(store, subscriptions, dev_ids_by_title(store, items),
                               sweep=[i / 20 for i in range(1, 20)] if args.sweep else ())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"alerts @ {result['threshold']}: precision {result['precision']:.3f} recall {result['recall']:.3f} ({result['alerts']} alerts)")
    for name, sub in result["subscriptions"].items():
        print(f"  {name:38s} P {sub['precision']:.2f} R {sub['recall']:.2f}  missed {sub['missed']}  false {sub['false']}")
    cal, loo = result["calibrated"], result["leave_one_out"]
    print(f"best-F1 threshold {cal['threshold']}: P {cal['precision']:.3f} R {cal['recall']:.3f} ({cal['alerts']} alerts); "
          f"leave-one-subscription-out: P {loo['precision']:.3f} R {loo['recall']:.3f} ({loo['alerts']} alerts)")
    for t, pr in result["sweep"].items():
        print(f"  threshold {t}: P {pr['precision']:.3f} R {pr['recall']:.3f} ({pr['alerts']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
