"""Developments, their full-text index and tracked-page versions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from .core import Tables, batches, utcnow


class DevelopmentTables(Tables):
    """`developments` (+ `developments_fts`) and `page_versions`."""

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for part, marks in batches(list(urls)):
            found.update(r[0] for r in self.db.execute(
                f"select canonical_url from developments where canonical_url in ({marks})", part))
        return found

    def add(self, record: dict[str, Any]) -> int | None:
        """Insert a development unless its uid is stored; returns the new row id or None.

        A page whose text equals an earlier development's (a consent wall, a syndicated body) is
        still stored, as its own development, with `duplicate_of` pointing at the first one.
        """
        if self.db.execute("select 1 from developments where uid = ?", [record["uid"]]).fetchone():
            return None
        first = self.db.execute("select min(id) from developments where content_hash = ?",
                                [record["content_hash"]]).fetchone()[0]
        record = {**record, "first_seen": record.get("first_seen") or utcnow(), "duplicate_of": first}
        return self.db["developments"].insert(record).last_pk

    def get(self, key: str | int) -> dict[str, Any] | None:
        """By row id (int), public uid, or URL (as given or canonical)."""
        if isinstance(key, int):
            sql, args = "select * from developments where id = ?", [key]
        else:
            sql, args = "select * from developments where uid = ? or url = ? or canonical_url = ? order by id limit 1", [key, key, key]
        rows = list(self.db.query(sql, args))
        return rows[0] if rows else None

    def by_uids(self, uids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored rows of the given public ids (absent ones are left out)."""
        out: dict[str, dict[str, Any]] = {}
        for part, marks in batches(list(uids)):
            out.update((r["uid"], dict(r)) for r in self.db.query(f"select * from developments where uid in ({marks})", part))
        return out

    def count(self) -> int:
        return self.db.execute("select count(*) from developments").fetchone()[0]

    def list(
        self, *, since: str | None = None, until: str | None = None, ids: Iterable[int] | None = None,
        kinds: Iterable[str] | None = None, jurisdictions: Iterable[str] | None = None,
        sources: Iterable[str] | None = None, first_seen_after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Developments filtered by period (published, else first-seen date, inclusive) and facets."""
        where, args = filters(since, until, kinds, jurisdictions, sources)
        if ids is not None:
            id_list = list(ids)
            where.append(f"id in ({','.join('?' * len(id_list)) or 'null'})")
            args.extend(id_list)
        if first_seen_after:
            where.append("first_seen > ?")
            args.append(first_seen_after)
        sql = "select * from developments" + (" where " + " and ".join(where) if where else "") + " order by id"
        return [dict(r) for r in self.db.query(sql, args)]

    def filtered_ids(self, **facets: Any) -> set[int]:
        where, args = filters(facets.get("since"), facets.get("until"), facets.get("kinds"),
                              facets.get("jurisdictions"), facets.get("sources"))
        sql = "select id from developments" + (" where " + " and ".join(where) if where else "")
        return {r[0] for r in self.db.execute(sql, args)}  # tuples, not dicts: this runs on every search

    def fts_search(self, query: str, limit: int = 200, **facets: Any) -> list[tuple[int, float]]:
        """BM25 over title+text (title weighted 3); user text is quoted so it is never FTS syntax.

        Terms are OR-ed: a specialist's question rarely has every word in the document.
        """
        terms = fts_terms(query)
        if not terms:
            return []
        where, args = filters(facets.get("since"), facets.get("until"), facets.get("kinds"),
                              facets.get("jurisdictions"), facets.get("sources"), prefix="d.")
        rows = self.db.execute(
            f"""select f.rowid, bm25(developments_fts, 3.0, 1.0) as rank from developments_fts f
                join developments d on d.id = f.rowid
                where developments_fts match ? {''.join(' and ' + w for w in where)}
                order by rank limit ?""",
            [" OR ".join(terms), *args, limit],
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    def set_lang(self, development_id: int, lang: str) -> None:
        self.db["developments"].update(development_id, {"lang": lang})

    def duplicates_of(self, ids: Iterable[int]) -> dict[int, list[int]]:
        """Row ids stored with the same text as each given development (both directions)."""
        out: dict[int, list[int]] = {}
        for part, marks in batches(list(ids)):
            for first, other in self.db.execute(
                    f"""select coalesce(a.duplicate_of, a.id), b.id from developments a join developments b
                        on coalesce(b.duplicate_of, b.id) = coalesce(a.duplicate_of, a.id) and b.id != a.id
                        where a.id in ({marks})""", part):
                out.setdefault(first, []).append(other)
        return out

    def last_page_version(self, source_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from page_versions where source_id = ? order by id desc limit 1", [source_id]))
        return rows[0] if rows else None

    def add_page_version(self, source_id: str, url: str, content_hash: str, text: str) -> None:
        self.db["page_versions"].insert(
            {"source_id": source_id, "url": url, "fetched_at": utcnow(), "content_hash": content_hash, "text": text})


def filters(
    since: str | None, until: str | None, kinds: Iterable[str] | None, jurisdictions: Iterable[str] | None,
    sources: Iterable[str] | None, prefix: str = "",
) -> tuple[list[str], list[Any]]:
    """SQL conditions for the period (published, else first-seen day) and the facets, OR-ed within one facet."""
    where: list[str] = []
    args: list[Any] = []
    day = f"coalesce({prefix}published, substr({prefix}first_seen, 1, 10))"
    if since:
        where.append(f"{day} >= ?")
        args.append(since)
    if until:
        where.append(f"{day} <= ?")
        args.append(until)
    for column, values in (("kind", kinds), ("jurisdiction", jurisdictions), ("source_id", sources)):
        values = [v for v in (values or []) if v]
        if values:
            where.append(f"upper({prefix}{column}) in ({','.join('upper(?)' for _ in values)})")
            args.extend(values)
    return where, args


def fts_terms(query: str) -> list[str]:
    words = re.findall(r"\w+", query.lower())
    return [json.dumps(w) for w in words if len(w) > 1 or not w.isascii()]
