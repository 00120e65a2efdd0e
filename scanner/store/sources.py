"""Sources and what the crawler remembers between runs: health, HTTP validators, robots.txt."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from statistics import median
from typing import Any

from .core import Tables, utcnow

SAME_TEXT_FLAG = 3
"""This many developments of one source with identical text suggests extraction is failing."""
SILENT_FACTOR = 3
"""A source is 'silent' when its newest item is older than this many of its usual gaps…"""
SILENT_MIN_DAYS = 14
"""…and at least this many days old (weekly sources are not flagged after one quiet week)."""


class SourceTables(Tables):
    """`sources`, `fetches`, `http_cache` and `robots`."""

    def sync(self, sources: Iterable[Any]) -> None:
        """Mirror the configured sources, keeping the health columns of ones already known."""
        with self.atomic():
            for source in sources:
                self.db["sources"].upsert(
                    {"id": source.id, "name": source.display_name, "kind": source.kind,
                     "jurisdiction": source.jurisdiction, "type": source.type, "url": source.url},
                    pk="id",
                )

    def record_result(self, source_id: str, *, started_at: str, status: str, error: str | None,
                      counts: dict[str, int]) -> None:
        now = utcnow()
        row = self.db["sources"].get(source_id)
        failures = (row.get("consecutive_failures") or 0) + 1 if status == "error" else 0
        update = {"last_fetch": now, "last_status": status, "last_error": error, "consecutive_failures": failures}
        if status != "error":
            update["last_ok"] = now
        self.db["sources"].update(source_id, update)
        self.db["fetches"].insert(
            {"source_id": source_id, "started_at": started_at, "finished_at": now, "status": status, "error": error,
             **{k: counts.get(k, 0) for k in ("new", "changed", "unchanged", "failed")}}
        )

    def ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("select id from sources order by id")]

    def names(self) -> dict[str, str]:
        """Source id → display name: what a development's `source_name` needs, without health's full scans."""
        return {r[0]: r[1] for r in self.db.execute("select id, name from sources")}

    def health(self, configured: Iterable[str] | None = None, today: date | None = None) -> list[dict[str, Any]]:
        """Each source with counts, its largest group of identical texts and whether it has gone silent."""
        today = today or datetime.now(timezone.utc).date()
        rows = [dict(r) for r in self.db.query(
            """select s.*, (select count(*) from developments d where d.source_id = s.id) as developments
               from sources s order by s.id""")]
        same = {r[0]: r[1] for r in self.db.execute(
            """select source_id, max(n) from (select source_id, count(*) as n from developments
               group by source_id, content_hash) group by source_id""")}
        days: dict[str, list[str]] = {}
        for source_id, day in self.db.execute(
                "select source_id, coalesce(published, substr(first_seen, 1, 10)) as day from developments order by day"):
            days.setdefault(source_id, []).append(day)
        wanted = set(configured) if configured is not None else None
        out = []
        for row in rows:
            if wanted is not None and row["id"] not in wanted:
                continue
            row["same_text"] = same.get(row["id"], 0) if same.get(row["id"], 0) >= SAME_TEXT_FLAG else 0
            row.update(_silence(days.get(row["id"], []), today))
            out.append(row)
        return out

    def failed_between(self, start: str, end: str) -> list[dict[str, Any]]:
        """Sources whose crawls failed in [start, end): for the digest's header."""
        return [dict(r) for r in self.db.query(
            """select source_id, count(*) as failures, max(error) as error from fetches
               where status = 'error' and started_at >= ? and started_at < ?
               group by source_id order by source_id""", [start, end])]

    def http_cache(self, url: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from http_cache where url = ?", [url]))
        return rows[0] if rows else None

    def save_http_cache(self, url: str, etag: str | None, last_modified: str | None, content_hash: str) -> None:
        self.db["http_cache"].upsert(
            {"url": url, "etag": etag, "last_modified": last_modified, "content_hash": content_hash,
             "fetched_at": utcnow()}, pk="url")

    def robots(self, host: str, max_age_s: float) -> str | None:
        """The stored robots.txt of `host` ('' for none) if fetched within `max_age_s`, else None."""
        rows = list(self.db.execute("select body, fetched_at from robots where host = ?", [host]))
        if not rows:
            return None
        age = datetime.now(timezone.utc) - datetime.fromisoformat(rows[0][1])
        return rows[0][0] if age.total_seconds() < max_age_s else None

    def save_robots(self, host: str, body: str) -> None:
        self.db["robots"].upsert({"host": host, "body": body, "fetched_at": utcnow()}, pk="host")


def _silence(days: list[str], today: date) -> dict[str, Any]:
    """Usual gap between a source's items, days since its newest, and whether that is unusually long."""
    parsed = sorted({date.fromisoformat(d) for d in days if d and len(d) == 10})
    if len(parsed) < 3:
        return {"usual_gap_days": None, "days_since_last": (today - parsed[-1]).days if parsed else None, "silent": False}
    gaps = [(b - a).days for a, b in zip(parsed, parsed[1:])]
    usual = max(1.0, float(median(gaps)))
    since = (today - parsed[-1]).days
    return {"usual_gap_days": round(usual, 1), "days_since_last": since,
            "silent": since > max(SILENT_FACTOR * usual, SILENT_MIN_DAYS)}
