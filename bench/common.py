"""What the benchmarks share: results, timing, child processes with their peak RSS, and the big site.

Every figure is reported beside a baseline measured in the same run on the same machine, so a
busy machine slows both and the ratio stays meaningful. A `Result` is one such figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
"""Derived artefacts kept between runs (the ONNX export): never downloaded, always rebuilt if absent."""

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class Result:
    """One benchmark figure, its same-run baseline, and the target it is judged against.

    `ratio` is oriented so that bigger means "better than the baseline" only where `higher_is_better`;
    `ok` is None when there is no target or the figure could not be measured.
    """

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else (f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}")

        verdict = {True: "PASS", False: "MISS", None: "-"}[self.ok]
        base = f"  baseline {fmt(self.baseline)} {self.unit} ({self.baseline_name})" if self.baseline_name else ""
        ratio = f"  ratio {self.ratio:.3f}" if self.ratio is not None else ""
        target = f"  target {self.target}" if self.target else ""
        notes = f"\n      {self.notes}" if self.notes else ""
        return f"{verdict:4}  {self.name}: {fmt(self.value)} {self.unit}{base}{ratio}{target}{notes}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def say(message: str) -> None:
    """Progress goes to stderr so `--json` keeps stdout to one document."""
    print(message, file=sys.stderr, flush=True)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- child processes --------------------------------------------------------------------------

_RUSAGE_WRAPPER = """
import resource, subprocess, sys, json
proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)
kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.buffer.write(proc.stdout)
sys.stdout.write("\\n@@RUSAGE " + json.dumps({"rc": proc.returncode, "maxrss_kib": kib}) + "\\n")
"""


def run_child(args: Sequence[str], *, timeout: float | None = None) -> tuple[dict[str, Any], float]:
    """Run `python <args>` and return (its JSON stdout, its peak RSS in MiB).

    The peak is `getrusage(RUSAGE_CHILDREN).ru_maxrss` read in a fresh wrapper process whose only
    child is the one measured, so earlier children of this process cannot inflate it.
    stderr passes through (progress).
    """
    cmd = [sys.executable, "-c", _RUSAGE_WRAPPER, sys.executable, *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=timeout, cwd=ROOT, env=child_env())
    out = proc.stdout.decode("utf-8", "replace")
    body, _, tail = out.rpartition("@@RUSAGE ")
    usage = json.loads(tail)
    if usage["rc"] != 0:
        raise RuntimeError(f"child {' '.join(args)} exited {usage['rc']}:\n{body[-2000:]}")
    return json.loads(body), usage["maxrss_kib"] / 1024


def child_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def emit(data: dict[str, Any]) -> None:
    """A child's one JSON document on stdout."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


# --- a realistic site of N distinct developments ----------------------------------------------

_SYNONYMS = {
    "today": ["this week", "on Monday", "on Thursday"],
    "announced": ["said", "confirmed", "set out"],
    "company": ["firm", "business", "operator"],
    "consumers": ["customers", "buyers", "users"],
    "users": ["people using the service", "account holders", "members"],
    "require": ["oblige", "compel", "call on"],
    "requires": ["obliges", "compels", "calls on"],
    "new": ["fresh", "revised", "new"],
    "rules": ["requirements", "provisions", "rules"],
    "children": ["minors", "young people", "children"],
    "payments": ["transactions", "charges", "payments"],
    "platforms": ["services", "apps", "platforms"],
    "said": ["stated", "noted", "said"],
    "also": ["in addition", "further", "also"],
    "must": ["will have to", "are required to", "must"],
}
_TITLE_PREFIXES = ["", "Update: ", "Explainer: ", "Analysis: ", "Follow-up: ", "Briefing: ", "Q&A: ", "Recap: "]
_TITLE_SUFFIXES = ["", " (revised)", " — what changes", " — next steps", " (consultation stage)", " — second phase"]
_WORD = re.compile(r"\b(" + "|".join(map(re.escape, _SYNONYMS)) + r")\b")


def make_items(n: int, seed: int = 7) -> list[dict]:
    """`n` distinct developments made from the bundled labelled ones, for scale benchmarks.

    Each is one bundled item with its body paragraphs shuffled, one paragraph of another item of the
    same language spliced in (English: common words swapped for synonyms), a varied title and a
    publication date moved by up to a year; its source, kind, language and labels are the original's,
    so per-source feed sizes grow with N as a real archive does. Deterministic for a given seed.
    """
    from scanner.demo_site import load_dev_items

    rng = random.Random(seed)
    base = load_dev_items()
    by_lang: dict[str, list[dict]] = {}
    for item in base:
        by_lang.setdefault(item.get("lang") or "en", []).append(item)
    titles: set[str] = set()
    texts: set[str] = set()
    out = []
    for i in range(n):
        item = base[i % len(base)]
        round_ = i // len(base)
        paragraphs = [p for p in re.split(r"\n\s*\n", item["text"]) if p.strip()]
        lead, rest = paragraphs[:1], paragraphs[1:]
        if round_:
            rng.shuffle(rest)
            donors = [o for o in by_lang[item.get("lang") or "en"] if o["id"] != item["id"]]
            if donors:
                donor = rng.choice(donors)
                donor_paragraphs = [p for p in re.split(r"\n\s*\n", donor["text"]) if p.strip()]
                rest.insert(rng.randrange(len(rest) + 1), rng.choice(donor_paragraphs[1:] or donor_paragraphs))
            if rest and len(rest) > 3:
                rest.pop(rng.randrange(len(rest)))
        text = "\n\n".join(lead + rest)
        if round_ and (item.get("lang") or "en") == "en":
            text = _WORD.sub(lambda m: rng.choice(_SYNONYMS[m.group(1)]), text)
        if text in texts:  # a short item with nothing to shuffle: a reference line, as notices carry
            text += f"\n\nRef. {item['published'][:4]}/{i:05d}"
        texts.add(text)
        title = item["title"]
        if round_:
            title = (_TITLE_PREFIXES[round_ % len(_TITLE_PREFIXES)] + title
                     + _TITLE_SUFFIXES[(round_ // len(_TITLE_PREFIXES)) % len(_TITLE_SUFFIXES)])
        k = 2
        unique = title
        while unique in titles:
            unique, k = f"{title} (part {k})", k + 1
        titles.add(unique)
        published = _shift_date(item["published"], -rng.randrange(0, 365) if round_ else 0)
        out.append({**item, "id": f"g-{i:05d}", "title": unique, "text": text, "published": published})
    return out


def _shift_date(day: str, days: int) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def site_config(folder: Path, base_url: str, items: list[dict]) -> Path:
    """sources.yaml + policies for the demo site serving `items` at `base_url`, inside `folder`."""
    from scanner.demo_site import demo_config, write_policies

    write_policies(folder / "policies")
    path = folder / "sources.yaml"
    path.write_text(demo_config(base_url, items=items), encoding="utf-8")
    return path


@contextlib.contextmanager
def served_site(items: list[dict], prefix: str) -> Iterator[tuple[Any, Any, Any]]:
    """(config, open store, server) for `items` served on loopback in a temporary folder."""
    from scanner.config import load_config
    from scanner.demo_site import build_site, serve
    from scanner.store import Store

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp)
        (folder / "site").mkdir()
        with serve(folder / "site") as server:
            build_site(folder / "site", items, base_url=server.base_url)
            config = load_config(site_config(folder, server.base_url, items))
            with Store.open(config.database) as store:
                yield config, store, server


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "").strip()
        info["arch"] = fields.get("Architecture", "").strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info
