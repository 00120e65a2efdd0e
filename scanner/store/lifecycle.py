"""Key dates and regulatory threads found in developments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .core import Tables, batches, utcnow


class LifecycleTables(Tables):
    """`key_dates`, `threads` and `lifecycle_state` (which text and extractor version each was made from)."""

    def pending(self, version: str) -> list[dict[str, Any]]:
        """Developments whose dates were never extracted, or from other text or an older extractor."""
        return [dict(r) for r in self.db.query(
            """select d.* from developments d left join lifecycle_state s on s.development_id = d.id
               where s.development_id is null or s.content_hash != d.content_hash or s.version != ?
               order by d.id""", [version])]

    def save_dates(self, development_id: int, content_hash: str, version: str, dates: Iterable[dict[str, Any]]) -> None:
        with self.atomic():
            self.db["key_dates"].delete_where("development_id = ?", [development_id])
            self.db["key_dates"].insert_all({"development_id": development_id, **d} for d in dates)
            self.db["lifecycle_state"].upsert(
                {"development_id": development_id, "content_hash": content_hash, "version": version,
                 "analysed_at": utcnow()}, pk="development_id")

    def dates_for(self, development_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        ids = list(development_ids)
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for part, marks in batches(ids):
            for r in self.db.query(
                    f"""select development_id, date, type, phrase from key_dates
                        where development_id in ({marks}) order by date, id""", part):
                row = dict(r)
                out[row.pop("development_id")].append(row)
        return out

    def dates_between(self, since: str | None, until: str | None, types: Iterable[str] = ()) -> list[dict[str, Any]]:
        where, args = [], []
        if since:
            where.append("k.date >= ?")
            args.append(since)
        if until:
            where.append("k.date <= ?")
            args.append(until)
        types = list(types)
        if types:
            where.append(f"k.type in ({','.join('?' * len(types))})")
            args.extend(types)
        return [dict(r) for r in self.db.query(
            f"""select k.development_id, k.date, k.type, k.phrase from key_dates k
                {'where ' + ' and '.join(where) if where else ''} order by k.date, k.development_id, k.id""", args)]

    def replace_threads(self, assignments: dict[int, tuple[str | None, str | None]]) -> None:
        """development id → (thread id or None, stage or None), for every development."""
        with self.atomic():
            self.db["threads"].delete_where()
            self.db["threads"].insert_all(
                {"development_id": d, "thread_id": t, "stage": s} for d, (t, s) in assignments.items())

    def stages(self) -> dict[int, str | None]:
        """development id → the stage it was given, for every development read so far."""
        return {r[0]: r[1] for r in self.db.execute("select development_id, stage from threads")}

    def threads_for(self, development_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for part, marks in batches(list(development_ids)):
            for r in self.db.query(f"select * from threads where development_id in ({marks})", part):
                out[r["development_id"]] = dict(r)
        return out

    def thread_members(self, thread_ids: Iterable[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for part, marks in batches(list(thread_ids)):
            for r in self.db.execute(f"select thread_id, development_id from threads where thread_id in ({marks})", part):
                out.setdefault(r[0], []).append(r[1])
        return out
