"""The newcomer's first minutes: `scan demo` wall time and peak RSS, beside the crawl alone.

`demo.wall_s` runs `python -m scanner demo --dir TMP` in a fresh child process (the encoder cache
already prepared, as after any first use) and times it end to end: serving the example site,
two crawls, matching, dates and threads, the digest and a search. The baseline, measured in the
same run, is a crawl of the same site with no analysis at all (fetch, extract, store), so the ratio
is what understanding the developments costs on top of reading them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Result, child_env, ratio, run_child, say

TARGET_S = 40.0


def run(quick: bool) -> list[Result]:
    say("[demo] scan demo in a fresh process, then the same site crawled without analysis")
    with tempfile.TemporaryDirectory(prefix="scan-bench-demo-") as tmp:
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-m", "scanner", "demo", "--dir", tmp], cwd=ROOT, env=child_env(),
                               capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
    if child.returncode != 0:
        return [Result("demo.wall_s", None, "s", notes=f"scan demo failed: {child.stderr[-300:]}")]
    crawl, _ = run_child(["-m", "bench.memory", "--child", "crawl", "--n", "60"])
    return [Result("demo.wall_s", round(wall, 1), "s", baseline=crawl["crawl_s"],
                   baseline_name="crawl of a 60-item site, no analysis", ratio=ratio(wall, crawl["crawl_s"]),
                   target=f"<= {TARGET_S:.0f} s on a quiet machine", ok=wall <= TARGET_S,
                   notes="serve, crawl twice, match, dates and threads, digest, search")]
