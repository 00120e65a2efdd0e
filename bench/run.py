"""Run every scan benchmark: `python bench/run.py [--quick] [--json] [--only NAME ...]`.

Each figure is printed beside a baseline measured in the same run and their ratio, with its target.
`--json` prints one JSON object on stdout (progress goes to stderr): {"machine", "mode", "seconds",
"results": {name: {value, unit, baseline, baseline_name, ratio, target, ok, notes, extra}}}; the
names are stable. `--quick` uses small sizes (see each module) so the run ends in under 3 minutes
on 2 idle cores. The exit code is 0 when every benchmark ran, whether or not targets were met.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, machine, say  # noqa: E402

BENCHMARKS = ("ingest", "embedding", "search", "memory", "web", "demo")
"""`recrawl` figures come from the ingest child; `memory` reuses its peak RSS."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: a few minutes on 2 cores")
    size.add_argument("--full", action="store_true", help="full sizes (the default): 2,000 developments through ingest")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    started = time.perf_counter()
    info = machine()
    say(f"scan benchmarks ({'quick' if args.quick else 'full'}) on {info}")
    results: list[Result] = []
    ingest_report = None
    if "ingest" in chosen:
        from bench import ingest, recrawl

        figures, ingest_report = ingest.run(args.quick)
        results += figures + recrawl.run(ingest_report)
    if "embedding" in chosen:
        from bench import embedding

        results += embedding.run(args.quick)
    if "search" in chosen:
        from bench import search

        results += search.run(args.quick)
    if "memory" in chosen:
        from bench import memory

        results += memory.run(args.quick, ingest_report)
    if "web" in chosen:
        from bench import web

        results += web.run(args.quick)
    if "demo" in chosen:
        from bench import demo

        results += demo.run(args.quick)
    seconds = round(time.perf_counter() - started, 1)
    info["load_avg_end"] = machine().get("load_avg")
    if args.json:
        print(json.dumps({"machine": info, "mode": "quick" if args.quick else "full", "seconds": seconds,
                          "results": {r.name: {k: v for k, v in r.as_dict().items() if k != "name"} for r in results}},
                         indent=2))
    else:
        for result in results:
            print(result.line())
        print(f"\n{len(results)} figures in {seconds:.0f}s on {info.get('nproc')} cores ({info.get('cpu', '?')}), "
              f"Python {info['python']}, load average {info.get('load_avg')} -> {info['load_avg_end']}")
    say(f"done in {seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
