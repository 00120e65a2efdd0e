"""What analysis writes: chunks, the vector cache, the current corpus, clause matches, run state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .core import Tables, batches, utcnow


class VectorTables(Tables):
    """`chunks`, `embeddings` (vectors keyed by content hash and model), `clauses`, `matches`, `match_state`, `state`."""

    # --- chunks and vectors ---------------------------------------------------------------------

    def save_chunks(self, development_id: int, chunks: list[tuple[str, str]]) -> None:
        self.db["chunks"].delete_where("development_id = ?", [development_id])
        self.db["chunks"].insert_all(
            {"development_id": development_id, "idx": i, "text": text, "hash": h} for i, (text, h) in enumerate(chunks))

    def chunks(self, development_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from chunks where development_id = ? order by idx", [development_id])]

    def chunk_texts(self, development_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
        """(chunk id, text) of each development's chunks in order, for snippets."""
        ids = list(development_ids)
        out: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
        for part, marks in batches(ids):
            for r in self.db.execute(
                    f"select development_id, id, text from chunks where development_id in ({marks}) order by development_id, idx",
                    part):
                out[r[0]].append((r[1], r[2]))
        return out

    def cached(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for part, marks in batches(hashes):
            for row in self.db.execute(f"select hash, vector from embeddings where model = ? and hash in ({marks})",
                                       [model, *part]):
                found[row[0]] = row[1]
        return found

    def save(self, model: str, vectors: dict[str, bytes], dim: int) -> None:
        self.db["embeddings"].upsert_all(
            ({"hash": h, "model": model, "dim": dim, "vector": v} for h, v in vectors.items()), pk=("hash", "model"))

    def chunk_rows(self, model: str, development_ids: Iterable[int] | None = None) -> list[tuple[int, int, bytes]]:
        """(chunk id, development id, vector) of every chunk with a vector, grouped by development."""
        sql = """select c.id, c.development_id, e.vector from chunks c
                 join embeddings e on e.hash = c.hash and e.model = ? {where} order by c.development_id, c.idx"""
        if development_ids is None:
            return [(r[0], r[1], r[2]) for r in self.db.execute(sql.format(where=""), [model])]
        found: list[tuple[int, int, bytes]] = []
        for part, marks in batches(list(development_ids)):
            found.extend((r[0], r[1], r[2]) for r in self.db.execute(
                sql.format(where=f"where c.development_id in ({marks})"), [model, *part]))
        return found

    def marker(self) -> tuple[Any, ...]:
        """A cheap value that changes whenever chunks, vectors, matches, judgments or the corpus change.

        Lets a long-lived process keep its in-memory search index until analysis writes.
        """
        return tuple(self.db.execute(
            """select (select max(id) from chunks), (select count(*) from chunks),
                      (select max(rowid) from embeddings), (select count(*) from matches),
                      (select max(matched_at) from match_state), (select value from state where key = 'corpus'),
                      (select max(id) from judgments)""").fetchone())

    # --- the corpus, matches and run state ------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        row = self.db.execute("select value from state where key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        self.db["state"].upsert({"key": key, "value": value}, pk="key")

    def replace_clauses(self, clauses: Iterable[dict[str, Any]]) -> None:
        self.db["clauses"].delete_where()
        self.db["clauses"].insert_all(clauses, pk="id")

    def clauses(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from clauses order by file, line")]

    def unmatched(self, corpus: str) -> list[dict[str, Any]]:
        """Developments never matched, or matched against other text or another corpus version."""
        return [dict(r) for r in self.db.query(
            """select d.* from developments d left join match_state m on m.development_id = d.id
               where m.development_id is null or m.content_hash != d.content_hash or m.corpus != ?
               order by d.id""", [corpus])]

    def forget_matches(self, since: str | None = None) -> int:
        """Mark developments (published or first seen on/after `since`, else all) for matching again."""
        if since:
            return self.db.execute(
                """delete from match_state where development_id in (select id from developments
                   where coalesce(published, substr(first_seen, 1, 10)) >= ?)""", [since]).rowcount
        return self.db.execute("delete from match_state").rowcount

    def save_matches(self, development_id: int, content_hash: str, corpus: str, matches: list[dict[str, Any]]) -> None:
        """Replace a development's matches; each has clause_id, score, evidence and tier (1 attached, 2 possible).

        Tier 0 rows (matches of clauses since removed from the corpus) are history and stay.
        """
        with self.atomic():
            self.db["matches"].delete_where("development_id = ? and coalesce(tier, 1) != 0", [development_id])
            self.db["matches"].insert_all(
                ({"development_id": development_id, "rank": i, "tier": 1, **m} for i, m in enumerate(matches)),
                replace=True)
            self.db["match_state"].upsert(
                {"development_id": development_id, "content_hash": content_hash, "corpus": corpus,
                 "matched_at": utcnow()}, pk="development_id")

    def matches_for(self, development_ids: Iterable[int], tiers: tuple[int, ...] = (1,)) -> dict[int, list[dict[str, Any]]]:
        """Stored matches per development, best first, with each clause's title and policy."""
        ids = list(development_ids)
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        tier_marks = ",".join("?" * len(tiers))
        for part, marks in batches(ids):
            for r in self.db.query(
                    f"""select m.development_id, m.clause_id as id, c.title, c.policy, c.file, m.score, m.evidence,
                        coalesce(m.tier, 1) as tier
                        from matches m left join clauses c on c.id = m.clause_id
                        where m.development_id in ({marks}) and coalesce(m.tier, 1) in ({tier_marks})
                        order by m.development_id, m.rank""", [*part, *tiers]):
                row = dict(r)
                out[row.pop("development_id")].append(row)
        return out

    def retire_clauses(self, clause_ids: list[str]) -> None:
        """Attached matches of clauses removed from the corpus become history (tier 0): kept for the clause's
        timeline only. "Possible" ones go: the clause was never attached there, so they are no part of its history."""
        for part, marks in batches(clause_ids):
            self.db.execute(f"delete from matches where clause_id in ({marks}) and tier = 2", part)
            self.db.execute(f"update matches set tier = 0 where clause_id in ({marks})", part)

    def match_rows(self, tiers: tuple[int, ...] = (1,)) -> list[tuple[int, str, float]]:
        """(development id, clause id, score) of every match in `tiers` (default: attached clauses only)."""
        marks = ",".join("?" * len(tiers))
        return [(r[0], r[1], r[2]) for r in self.db.execute(
            f"select development_id, clause_id, score from matches where coalesce(tier, 1) in ({marks})", list(tiers))]

    def developments_with_clause(self, clause_id: str) -> list[tuple[int, float, str | None, int]]:
        """(development id, score, evidence, tier) of every stored match of one clause."""
        return [(r[0], r[1], r[2], r[3]) for r in self.db.execute(
            "select development_id, score, evidence, coalesce(tier, 1) from matches where clause_id = ?", [clause_id])]
