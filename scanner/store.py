"""The only module that speaks SQL: one SQLite file, migrated on open, written in small atomic units.

WAL and a busy timeout let `scan search` read while a crawl writes; every source's results go in
one transaction (`Store.atomic`), so a crash mid-crawl leaves either all of a source's new rows or
none, and the rerun picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_S = 30

migrations = Migrations("scan")


class StoreError(Exception):
    """The database cannot be opened or used; names the file so the on-call engineer can find it."""


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def development_uid(key: str) -> str:
    """A short, stable public id: the same canonical URL (or page version) always gets the same id."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["sources"].create(
        {
            "id": str, "name": str, "kind": str, "jurisdiction": str, "type": str, "url": str,
            "last_fetch": str, "last_ok": str, "last_status": str, "last_error": str,
            "consecutive_failures": int,
        },
        pk="id",
    )
    db["http_cache"].create(
        {"url": str, "etag": str, "last_modified": str, "content_hash": str, "fetched_at": str},
        pk="url",
    )
    db["fetches"].create(
        {
            "id": int, "source_id": str, "started_at": str, "finished_at": str, "status": str,
            "error": str, "new": int, "changed": int, "unchanged": int, "failed": int,
        },
        pk="id",
    )
    db["fetches"].create_index(["source_id", "started_at"])
    db["developments"].create(
        {
            "id": int, "uid": str, "source_id": str, "kind": str, "jurisdiction": str,
            "url": str, "canonical_url": str, "title": str, "text": str, "summary": str,
            "published": str, "first_seen": str, "content_hash": str, "lang": str, "diff": str,
        },
        pk="id",
        not_null={"uid", "source_id", "url", "canonical_url", "content_hash", "first_seen"},
    )
    db["developments"].create_index(["uid"], unique=True)
    db["developments"].create_index(["canonical_url"])
    db["developments"].create_index(["content_hash"])
    db["developments"].create_index(["published"])
    db["developments"].create_index(["source_id"])
    db["developments"].enable_fts(
        ["title", "text"], create_triggers=True, tokenize="porter unicode61 remove_diacritics 2"
    )
    db["page_versions"].create(
        {"id": int, "source_id": str, "url": str, "fetched_at": str, "content_hash": str, "text": str},
        pk="id",
    )
    db["page_versions"].create_index(["source_id", "id"])
    db["chunks"].create(
        {"id": int, "development_id": int, "idx": int, "text": str, "hash": str}, pk="id"
    )
    db["chunks"].create_index(["development_id", "idx"], unique=True)
    db["embeddings"].create(
        {"hash": str, "model": str, "dim": int, "vector": bytes}, pk=("hash", "model")
    )
    db["clauses"].create(
        {"id": str, "policy": str, "title": str, "file": str, "line": int, "text": str}, pk="id"
    )
    db["state"].create({"key": str, "value": str}, pk="key")
    db["matches"].create(
        {"development_id": int, "clause_id": str, "score": float, "evidence": str, "rank": int},
        pk=("development_id", "clause_id"),
    )
    db["match_state"].create(
        {"development_id": int, "content_hash": str, "corpus": str, "lang": str, "matched_at": str},
        pk="development_id",
    )


@migrations()
def m002_alerts(db: sqlite_utils.Database) -> None:
    """Topic subscriptions, the alerts decided for them, and the per-channel delivery outbox."""
    db["subscriptions"].create(
        {
            "name": str, "topic": str, "jurisdictions": str, "kinds": str, "emails": str, "webhooks": str,
            "backfill_days": int, "created_at": str,
        },
        pk="name",
        not_null={"topic", "created_at"},
    )
    db["alerts"].create(
        {"subscription": str, "development_id": int, "score": float, "created_at": str},
        pk=("subscription", "development_id"),
    )
    db["outbox"].create(
        {
            "id": int, "subscription": str, "development_id": int, "channel": str, "state": str,
            "attempts": int, "last_error": str, "message_id": str, "created_at": str, "updated_at": str,
            "sent_at": str,
        },
        pk="id",
        not_null={"subscription", "development_id", "channel", "state"},
    )
    db["outbox"].create_index(["subscription", "development_id", "channel"], unique=True)
    db["outbox"].create_index(["state"])


@migrations()
def m003_robots(db: sqlite_utils.Database) -> None:
    db["robots"].create({"host": str, "body": str, "fetched_at": str}, pk="host")


class Store:
    """A migrated connection to the scan database, with the queries the rest of scan needs."""

    def __init__(self, db: sqlite_utils.Database, path: Path):
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> "Store":
        """Open (creating if needed), switch on WAL and apply pending migrations."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            db = sqlite_utils.Database(conn)
            if db.journal_mode != "wal":
                db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrations.apply(db)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"{path}: {exc} (is it a scan database? move it aside to start afresh)") from None
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator["Store"]:
        """One transaction (a savepoint when nested): all of it lands, or none of it."""
        with self.db.atomic():
            yield self

    def schema_version(self) -> str:
        applied = migrations.applied(self.db)
        return applied[-1].name if applied else ""

    # --- sources and their health -------------------------------------------------------------

    def sync_sources(self, sources: Iterable[Any]) -> None:
        """Mirror the configured sources, keeping the health columns of ones already known."""
        with self.atomic():
            for source in sources:
                self.db["sources"].upsert(
                    {
                        "id": source.id, "name": source.display_name, "kind": source.kind,
                        "jurisdiction": source.jurisdiction, "type": source.type, "url": source.url,
                    },
                    pk="id",
                )

    def record_source_result(
        self, source_id: str, *, started_at: str, status: str, error: str | None, counts: dict[str, int]
    ) -> None:
        now = utcnow()
        row = self.db["sources"].get(source_id)
        failures = (row.get("consecutive_failures") or 0) + 1 if status == "error" else 0
        update = {"last_fetch": now, "last_status": status, "last_error": error, "consecutive_failures": failures}
        if status != "error":
            update["last_ok"] = now
        self.db["sources"].update(source_id, update)
        self.db["fetches"].insert(
            {
                "source_id": source_id, "started_at": started_at, "finished_at": now, "status": status,
                "error": error, **{k: counts.get(k, 0) for k in ("new", "changed", "unchanged", "failed")},
            }
        )

    def source_health(self, configured: Iterable[str] | None = None) -> list[dict[str, Any]]:
        rows = self.db.query(
            """select s.*, (select count(*) from developments d where d.source_id = s.id) as developments
               from sources s order by s.id"""
        )
        wanted = set(configured) if configured is not None else None
        return [dict(r) for r in rows if wanted is None or r["id"] in wanted]

    def failed_sources_between(self, start: str, end: str) -> list[dict[str, Any]]:
        """Sources whose crawls failed in [start, end): for the digest's header."""
        return [
            dict(r)
            for r in self.db.query(
                """select source_id, count(*) as failures, max(error) as error from fetches
                   where status = 'error' and started_at >= ? and started_at < ?
                   group by source_id order by source_id""",
                [start, end],
            )
        ]

    # --- HTTP validators ----------------------------------------------------------------------

    def http_cache(self, url: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from http_cache where url = ?", [url]))
        return rows[0] if rows else None

    def save_http_cache(self, url: str, etag: str | None, last_modified: str | None, content_hash: str) -> None:
        self.db["http_cache"].upsert(
            {"url": url, "etag": etag, "last_modified": last_modified, "content_hash": content_hash, "fetched_at": utcnow()},
            pk="url",
        )

    # --- robots.txt ---------------------------------------------------------------------------

    def robots(self, host: str, max_age_s: float) -> str | None:
        """The stored robots.txt of `host` ('' for none) if fetched within `max_age_s`, else None."""
        rows = list(self.db.execute("select body, fetched_at from robots where host = ?", [host]))
        if not rows:
            return None
        age = datetime.now(timezone.utc) - datetime.fromisoformat(rows[0][1])
        return rows[0][0] if age.total_seconds() < max_age_s else None

    def save_robots(self, host: str, body: str) -> None:
        self.db["robots"].upsert({"host": host, "body": body, "fetched_at": utcnow()}, pk="host")

    # --- developments -------------------------------------------------------------------------

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        urls = list(urls)
        found: set[str] = set()
        for part, marks in _batches(urls):
            found.update(
                r["canonical_url"]
                for r in self.db.query(f"select canonical_url from developments where canonical_url in ({marks})", part)
            )
        return found

    def has_content(self, content_hash: str) -> bool:
        return bool(list(self.db.query("select 1 from developments where content_hash = ? limit 1", [content_hash])))

    def add_development(self, record: dict[str, Any]) -> int | None:
        """Insert a development unless its uid or content is already stored; returns the row id or None."""
        if self.has_content(record["content_hash"]):
            return None
        if list(self.db.query("select 1 from developments where uid = ?", [record["uid"]])):
            return None
        record = {**record, "first_seen": record.get("first_seen") or utcnow()}
        return self.db["developments"].insert(record).last_pk

    def last_page_version(self, source_id: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query("select * from page_versions where source_id = ? order by id desc limit 1", [source_id])
        )
        return rows[0] if rows else None

    def page_version_count(self, source_id: str) -> int:
        return self.db["page_versions"].count_where("source_id = ?", [source_id])

    def add_page_version(self, source_id: str, url: str, content_hash: str, text: str) -> None:
        self.db["page_versions"].insert(
            {"source_id": source_id, "url": url, "fetched_at": utcnow(), "content_hash": content_hash, "text": text}
        )

    def development(self, uid_or_id: str | int) -> dict[str, Any] | None:
        column = "id" if isinstance(uid_or_id, int) else "uid"
        rows = list(self.db.query(f"select * from developments where {column} = ?", [uid_or_id]))
        return rows[0] if rows else None

    def developments(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        ids: Iterable[int] | None = None,
        kinds: Iterable[str] | None = None,
        jurisdictions: Iterable[str] | None = None,
        sources: Iterable[str] | None = None,
        first_seen_after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Developments filtered by period (published, else first-seen date, inclusive) and facets."""
        where, args = self._filters(since, until, kinds, jurisdictions, sources)
        if ids is not None:
            id_list = list(ids)
            where.append(f"id in ({','.join('?' * len(id_list)) or 'null'})")
            args.extend(id_list)
        if first_seen_after:
            where.append("first_seen > ?")
            args.append(first_seen_after)
        sql = "select * from developments" + (" where " + " and ".join(where) if where else "") + " order by id"
        return [dict(r) for r in self.db.query(sql, args)]

    @staticmethod
    def _filters(
        since: str | None,
        until: str | None,
        kinds: Iterable[str] | None,
        jurisdictions: Iterable[str] | None,
        sources: Iterable[str] | None,
        prefix: str = "",
    ) -> tuple[list[str], list[Any]]:
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

    def filtered_ids(self, **filters: Any) -> set[int]:
        where, args = self._filters(
            filters.get("since"), filters.get("until"), filters.get("kinds"),
            filters.get("jurisdictions"), filters.get("sources"),
        )
        sql = "select id from developments" + (" where " + " and ".join(where) if where else "")
        return {r[0] for r in self.db.execute(sql, args)}  # tuples, not dicts: this runs on every search

    def fts_search(self, query: str, limit: int = 200, **filters: Any) -> list[tuple[int, float]]:
        """BM25 over title+text; user text is quoted so it is never read as FTS syntax.

        Terms are OR-ed: a specialist's question rarely has every word in the document.
        `filters` are those of `filtered_ids` (since, until, kinds, jurisdictions, sources).
        """
        terms = _fts_terms(query)
        if not terms:
            return []
        where, args = self._filters(
            filters.get("since"), filters.get("until"), filters.get("kinds"),
            filters.get("jurisdictions"), filters.get("sources"), prefix="d.",
        )
        rows = self.db.execute(
            f"""select f.rowid, bm25(developments_fts, 3.0, 1.0) as rank from developments_fts f
                join developments d on d.id = f.rowid
                where developments_fts match ? {''.join(' and ' + w for w in where)}
                order by rank limit ?""",
            [" OR ".join(terms), *args, limit],
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    # --- chunks, embeddings and matches -------------------------------------------------------

    def save_chunks(self, development_id: int, chunks: list[tuple[str, str]]) -> None:
        self.db["chunks"].delete_where("development_id = ?", [development_id])
        self.db["chunks"].insert_all(
            {"development_id": development_id, "idx": i, "text": text, "hash": h} for i, (text, h) in enumerate(chunks)
        )

    def chunks(self, development_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from chunks where development_id = ? order by idx", [development_id])]

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for part, marks in _batches(hashes):
            for row in self.db.execute(
                f"select hash, vector from embeddings where model = ? and hash in ({marks})", [model, *part]
            ):
                found[row[0]] = row[1]
        return found

    def save_vectors(self, model: str, vectors: dict[str, bytes], dim: int) -> None:
        self.db["embeddings"].upsert_all(
            ({"hash": h, "model": model, "dim": dim, "vector": v} for h, v in vectors.items()), pk=("hash", "model")
        )

    def all_chunk_vectors(self, model: str) -> list[tuple[int, bytes]]:
        """(development id, vector) for every stored chunk, for one in-memory search matrix."""
        return [
            (r[0], r[1])
            for r in self.db.execute(
                """select c.development_id, e.vector from chunks c
                   join embeddings e on e.hash = c.hash and e.model = ? order by c.development_id, c.idx""",
                [model],
            )
        ]

    def chunk_vector_rows(self, model: str) -> list[tuple[int, int, bytes]]:
        """(chunk id, development id, vector) of every chunk with a vector, grouped by development: one search matrix."""
        return [
            (r[0], r[1], r[2])
            for r in self.db.execute(
                """select c.id, c.development_id, e.vector from chunks c
                   join embeddings e on e.hash = c.hash and e.model = ?
                   order by c.development_id, c.idx""",
                [model],
            )
        ]

    def search_marker(self) -> tuple[Any, ...]:
        """A cheap value that changes whenever chunks, vectors, matches or the corpus change.

        Lets a long-lived process keep its in-memory search index until `analyse` writes.
        """
        return tuple(self.db.execute(
            """select (select max(id) from chunks), (select count(*) from chunks),
                      (select max(rowid) from embeddings), (select count(*) from matches),
                      (select max(matched_at) from match_state), (select value from state where key = 'corpus')"""
        ).fetchone())

    def match_rows(self) -> list[tuple[int, str, float]]:
        """(development id, clause id, score) of every attached clause."""
        return [(r[0], r[1], r[2]) for r in self.db.execute("select development_id, clause_id, score from matches")]

    def chunk_texts(self, development_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
        """(chunk id, text) of each development's chunks in order, for snippets."""
        ids = list(development_ids)
        out: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
        for part, marks in _batches(ids):
            for r in self.db.execute(
                f"select development_id, id, text from chunks where development_id in ({marks}) order by development_id, idx",
                part,
            ):
                out[r[0]].append((r[1], r[2]))
        return out

    def chunk_vectors_for(self, model: str, development_ids: Iterable[int]) -> list[tuple[int, bytes]]:
        """(development id, vector) for the stored chunks of some developments: the digest's story clustering."""
        ids = list(development_ids)
        found: list[tuple[int, bytes]] = []
        for part, marks in _batches(ids):
            found.extend(
                (r[0], r[1])
                for r in self.db.execute(
                    f"""select c.development_id, e.vector from chunks c
                        join embeddings e on e.hash = c.hash and e.model = ?
                        where c.development_id in ({marks}) order by c.development_id, c.idx""",
                    [model, *part],
                )
            )
        return found

    def set_state(self, key: str, value: str) -> None:
        self.db["state"].upsert({"key": key, "value": value}, pk="key")

    def get_state(self, key: str) -> str | None:
        rows = list(self.db.query("select value from state where key = ?", [key]))
        return rows[0]["value"] if rows else None

    def replace_clauses(self, clauses: Iterable[dict[str, Any]]) -> None:
        self.db["clauses"].delete_where()
        self.db["clauses"].insert_all(clauses, pk="id")

    def clause_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from clauses order by file, line")]

    def unmatched(self, corpus: str) -> list[dict[str, Any]]:
        """Developments never matched, or matched against other text or another corpus version."""
        return [
            dict(r)
            for r in self.db.query(
                """select d.* from developments d left join match_state m on m.development_id = d.id
                   where m.development_id is null or m.content_hash != d.content_hash or m.corpus != ?
                   order by d.id""",
                [corpus],
            )
        ]

    def save_matches(self, development_id: int, content_hash: str, corpus: str, lang: str | None, matches: list[dict[str, Any]]) -> None:
        with self.atomic():
            self.db["matches"].delete_where("development_id = ?", [development_id])
            self.db["matches"].insert_all(
                {"development_id": development_id, "rank": i, **m} for i, m in enumerate(matches)
            )
            self.db["match_state"].upsert(
                {"development_id": development_id, "content_hash": content_hash, "corpus": corpus, "lang": lang, "matched_at": utcnow()},
                pk="development_id",
            )
            if lang:
                self.db["developments"].update(development_id, {"lang": lang})

    def matches_for(self, development_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        ids = list(development_ids)
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for part, marks in _batches(ids):
            for r in self.db.query(
                f"""select m.development_id, m.clause_id as id, c.title, c.policy, c.file, m.score, m.evidence
                    from matches m left join clauses c on c.id = m.clause_id
                    where m.development_id in ({marks}) order by m.development_id, m.rank""",
                part,
            ):
                row = dict(r)
                out[row.pop("development_id")].append(row)
        return out

    def development_json(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The contract's development shape, with attached clauses, for a batch of rows."""
        matches = self.matches_for(r["id"] for r in rows)
        out = []
        for row in rows:
            item = {
                "id": row["uid"], "title": row["title"], "url": row["url"], "source": row["source_id"],
                "kind": row["kind"], "jurisdiction": row["jurisdiction"], "published": row["published"],
                "summary": row["summary"] or "",
                "clauses": [
                    {"id": m["id"], "title": m["title"], "policy": m["policy"], "score": round(m["score"], 4), "evidence": m["evidence"]}
                    for m in matches.get(row["id"], [])
                ],
                "lang": row["lang"], "first_seen": row["first_seen"],
            }
            if row.get("diff"):
                item["diff"] = row["diff"]
            out.append(item)
        return out

    # --- alert subscriptions and the delivery outbox -------------------------------------------

    def subscription(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from subscriptions where name = ?", [name]))
        return rows[0] if rows else None

    def subscriptions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from subscriptions order by name")]

    def save_subscription(self, row: dict[str, Any], channels: Iterable[str]) -> None:
        """Insert or replace a subscription; undelivered alerts to channels it no longer has are dropped."""
        keep = list(channels)
        with self.atomic():
            self.db["subscriptions"].upsert(row, pk="name")
            self.db.execute(
                f"""delete from outbox where subscription = ? and state != 'sent'
                    and channel not in ({','.join('?' * len(keep)) or 'null'})""",
                [row["name"], *keep],
            )

    def delete_subscription(self, name: str) -> bool:
        """Remove a subscription and its undelivered alerts; sent ones stay as history."""
        with self.atomic():
            found = self.db.execute("delete from subscriptions where name = ?", [name]).rowcount
            self.db.execute("delete from outbox where subscription = ? and state != 'sent'", [name])
        return bool(found)

    def alerted_ids(self, subscription: str) -> set[int]:
        """Developments already decided for this subscription: each is alerted at most once."""
        return {r[0] for r in self.db.execute("select development_id from alerts where subscription = ?", [subscription])}

    def add_alert(self, subscription: str, development_id: int, score: float, deliveries: dict[str, str]) -> None:
        """Record an alert and queue one delivery per channel (`deliveries` maps channel to Message-ID)."""
        now = utcnow()
        with self.atomic():
            self.db["alerts"].insert(
                {"subscription": subscription, "development_id": development_id, "score": score, "created_at": now},
                ignore=True,
            )
            self.db["outbox"].insert_all(
                (
                    {"subscription": subscription, "development_id": development_id, "channel": channel,
                     "state": "pending", "attempts": 0, "message_id": message_id, "created_at": now, "updated_at": now}
                    for channel, message_id in deliveries.items()
                ),
                ignore=True,
            )

    def deliveries(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Outbox rows with their alert's score, oldest first, optionally only in `states`."""
        wanted = list(states or [])
        where = f"where o.state in ({','.join('?' * len(wanted))})" if wanted else ""
        return [
            dict(r)
            for r in self.db.query(
                f"""select o.*, a.score from outbox o left join alerts a
                    on a.subscription = o.subscription and a.development_id = o.development_id
                    {where} order by o.id""",
                wanted,
            )
        ]

    def claim_delivery(self, delivery_id: int) -> bool:
        """Mark a pending or failed delivery 'sending' and commit, before anything is sent.

        False when another run claimed it first; committing first is what lets a crash mid-send be
        recognised afterwards (a row left 'sending') instead of silently sending twice.
        """
        with self.atomic():
            claimed = self.db.execute(
                """update outbox set state = 'sending', updated_at = ?
                   where id = ? and state in ('pending', 'failed')""",
                [utcnow(), delivery_id],
            ).rowcount
        return bool(claimed)

    def finish_delivery(self, delivery_id: int, error: str | None) -> None:
        """Record the outcome of a claimed delivery: 'sent', or 'failed' (retried next run) with why."""
        now = utcnow()
        state = "failed" if error else "sent"
        with self.atomic():
            self.db.execute(
                """update outbox set state = ?, last_error = ?, attempts = coalesce(attempts, 0) + 1,
                   updated_at = ?, sent_at = ? where id = ?""",
                [state, error, now, None if error else now, delivery_id],
            )

    def mark_unconfirmed(self, claimed_before: str) -> list[dict[str, Any]]:
        """Deliveries left 'sending' since before `claimed_before` (a crashed run) become 'unconfirmed'."""
        with self.atomic():
            rows = [dict(r) for r in self.db.query(
                "select * from outbox where state = 'sending' and updated_at < ? order by id", [claimed_before])]
            self.db.execute(
                "update outbox set state = 'unconfirmed', updated_at = ? where state = 'sending' and updated_at < ?",
                [utcnow(), claimed_before],
            )
        return rows

    def requeue_unconfirmed(self) -> int:
        """Put 'unconfirmed' deliveries back in the queue, when an operator decides to resend them."""
        with self.atomic():
            return self.db.execute(
                "update outbox set state = 'pending', updated_at = ? where state = 'unconfirmed'", [utcnow()]
            ).rowcount


def _batches(values: list[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """Slices of `values` with their `?,?,…` placeholders: SQLite caps the parameters of one query."""
    for start in range(0, len(values), size):
        part = values[start : start + size]
        yield part, ",".join("?" * len(part))


def _fts_terms(query: str) -> list[str]:
    words = re.findall(r"\w+", query.lower())
    return [json.dumps(w) for w in words if len(w) > 1 or not w.isascii()]
