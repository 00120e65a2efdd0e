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


def test_the_clause_route_reads_possible_clauses_only_when_asked_and_honours_judgments(tmp_path: Path) -> None:
    from scanner.developments import attached_pairs

    with Store.open(tmp_path / "scan.db") as store:
        row_id = store.developments.add({
            "uid": "u1", "source_id": "s", "url": "https://x/1", "canonical_url": "https://x/1", "content_hash": "h",
            "first_seen": "2026-11-01T00:00:00+00:00", "title": "A development"})
        store.vectors.save_matches(row_id, "h", "corpus", [
            {"clause_id": "GIFT-1", "score": 0.8, "evidence": "e"},
            {"clause_id": "CASH-2", "score": 0.3, "evidence": "", "tier": 2},
            {"clause_id": "TAX-1", "score": 0.25, "evidence": "", "tier": 2}])
        assert attached_pairs(store) == [(row_id, "GIFT-1", 0.8)]
        assert sorted(attached_pairs(store, with_possible=True)) == [(row_id, "CASH-2", 0.3), (row_id, "GIFT-1", 0.8),
                                                                     (row_id, "TAX-1", 0.25)]
        store.judgments.add([{"development_uid": "u1", "url": "https://x/1", "clause_id": "TAX-1", "verdict": "wrong",
                              "by": "t", "note": None, "at": "2026-11-02T00:00:00Z"}])
        assert sorted(attached_pairs(store, with_possible=True)) == [(row_id, "CASH-2", 0.3), (row_id, "GIFT-1", 0.8)]
