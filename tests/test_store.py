"""Schema migrations and crash-safe opening of the SQLite file."""

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from scanner.store import Store, StoreError, migrations


def test_empty_file_gets_every_migration_and_wal(tmp_path: Path) -> None:
    with Store.open(tmp_path / "scan.db") as store:
        applied = [m.name for m in migrations.applied(store.db)]
        assert applied == [m.name for m in migrations._migrations]
        assert store.db.journal_mode == "wal"
        assert {"developments", "developments_fts", "chunks", "embeddings", "matches", "robots"} <= set(store.db.table_names())
        assert store.db.execute("pragma busy_timeout").fetchone()[0] >= 10_000


def test_previous_schema_is_migrated_forward_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m002_alerts")
    db["developments"].insert(
        {"uid": "u1", "source_id": "s", "url": "https://x/1", "canonical_url": "https://x/1", "content_hash": "h",
         "first_seen": "2026-11-01T00:00:00+00:00", "title": "Old row"}
    )
    db.close()
    with Store.open(path) as store:
        assert store.schema_version() == migrations._migrations[-1].name
        assert [r["title"] for r in store.developments.list()] == ["Old row"]
        assert "robots" in store.db.table_names()


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "scan.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="scan.db"):
        Store.open(path)


def test_robots_cache_expires(tmp_path: Path) -> None:
    with Store.open(tmp_path / "scan.db") as store:
        store.sources.save_robots("example.org", "User-agent: *\nDisallow: /x\n")
        assert store.sources.robots("example.org", 3600).startswith("User-agent")
        assert store.sources.robots("example.org", 0) is None
        assert store.sources.robots("other.org", 3600) is None
