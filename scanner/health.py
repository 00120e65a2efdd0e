"""Source health as users see it: every configured source, with what the database remembers of it.

A read: the database is opened read-only, and a missing one means "never fetched" rather than an
error, so `scan sources` (and the web's Sources page) works before the first crawl.
"""

from __future__ import annotations

from typing import Any

from scanner.config import Config
from scanner.store import Store


def source_rows(config: Config) -> list[dict[str, Any]]:
    """One row per configured source: last fetch, status, error, developments, and the two flags
    (`same_text`: pages that extracted to one text; `silent`: quiet for longer than its usual gap)."""
    stored: dict[str, dict[str, Any]] = {}
    if config.database.is_file():
        with Store.open(config.database, readonly=True) as store:
            stored = {r["id"]: r for r in store.sources.health()}
    rows = []
    for source in config.sources:
        row = {"id": source.id, "name": source.display_name, "kind": source.kind, "jurisdiction": source.jurisdiction,
               "type": source.type, "url": source.url, "last_fetch": None, "last_ok": None, "last_status": None,
               "last_error": None, "consecutive_failures": 0, "developments": 0, "same_text": 0,
               "usual_gap_days": None, "days_since_last": None, "silent": False}
        row.update({k: v for k, v in stored.get(source.id, {}).items() if k in row and k not in ("name", "url", "type")})
        rows.append(row)
    return rows
