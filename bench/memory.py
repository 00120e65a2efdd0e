"""Memory: peak RSS of a crawl of many developments, and of a crawl meeting hostile large responses.

Each figure is one child process's `getrusage(RUSAGE_CHILDREN).ru_maxrss` (see `common.run_child`).
The baseline is an idle scan process: the package imported and the three encoders loaded, which is the
floor under any `scan crawl` that embeds.

- `memory.ingest_peak_rss_mib`: the ingest child of `bench.ingest` at the end of its crawl + analyse
  (its own ru_maxrss, read before the bench-only baseline encode inflates it).
- `memory.crawl_peak_rss_mib`: a crawl (fetch, extract, store; no embedding) of 300 served
  developments in quick mode; in full mode the 2 000-item ingest child is the crawl measured.
- `memory.hostile_peak_rss_mib`: a crawl of a gzip bomb (1 GiB inflated) and a 100 MB response
  without Content-Length, beside one good feed, vs the crawl of the good feed alone. Served by
  tests/hostile_server.py when present, else by the small server below.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Result, emit, make_items, ratio, run_child, say, served_site

TARGET_MIB = 500
"""Issue 14: peak RSS of crawl + analyse at most 500 MiB (the first landing measured 812-854)."""
QUICK_CRAWL_N = 300
HOSTILE_SOURCES = ("bomb-page", "huge-feed", "good-feed")


def run(quick: bool, ingest_report: dict[str, Any] | None) -> list[Result]:
    say("[memory] idle baseline: scan imported, the three encoders loaded")
    idle, idle_mib = run_child(["-m", "bench.memory", "--child", "idle"])
    results = []
    if ingest_report is not None:
        mib = ingest_report["first"]["peak_rss_mib"]
        results.append(Result(
            "memory.ingest_peak_rss_mib", round(mib, 1), "MiB", baseline=round(idle_mib, 1),
            baseline_name="idle scan process with the three encoders loaded", ratio=ratio(mib, idle_mib),
            target=f"<= {TARGET_MIB} MiB", ok=mib <= TARGET_MIB,
            notes=(f"crawl + analyse of {ingest_report['stored']} developments: the child's ru_maxrss read before "
                   f"the bench-only raw-encode baseline; whole child incl. baseline and re-crawl "
                   f"{ingest_report['peak_rss_mib']:.0f} MiB (RUSAGE_CHILDREN)")))
    if quick:
        say(f"[memory] crawl of {QUICK_CRAWL_N} served developments (fetch, extract, store)")
        crawl, mib = run_child(["-m", "bench.memory", "--child", "crawl", "--n", str(QUICK_CRAWL_N)])
        notes = (f"crawl stage only, {crawl['stored']} developments stored in {crawl['crawl_s']:.1f}s "
                 f"(embedding 300 items would take minutes here; see memory.ingest_peak_rss_mib)")
    else:
        crawl = ingest_report or {}
        mib = crawl["first"]["peak_rss_mib"] if crawl else None
        notes = "the full ingest child: crawl + analyse of 2000 developments"
    results.append(Result(
        "memory.crawl_peak_rss_mib", None if mib is None else round(mib, 1), "MiB",
        baseline=round(idle_mib, 1), baseline_name="idle scan process with the three encoders loaded",
        ratio=ratio(mib, idle_mib), target=f"<= {TARGET_MIB} MiB", ok=None if mib is None else mib <= TARGET_MIB,
        notes=notes, extra={"n": crawl.get("stored")}))
    say("[memory] hostile crawl: gzip bomb + 100 MB response, and the benign crawl beside it")
    benign, benign_mib = run_child(["-m", "bench.memory", "--child", "hostile", "--benign"])
    hostile, hostile_mib = run_child(["-m", "bench.memory", "--child", "hostile"])
    results.append(Result(
        "memory.hostile_peak_rss_mib", round(hostile_mib, 1), "MiB", baseline=round(benign_mib, 1),
        baseline_name="the same crawl of the good feed alone", ratio=ratio(hostile_mib, benign_mib),
        target=f"<= {TARGET_MIB} MiB", ok=hostile_mib <= TARGET_MIB,
        notes=f"server: {hostile['server']}; outcomes: " + "; ".join(
            f"{k}={v['status']}" + (f" ({v['error']})" if v["error"] else "") for k, v in hostile["sources"].items()),
        extra={"idle_mib": round(idle_mib, 1), **hostile}))
    return results


# --- children -------------------------------------------------------------------------------


def child_idle() -> dict[str, Any]:
    from scanner import embed
    import scanner.analyse, scanner.crawl, scanner.match  # noqa: F401

    from scanner.match import MODELS

    for model in MODELS.values():
        embed.encode(["warm up"], model)
    return {}


def child_crawl(n: int) -> dict[str, Any]:
    import time

    from scanner.crawl import crawl

    with served_site(make_items(n), "scan-bench-mem-") as (config, store, _):
        started = time.perf_counter()
        crawl(config, store)
        crawl_s = time.perf_counter() - started
        stored = store.developments.count()
    return {"stored": stored, "crawl_s": round(crawl_s, 2)}


def child_hostile(benign: bool) -> dict[str, Any]:
    from scanner.config import load_config
    from scanner.crawl import crawl
    from scanner.store import Store

    wanted = ["good-feed"] if benign else list(HOSTILE_SOURCES)
    with tempfile.TemporaryDirectory(prefix="scan-bench-hostile-") as tmp, _hostile_web() as (web, name):
        config = load_config(web.config(Path(tmp)))
        with Store.open(config.database) as store:
            results = crawl(config, store, [s for s in wanted if any(c.id == s for c in config.sources)])
    return {"server": name,
            "sources": {r.source_id: {"status": r.status, "error": (r.error or "")[:120]} for r in results}}


@contextlib.contextmanager
def _hostile_web() -> Iterator[tuple[Any, str]]:
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from hostile_server import serve_hostile  # type: ignore[import-not-found]
    except ImportError:
        with _fallback_web() as web:
            yield web, "bench/memory.py fallback"
        return
    with serve_hostile() as web:
        yield web, "tests/hostile_server.py"


# --- a small hostile server, for checkouts without tests/hostile_server.py ------------------

_BOMB_INFLATED = 1 << 30
_HUGE_BYTES = 100_000_000
_CHUNK = 64 * 1024


def _bomb() -> Iterator[bytes]:
    mib = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    for _ in range(_BOMB_INFLATED // len(mib)):
        yield compressor.compress(mib)
    yield compressor.flush()


class _FallbackHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        try:
            if self.path == "/robots.txt":
                return self._send(b"User-agent: *\nAllow: /\n", "text/plain")
            if self.path == "/bomb":
                return self._stream(_bomb(), "text/html", {"Content-Encoding": "gzip"})
            if self.path == "/huge/feed.xml":
                block = (b"<item><title>filler</title></item>" * 2000)[:_CHUNK]
                return self._stream(iter([block] * (_HUGE_BYTES // _CHUNK)), "application/rss+xml")
            if self.path == "/good/feed.xml":
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                items = "".join(f"<item><title>Gift rules {i}</title><link>{base}/a/{i}.html</link></item>" for i in range(3))
                return self._send(f'<?xml version="1.0"?><rss version="2.0"><channel><title>Good</title>{items}'
                                  f"</channel></rss>".encode(), "application/rss+xml")
            if self.path.startswith("/a/"):
                text = "<p>Regulators propose spending limits on virtual gifts bought by minors in live streams.</p>" * 20
                return self._send(f"<html><head><title>Notice</title></head><body><article><h1>Notice</h1>{text}"
                                  f"</article></body></html>".encode(), "text/html; charset=utf-8")
            self._send(b"not found", "text/plain", 404)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunks: Iterator[bytes], content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)


class _FallbackWeb:
    def __init__(self, server: ThreadingHTTPServer):
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def config(self, folder: Path) -> Path:
        from scanner.demo_site import write_policies

        write_policies(folder / "policies")
        path = folder / "sources.yaml"
        path.write_text(
            "database: scan.db\npolicies: policies/\nfetch:\n  per_host_delay: 0\n  timeout: 5\n  retries: 0\n"
            "sources:\n"
            f"  - id: bomb-page\n    kind: regulator\n    page: {self.base}/bomb\n"
            f"  - id: huge-feed\n    kind: regulator\n    feed: {self.base}/huge/feed.xml\n"
            f"  - id: good-feed\n    kind: regulator\n    feed: {self.base}/good/feed.xml\n",
            encoding="utf-8")
        return path


@contextlib.contextmanager
def _fallback_web() -> Iterator[_FallbackWeb]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FallbackHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield _FallbackWeb(server)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("idle", "crawl", "hostile"), required=True)
    parser.add_argument("--n", type=int, default=QUICK_CRAWL_N)
    parser.add_argument("--benign", action="store_true")
    args = parser.parse_args()
    if args.child == "idle":
        emit(child_idle())
    elif args.child == "crawl":
        emit(child_crawl(args.n))
    else:
        emit(child_hostile(args.benign))


if __name__ == "__main__":
    main()
