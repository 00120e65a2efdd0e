"""Specialists' judgments of a development's clauses: who said what, and when."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .core import Tables, batches

VERDICTS = ("right", "wrong", "added")


class JudgmentTables(Tables):
    """`judgments`, keyed by the development's public uid so they survive a rebuilt database."""

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append judgments (development_uid, url, clause_id, verdict, by, note, at); the latest per pair wins."""
        rows = list(rows)
        with self.atomic():
            self.db["judgments"].insert_all(rows)
        return len(rows)

    def all(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from judgments order by id")]

    def latest(self, development_uids: Iterable[str] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """development uid → clause id → its latest judgment row: what the specialists' say stands now."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        sql = "select * from judgments {where} order by id"
        if development_uids is None:
            rows = list(self.db.query(sql.format(where="")))
        else:
            rows = []
            for part, marks in batches(list(development_uids)):
                rows.extend(self.db.query(sql.format(where=f"where development_uid in ({marks})"), part))
        for row in rows:
            out.setdefault(row["development_uid"], {})[row["clause_id"]] = dict(row)
        return out

    def for_clause(self, clause_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from judgments where clause_id = ? order by id", [clause_id])]
