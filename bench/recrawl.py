"""Incremental re-crawl: the unchanged site crawled a second time, in the ingest child.

Figures: the share of the second crawl's HTTP answers that were 304 Not Modified (robots.txt is
fetched afresh by each crawl's fetcher and counts against the share), the vectors the second
`analyse` computed (target 0: nothing changed, so nothing is embedded), and the second crawl's
time against the first (both crawl + analyse, same process, same site).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common import Result, ratio

TARGET_304_SHARE = 0.95


def second_crawl(config: Any, store: Any, server: Any) -> dict[str, Any]:
    """Crawl + analyse again; what the server answered and what was recomputed."""
    from scanner.analyse import analyse
    from scanner.crawl import crawl

    before = len(server.hits)
    started = time.perf_counter()
    results = crawl(config, store)
    crawl_s = time.perf_counter() - started
    started = time.perf_counter()
    outcome = analyse(config, store)
    analyse_s = time.perf_counter() - started
    hits = server.hits[before:]
    statuses = Counter(h.status for h in hits)
    return {
        "crawl_s": round(crawl_s, 3), "analyse_s": round(analyse_s, 3), "requests": len(hits),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "not_modified": statuses.get(304, 0),
        "robots": sum(h.path == "/robots.txt" for h in hits),
        "encoded": outcome.encoded, "matched": outcome.matched,
        "new": sum(r.new + r.changed for r in results),
    }


def run(report: dict[str, Any]) -> list[Result]:
    first, second = report["first"], report["second"]
    first_s = first["crawl_s"] + first["analyse_s"]
    second_s = second["crawl_s"] + second["analyse_s"]
    requests = second["requests"] or 1
    share = second["not_modified"] / requests
    content = requests - second["robots"]
    share_content = second["not_modified"] / content if content else None
    return [
        Result("recrawl.not_modified_share", round(share, 4), "of responses",
               baseline=float(second["requests"]), baseline_name="requests in the second crawl",
               target=f">= {TARGET_304_SHARE:.0%} 304/unchanged", ok=share >= TARGET_304_SHARE,
               notes=f"statuses {second['statuses']}; {second['robots']} robots.txt fetch(es) "
                     f"(not conditional); share over feeds/pages alone: "
                     f"{'n/a' if share_content is None else f'{share_content:.1%}'}",
               extra=second),
        Result("recrawl.embeddings_recomputed", float(second["encoded"]), "vectors",
               baseline=float(first["encoded"]), baseline_name="vectors computed by the first crawl",
               target="0", ok=second["encoded"] == 0,
               notes=f"second analyse matched {second['matched']} development(s); {second['new']} new/changed"),
        Result("recrawl.time", round(second_s, 3), "s", baseline=round(first_s, 3),
               baseline_name="first crawl + analyse", ratio=ratio(second_s, first_s),
               target="(smaller is better)"),
    ]
