"""The web workspace's page render times at 10k developments, beside the CLI answering the same question.

The database is bench/search.py's builder (real texts recombined, real e5 chunk vectors plus noise),
grown to ~10k developments (`--quick`: its 10k-chunk size, ~2k developments), with the demo policy
corpus mirrored in as `analyse` mirrors it, every development given 0-3 attached clauses (scores and
evidence sentences from its own text, as matching stores them), and key dates on one in ten.

A real uvicorn server on 127.0.0.1 serves `scanner.web.create_app`; each page is fetched over HTTP
with httpx, warm (after one untimed request), so times include routing, the store opened per
request, the library calls, template rendering and the socket.

Figures:
- `web.home_p50_ms`, `web.development_p50_ms`, `web.clause_p50_ms`, `web.deadlines_p50_ms`: page p50
  (target <= 100 ms). Baseline: the same library call in process (what the page adds is rendering
  and HTTP); for the clause page, `scan clause ID --json` in a fresh process (what a user waits for
  at the terminal).
- `web.search_p50_ms`: `/search?q=…` over the dev queries (target <= 200 ms); baseline: `scan search
  --json` for the same query in a fresh process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, Result, child_env, percentile, ratio, say

TARGET_PAGE_MS = 100.0
TARGET_SEARCH_MS = 200.0
CHUNKS = {"quick": 10_000, "full": 70_000}
"""Chunks to build: bench/search.py's items average ~7 chunks, so 70k chunks are ~10k developments."""
QUERIES_FILE = ROOT / "scanner" / "data" / "eval" / "queries-dev.jsonl"


def run(quick: bool) -> list[Result]:
    from bench import search as search_bench

    queries = [json.loads(line)["query"] for line in QUERIES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = queries[:8] if quick else queries[:20]
    reps = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="scan-bench-web-") as tmp:
        folder = Path(tmp)
        pool = search_bench._vector_pool(48 if quick else 200)
        say(f"[web] building a {CHUNKS['quick' if quick else 'full']:,}-chunk database")
        build_s, devs = search_bench._build(folder / "web.db", CHUNKS["quick" if quick else "full"], pool)
        config_path = _workspace(folder, folder / "web.db")
        say(f"[web] {devs:,} developments in {build_s:.0f}s; clauses, matches and dates added; serving")
        return _measure(config_path, queries, reps, devs)


def _workspace(folder: Path, db: Path) -> Path:
    """Config + corpus for the bench database; clauses mirrored, matches and dates stored as analyse would."""
    from scanner.analyse import sync_corpus
    from scanner.config import load_config
    from scanner.demo_site import write_policies
    from scanner.store import Store

    write_policies(folder / "policies")
    config_path = folder / "sources.yaml"
    config_path.write_text(f"database: {db.name}\npolicies: policies/\nsources: []\n", encoding="utf-8")
    config = load_config(config_path)
    rng = np.random.default_rng(5)
    with Store.open(db) as store:
        clauses, fingerprint = sync_corpus(config, store)
        ids = [c.id for c in clauses]
        weights = rng.dirichlet(np.ones(len(ids)) * 0.7)  # some clauses attract many developments, most few
        with store.atomic():
            for row in store.developments.list():
                sentences = [s.strip() for s in row["text"].replace("\n", " ").split(". ") if len(s.strip()) > 30]
                chosen = rng.choice(len(ids), size=int(rng.integers(0, 4)), replace=False, p=weights)
                matches = [{"clause_id": ids[i], "score": float(rng.uniform(0.45, 0.95)),
                            "evidence": sentences[int(rng.integers(len(sentences)))] if sentences else "", "tier": 1}
                           for i in chosen]
                store.vectors.save_matches(row["id"], row["content_hash"], fingerprint, sorted(matches, key=lambda m: -m["score"]))
                if rng.random() < 0.1:
                    day = f"2027-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
                    store.lifecycle.save_dates(row["id"], row["content_hash"], "bench", [
                        {"date": day, "type": ["comments_due", "effective", "compliance"][int(rng.integers(3))],
                         "phrase": f"by {day}"}])
    return config_path


def _measure(config_path: Path, queries: list[str], reps: int, devs: int) -> list[Result]:
    import httpx

    from scanner import developments
    from scanner.config import load_config
    from scanner.lifecycle import deadlines
    from scanner.store import Store
    from scanner.web import create_app
    from scanner.workspace import clause_view, clauses_overview

    config = load_config(config_path)
    with Store.open(config.database, readonly=True) as store:
        overview = clauses_overview(store)["clauses"]
        clause_id = max(overview, key=lambda r: len(store.vectors.developments_with_clause(r["id"])))["id"]
        attached = len(store.vectors.developments_with_clause(clause_id))
        sample = [r["uid"] for r in store.developments.list()[:: max(1, devs // 25)]][:25]
    say(f"[web] pages: clause {clause_id} ({attached} developments), {len(sample)} developments, {len(queries)} queries")
    from scanner.web.app import running

    results: list[Result] = []
    with running(create_app(config, read_only=False, token=None)) as base, httpx.Client(base_url=base, timeout=120) as client:
        def timed(paths: list[str]) -> list[float]:
            for path in paths[:3]:
                assert client.get(path).status_code == 200, path
            out = []
            for _ in range(reps):
                for path in paths:
                    started = time.perf_counter()
                    response = client.get(path)
                    out.append(time.perf_counter() - started)
                    assert response.status_code == 200, (path, response.status_code)
            return out

        pages = {
            "home": (["/"], lambda s: _home_library(s)),
            "development": ([f"/developments/{uid}" for uid in sample],
                            lambda s: [developments.as_json(s, [developments.find(s, uid)]) for uid in sample[:5]]),
            "clause": ([f"/clauses/{clause_id}"], lambda s: clause_view(s, clause_id)),
            "deadlines": (["/deadlines"], lambda s: deadlines(s, since=time.strftime("%Y-%m-%d"))),
        }
        for name, (paths, library) in pages.items():
            times = timed(paths)
            p50 = percentile(times, 0.5) * 1000
            lib = _library_ms(config, library, per=5 if name == "development" else 1)
            baseline, baseline_name = lib, "library call in process p50"
            notes = f"{len(times)} requests; p95 {percentile(times, 0.95) * 1000:.1f} ms"
            if name == "clause":
                cli = _cli_ms(config_path, ["clause", clause_id, "--json"])
                baseline, baseline_name = cli, "`scan clause --json` fresh process, median of 3"
                notes += f"; {attached} developments on the timeline; library call alone {lib:.1f} ms" if lib else ""
            elif name == "home":
                baseline_name = "its library calls in process p50 (what a page costs after each write)"
                notes += "; the page is cached until the database changes"
            results.append(Result(f"web.{name}_p50_ms", round(p50, 2), "ms", baseline=None if baseline is None else round(baseline, 2),
                                  baseline_name=baseline_name, ratio=ratio(p50, baseline), target=f"<= {TARGET_PAGE_MS:.0f} ms",
                                  ok=p50 <= TARGET_PAGE_MS, notes=notes))
        search_paths = ["/search?" + httpx.QueryParams({"q": q}).__str__() for q in queries]
        times = timed(search_paths)
        p50 = percentile(times, 0.5) * 1000
        cli = _cli_ms(config_path, ["search", queries[0], "--json"])
        results.append(Result("web.search_p50_ms", round(p50, 2), "ms", baseline=round(cli, 2) if cli else None,
                              baseline_name="`scan search --json` fresh process, median of 3", ratio=ratio(p50, cli),
                              target=f"<= {TARGET_SEARCH_MS:.0f} ms", ok=p50 <= TARGET_SEARCH_MS,
                              notes=f"{devs:,} developments; {len(times)} requests over {len(queries)} dev queries; "
                                    f"p95 {percentile(times, 0.95) * 1000:.1f} ms"))
    return results


def _home_library(store) -> object:
    from datetime import datetime, timedelta, timezone

    from scanner import developments
    from scanner.digest import last_complete_week
    from scanner.lifecycle import upcoming
    from scanner.workspace import review_queue

    today = datetime.now(timezone.utc).date()
    period = last_complete_week(today)
    rows = store.developments.list(since=period.start.isoformat(), until=period.end.isoformat())
    return (developments.as_json(store, rows), upcoming(store, 90, today=today), review_queue(store, limit=10, today=today),
            timedelta)


def _library_ms(config, fn, per: int = 1) -> float | None:
    from scanner.store import Store

    with Store.open(config.database, readonly=True) as store:
        if fn(store) is None:
            return None
        times = []
        for _ in range(5):
            started = time.perf_counter()
            fn(store)
            times.append((time.perf_counter() - started) / per)
    return statistics.median(times) * 1000


def _cli_ms(config_path: Path, args: list[str]) -> float | None:
    cmd = [sys.executable, "-m", "scanner", "--config", str(config_path), *args]  # this checkout's scan, as `scan` runs it
    times = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=child_env(), cwd=ROOT)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            say(f"[web] {' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-200:]}")
            return None
    return statistics.median(times) * 1000
