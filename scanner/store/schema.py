"""The schema of a scan database: append-only migrations, applied by a write open.

Never edit a migration that has shipped; add the next one. Each runs in one transaction with
its record in `_sqlite_migrations`, so a failure leaves it pending.
"""

from __future__ import annotations

import json

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("scan")


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


@migrations()
def m004_workspace(db: sqlite_utils.Database) -> None:
    """Round two: duplicates kept, channels in one column, judgments, reviews, clause history, lifecycle."""
    db["developments"].add_column("duplicate_of", int)
    db["developments"].add_column("meta", str)  # JSON a structured source states: key dates, stage, thread keys
    db["developments"].create_index(["duplicate_of"])
    db["subscriptions"].add_column("channels", str)
    for row in list(db.query("select name, emails, webhooks from subscriptions")):
        channels = [f"email:{a}" for a in (row["emails"] or "").split("\n") if a]
        channels += [f"webhook:{u}" for u in (row["webhooks"] or "").split("\n") if u]
        db["subscriptions"].update(row["name"], {"channels": json.dumps(channels)})
    db["matches"].add_column("tier", int)
    db.execute("update matches set tier = 1")
    db["judgments"].create(
        {"id": int, "development_uid": str, "url": str, "clause_id": str, "verdict": str, "by": str,
         "note": str, "at": str},
        pk="id", not_null={"development_uid", "clause_id", "verdict", "at"},
    )
    db["judgments"].create_index(["development_uid", "clause_id"])
    db["judgments"].create_index(["clause_id"])
    db["reviews"].create(
        {"id": int, "clause_id": str, "at": str, "by": str, "note": str, "clause_hash": str},
        pk="id", not_null={"clause_id", "at"},
    )
    db["reviews"].create_index(["clause_id", "at"])
    db["clause_versions"].create(
        {"id": int, "clause_id": str, "hash": str, "title": str, "policy": str, "file": str, "line": int,
         "text": str, "first_seen": str, "removed_at": str, "renamed_to": str},
        pk="id", not_null={"clause_id", "hash", "first_seen"},
    )
    db["clause_versions"].create_index(["clause_id", "hash"], unique=True)
    db["key_dates"].create(
        {"id": int, "development_id": int, "date": str, "type": str, "phrase": str},
        pk="id", not_null={"development_id", "date", "type"},
    )
    db["key_dates"].create_index(["development_id"])
    db["key_dates"].create_index(["date"])
    db["threads"].create(
        {"development_id": int, "thread_id": str, "stage": str}, pk="development_id",
    )
    db["threads"].create_index(["thread_id"])
    db["lifecycle_state"].create(
        {"development_id": int, "content_hash": str, "version": str, "analysed_at": str}, pk="development_id",
    )
