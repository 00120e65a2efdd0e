"""scan: horizon scanning for the policy team that owns LIVE monetization rules.

The library does the work; the `scan` CLI and `scan serve` are thin shells over these calls::

    from scanner import Store, load_config, run_cycle
    from scanner.search import search
    config = load_config("sources.yaml")
    with Store.open(config.database) as store:
        run_cycle(config, store)                       # crawl → analyse (→ alerts=True)
        hits = search(store, "gift cash-out minors")   # the `scan search --json` results

Names are imported lazily, so `import scanner` (and `scan --help`) stays fast. Modules keep their
own names (`scanner.search`, `scanner.crawl`, …); the package exports no name that shadows one.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_API = {
    "Config": "scanner.config", "load_config": "scanner.config",
    "Store": "scanner.store", "StoreError": "scanner.store",
    "ScanError": "scanner.errors", "NotFoundError": "scanner.errors", "UsageError": "scanner.errors",
    "Development": "scanner.records", "AttachedClause": "scanner.records",
    "run_cycle": "scanner.pipeline", "run_lock": "scanner.pipeline", "CycleResult": "scanner.pipeline",
    "build_digest": "scanner.digest", "write_digest": "scanner.digest",
    "run_alerts": "scanner.alerts", "make_subscription": "scanner.alerts", "subscribe": "scanner.alerts",
    "judge": "scanner.judgments",
    "clause_view": "scanner.workspace", "clauses_overview": "scanner.workspace", "record_review": "scanner.workspace",
    "load_corpus": "scanner.policies",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
