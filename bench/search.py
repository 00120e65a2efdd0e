"""Search latency at 10k and 100k stored chunks, and the CLI's start-up cost.

The databases are synthetic but shaped like real ones: developments made by `common.make_items`
(real texts, recombined), cut into chunks by `analyse.chunks_of`, written with the `Store` methods
the pipeline uses (`add_development`, `save_chunks`, `save_vectors`). Chunk vectors are real
multilingual-e5 encodes of a few hundred bundled chunks, each reused for the generated chunks of
the same source item and chunk position, plus Gaussian noise (sigma `NOISE` per dimension,
cosine to the original ~0.85) then re-normalised, so no two stored vectors are equal.

Figures:
- `search.p50_ms_10k` / `_100k` (and p95): warm `scanner.search.search()` over the dev queries,
  query encoding included; baseline: a plain FTS5 `MATCH` (terms OR-ed, bm25 order, limit 20) on
  the same database.
- `cli.help_s`: `scan --help` wall time minus `python -c pass` (median of several runs).
- `cli.search_cold_s`: `scan search --json "…"` end to end in a fresh process on the 10k database.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, Result, child_env, make_items, percentile, ratio, say

SIZES = {"10k": 10_000, "100k": 100_000}
NOISE = 0.03
TARGET_P50_MS = 50.0
TARGET_HELP_OVER_S = 0.3
TARGET_SEARCH_COLD_S = 1.5
QUERIES_FILE = ROOT / "scanner" / "data" / "eval" / "queries-dev.jsonl"


def run(quick: bool) -> list[Result]:
    queries = [json.loads(line)["query"] for line in QUERIES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = _vector_pool(48 if quick else 400)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="scan-bench-search-") as tmp:
        db10k = None
        for label, chunks in SIZES.items():
            path = Path(tmp) / f"search-{label}.db"
            say(f"[search] building a {chunks:,}-chunk database")
            build_s, devs = _build(path, chunks, pool)
            say(f"[search] built {devs:,} developments / {chunks:,} chunks in {build_s:.1f}s; querying")
            results += _latency(path, label, queries, reps=1 if quick else 5, devs=devs)
            if db10k is None:
                db10k = path
        results += startup(db10k)
    return results


def _vector_pool(limit: int) -> dict[tuple[str, int], np.ndarray]:
    """(bundled item id, chunk position) -> a real e5 vector; positions beyond `limit` chunks wrap."""
    from scanner import embed
    from scanner.match import chunks_of
    from scanner.demo_site import load_dev_items

    keys, texts = [], []
    for item in load_dev_items():
        for idx, chunk in enumerate(chunks_of(item["title"], item["text"])):
            keys.append((item["id"], idx))
            texts.append(chunk)
    step = max(1, len(texts) // limit)
    chosen = list(range(0, len(texts), step))[:limit]
    say(f"[search] encoding {len(chosen)} real chunks with multilingual-e5 for the vector pool")
    vectors = embed.encode([texts[i] for i in chosen], embed.MULTILINGUAL_MODEL)
    by_item: dict[str, list[np.ndarray]] = {}
    for i, vector in zip(chosen, vectors):
        by_item.setdefault(keys[i][0], []).append(vector)
    fallback = list(vectors)
    pool: dict[tuple[str, int], np.ndarray] = {}
    for key in keys:
        own = by_item.get(key[0]) or [fallback[hash(key[0]) % len(fallback)]]
        pool[key] = own[key[1] % len(own)]
    return pool


def _build(path: Path, target_chunks: int, pool: dict[tuple[str, int], np.ndarray]) -> tuple[float, int]:
    from scanner import embed
    from scanner.match import chunks_of
    from scanner.demo_site import load_dev_items
    from scanner.store import Store

    started = time.perf_counter()
    rng = np.random.default_rng(11)
    originals = [item["id"] for item in load_dev_items()]
    items = make_items(target_chunks // 5 + 60)
    dim = len(next(iter(pool.values())))
    total = devs = 0
    with Store.open(path) as store, store.atomic():
        for i, item in enumerate(items):
            if total >= target_chunks:
                break
            chunks = chunks_of(item["title"], item["text"])[: target_chunks - total]
            url = f"https://bench.invalid/{item['id']}"
            dev_id = store.developments.add({
                "uid": item["id"], "source_id": "bench", "kind": item["kind"], "jurisdiction": item.get("jurisdiction"),
                "url": url, "canonical_url": url, "title": item["title"], "text": item["text"],
                "summary": item["text"][:200], "published": item["published"], "lang": item.get("lang"),
                "content_hash": embed.content_hash(item["title"] + "\n" + item["text"]),
            })
            if dev_id is None:
                continue
            # a chunk's hash includes the development, so every stored chunk has its own vector
            hashed = [(c, embed.content_hash(f"{item['id']}\n{c}")) for c in chunks]
            store.vectors.save_chunks(dev_id, hashed)
            origin = originals[i % len(originals)]
            base = np.stack([pool.get((origin, k), pool[(origin, 0)]) for k in range(len(chunks))])
            noisy = base + rng.normal(0.0, NOISE, size=base.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            store.vectors.save(embed.MULTILINGUAL_MODEL, {h: embed.to_blob(v) for (_, h), v in zip(hashed, noisy)}, dim)
            total += len(chunks)
            devs += 1
    return time.perf_counter() - started, devs


def _latency(path: Path, label: str, queries: list[str], reps: int, devs: int) -> list[Result]:
    from scanner import embed
    from scanner.search import search
    from scanner.store import Store
    from scanner.store.developments import fts_terms as _fts_terms

    with Store.open(path) as store:
        for query in queries:  # warm: the chunk matrix, the model, SQLite's page cache
            search(store, query, limit=20)
        times, encode_times, fts_times = [], [], []
        for _ in range(reps):
            for query in queries:
                started = time.perf_counter()
                search(store, query, limit=20)
                times.append(time.perf_counter() - started)
                started = time.perf_counter()
                embed.encode([query], embed.MULTILINGUAL_MODEL)
                encode_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                store.db.execute(
                    "select rowid from developments_fts where developments_fts match ? order by rank limit 20",
                    [" OR ".join(_fts_terms(query))]).fetchall()
                fts_times.append(time.perf_counter() - started)
    p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
    fts50, fts95 = percentile(fts_times, 0.5) * 1000, percentile(fts_times, 0.95) * 1000
    enc50 = percentile(encode_times, 0.5) * 1000
    notes = (f"{devs:,} developments; {len(times)} timed queries; query encode alone p50 {enc50:.1f} ms; "
             f"FTS5 p95 {fts95:.2f} ms")
    return [
        Result(f"search.p50_ms_{label}", round(p50, 2), "ms", baseline=round(fts50, 3), baseline_name="plain FTS5 query p50",
               ratio=ratio(p50, fts50), target=f"<= {TARGET_P50_MS:.0f} ms" if label == "100k" else "",
               ok=p50 <= TARGET_P50_MS if label == "100k" else None, notes=notes,
               extra={"encode_p50_ms": round(enc50, 2), "fts_p95_ms": round(fts95, 3)}),
        Result(f"search.p95_ms_{label}", round(p95, 2), "ms", baseline=round(fts95, 3), baseline_name="plain FTS5 query p95",
               ratio=ratio(p95, fts95)),
    ]


def startup(db: Path | None) -> list[Result]:
    scan = shutil.which("scan", path=str(Path(sys.executable).parent)) or shutil.which("scan")
    runs = 3
    say("[cli] start-up: `python -c pass`, `scan --help`, cold `scan search`")
    python_s = _median_wall([sys.executable, "-c", "pass"], runs)
    help_s = _median_wall([scan, "--help"], runs) if scan else None
    results = [Result("cli.help_s", None if help_s is None else round(help_s, 3), "s",
                      baseline=round(python_s, 3), baseline_name="python -c pass",
                      ratio=ratio(help_s, python_s), target=f"<= +{TARGET_HELP_OVER_S} s over python -c pass",
                      ok=None if help_s is None else help_s - python_s <= TARGET_HELP_OVER_S,
                      notes=None if help_s is None else f"overhead {help_s - python_s:.3f} s")]
    cold, note = None, "no database built"
    if scan and db is not None:
        probe = subprocess.run([scan, "search", "--help"], capture_output=True, env=child_env())
        if probe.returncode != 0:
            note = "`scan search` is not a command yet"
        else:
            config = db.parent / "search-bench.yaml"
            config.write_text(f"database: {db.name}\npolicies: policies/\nsources: []\n", encoding="utf-8")
            from scanner.demo_site import write_policies

            write_policies(db.parent / "policies")
            cmd = [scan, "search", "--config", str(config), "--json", "creator payout identity verification"]
            check = subprocess.run(cmd, capture_output=True, env=child_env())
            if check.returncode != 0:
                note = f"`scan search` exited {check.returncode}: {check.stderr.decode()[-200:]}"
            else:
                cold = _median_wall(cmd, 3)
                note = f"{len(json.loads(check.stdout)['results'])} results; median of 3 fresh processes"
    results.append(Result("cli.search_cold_s", None if cold is None else round(cold, 3), "s",
                          baseline=round(python_s, 3), baseline_name="python -c pass", ratio=ratio(cold, python_s),
                          target=f"<= {TARGET_SEARCH_COLD_S} s", ok=None if cold is None else cold <= TARGET_SEARCH_COLD_S,
                          notes=note))
    return results


def _median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(), check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)
