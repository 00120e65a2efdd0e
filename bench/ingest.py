"""Ingest: crawl + extract + store + embed + match N served developments, vs raw PyTorch MiniLM encode.

A child process serves a generated site of N distinct developments (`common.make_items`) on
127.0.0.1, crawls it with the real `Crawler`, then runs `analyse` (chunk, embed with MiniLM int8 /
USE-m3 / e5 by language, match, evidence) and the lifecycle step, exactly as `scan crawl` does.
`scanner.embed.encode` is wrapped to time each model and to record every distinct text the pipeline
encoded (with any model); the baseline is the bare PyTorch `SentenceTransformer.encode` (MiniLM,
the first landing's encoder) of those same texts, in the same process right after. Model loading
is done before the clock starts and reported apart.

The same child then crawls the unchanged site a second time (`bench.recrawl`) and reports its peak
RSS through the parent (`bench.memory`), so the expensive first ingest is done once per run.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Result, emit, make_items, ratio, run_child, say, served_site

FULL_N = 2000
QUICK_N = 60
"""Quick mode: enough developments for full encoder batches; the crawl stage at 300 items is measured by `bench.memory`."""
TARGET_RATIO = 1.0


def run(quick: bool) -> tuple[list[Result], dict[str, Any]]:
    """The ingest figures, plus the child's raw report (recrawl and memory read it)."""
    n = QUICK_N if quick else FULL_N
    say(f"[ingest] crawl + analyse of {n} served developments, then raw MiniLM encode of the same texts")
    report, rss_mib = run_child(["-m", "bench.ingest", "--child", "--n", str(n)])
    report["peak_rss_mib"] = rss_mib
    first = report["first"]
    pipeline_s = first["crawl_s"] + first["analyse_s"]
    raw_s = report["raw_encode_s"]
    items = report["stored"]
    split = first["split"]
    encode_s = split["use_s"] + split["minilm_s"] + split["e5_s"]
    results = [
        Result(
            "ingest.throughput", round(items / pipeline_s, 3), "items/s",
            baseline=round(items / raw_s, 3), baseline_name="raw PyTorch MiniLM model.encode of the same texts",
            ratio=ratio(raw_s, pipeline_s), target=f">= {TARGET_RATIO}x raw encode",
            ok=raw_s / pipeline_s >= TARGET_RATIO,
            notes=(f"{items} developments, {report['distinct_texts']} distinct texts encoded; pipeline {pipeline_s:.1f}s = "
                   f"crawl {first['crawl_s']:.1f}s + analyse {first['analyse_s']:.1f}s (USE {split['use_s']:.1f}s, "
                   f"MiniLM int8 {split['minilm_s']:.1f}s, e5 {split['e5_s']:.1f}s, rest {split['rest_s']:.1f}s) + "
                   f"lifecycle {first['lifecycle_s']:.1f}s; raw PyTorch encode {raw_s:.1f}s"),
            extra={"n": items, "pipeline_s": round(pipeline_s, 2), "raw_encode_s": round(raw_s, 2), **first,
                   "model_load_s": report["model_load_s"], "profile": report.get("profile_path")},
        ),
        Result(
            "ingest.throughput_steady", round(items / (pipeline_s - split["matcher_setup_s"]), 3), "items/s",
            baseline=round(items / raw_s, 3), baseline_name="raw PyTorch MiniLM model.encode of the same texts",
            ratio=ratio(raw_s, pipeline_s - split["matcher_setup_s"]), target=f">= {TARGET_RATIO}x raw encode",
            ok=raw_s / (pipeline_s - split["matcher_setup_s"]) >= TARGET_RATIO,
            notes=(f"without the one-off clause encoding of a fresh database ({split['matcher_setup_s']:.1f}s in "
                   f"Matcher()), which small N over-weights; the raw baseline includes those clause texts"),
        ),
        Result(
            "ingest.encoder_share", round(encode_s / pipeline_s, 3) if pipeline_s else None, "of pipeline time",
            notes=(f"USE {split['use_texts']} texts, MiniLM int8 {split['minilm_texts']}, e5 {split['e5_texts']} "
                   f"(non-English only); each text encoded by each model at most once"),
        ),
    ]
    return results, report


def child(n: int) -> dict[str, Any]:
    from scanner import embed
    from scanner.pipeline import run_cycle

    from bench import recrawl

    timings: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    distinct_texts: set[str] = set()
    original_encode = embed.encode

    def timed_encode(texts, model=embed.DEFAULT_MODEL):
        texts = list(texts)
        started = time.perf_counter()
        try:
            return original_encode(texts, model)
        finally:
            timings[model] += time.perf_counter() - started
            counts[model] += len(texts)
            distinct_texts.update(texts)

    from scanner import match

    original_init = match.Matcher.__init__

    def timed_init(self, *args, **kwargs):  # clause vectors: a one-off per database and corpus version
        started = time.perf_counter()
        try:
            original_init(self, *args, **kwargs)
        finally:
            timings["matcher_setup"] += time.perf_counter() - started

    match.Matcher.__init__ = timed_init
    started = time.perf_counter()
    for model in match.MODELS.values():
        original_encode(["warm up"], model)
    model_load_s = time.perf_counter() - started
    embed.encode = timed_encode

    items = make_items(n)
    with served_site(items, "scan-bench-ingest-") as (config, store, server):
        say(f"[ingest] one cycle (pipeline.run_cycle) over {len(items)} developments from {len(config.sources)} sources")
        clock = StageClock()
        profiler = _profiler()
        if profiler:
            profiler.start()
        total_s, cycle = _timed(lambda: run_cycle(config, store, progress=clock))
        profile_path = _save_profile(profiler)
        stages = clock.durations(total_s)
        crawl_s = stages.get("crawling", 0.0)
        lifecycle_s = stages.get("finding key dates and threads", 0.0)
        analyse_s = total_s - crawl_s - lifecycle_s
        results, outcome = cycle.sources, cycle.analysis
        stored = store.developments.count()
        pipeline_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the baseline
        e5_s, minilm_s, use_s = (timings[embed.MULTILINGUAL_MODEL], timings[embed.DEFAULT_MODEL],
                                 timings[embed.USE_MODEL])
        first = {
            "crawl_s": round(crawl_s, 3), "analyse_s": round(analyse_s, 3), "lifecycle_s": round(lifecycle_s, 3),
            "sources": len(results), "source_errors": sum(r.status == "error" for r in results),
            "encoded": outcome.encoded, "attached": outcome.attached,
            "peak_rss_mib": round(pipeline_peak_mib, 1),
            "split": {"e5_s": round(e5_s, 3), "minilm_s": round(minilm_s, 3), "use_s": round(use_s, 3),
                      "rest_s": round(analyse_s - e5_s - minilm_s - use_s, 3),
                      "matcher_setup_s": round(timings["matcher_setup"], 3),
                      "e5_texts": counts[embed.MULTILINGUAL_MODEL], "minilm_texts": counts[embed.DEFAULT_MODEL],
                      "use_texts": counts[embed.USE_MODEL]},
        }
        embed.encode = original_encode
        texts = sorted(distinct_texts)
        say(f"[ingest] analysed in {analyse_s:.1f}s; raw PyTorch MiniLM encode of the {len(texts)} distinct texts")
        embed.release()  # the pipeline's encoders go before the baseline's model comes in
        model = embed._sentence_transformer(embed.MINILM_TORCH_MODEL)
        model.encode(["warm up"], show_progress_bar=False)
        raw_s, _ = _timed(lambda: model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False))
        second = recrawl.second_crawl(config, store, server)
    return {"n": n, "stored": stored, "model_load_s": round(model_load_s, 2), "first": first,
            "raw_encode_s": round(raw_s, 3), "distinct_texts": len(texts), "second": second,
            "profile_path": profile_path}


class StageClock:
    """A `pipeline.SourceProgress` that only notes when each stage of the cycle starts."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: list[tuple[str, float]] = []

    def stage(self, name: str, total: int = 0) -> None:
        self.marks.append((name, time.perf_counter()))

    def advance(self, done: int) -> None:
        pass

    def source_done(self, result: object) -> None:
        pass

    def durations(self, total_s: float) -> dict[str, float]:
        ends = [t for _, t in self.marks[1:]] + [self.started + total_s]
        out: dict[str, float] = {}
        for (name, start), end in zip(self.marks, ends):
            out[name] = out.get(name, 0.0) + end - start
        return out


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _profiler():
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    return Profiler(interval=0.005)


def _save_profile(profiler) -> str | None:
    if profiler is None:
        return None
    profiler.stop()
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / "profile-analyse.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    return str(path.relative_to(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--n", type=int, default=QUICK_N)
    args = parser.parse_args()
    emit(child(args.n))


if __name__ == "__main__":
    main()
