"""A newcomer's first hour, through the real CLI: read commands never write, empty results say why,
exit codes are honest, and the help text keeps what it promises."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import load_config

READ_COMMANDS = [
    ["search", "gift cash-out minors"],
    ["digest", "--week", "2026-W47", "--out", "-"],
    ["subscriptions"],
    ["clauses"],
    ["clause", "GIFT-4"],
    ["judgments"],
    ["alerts", "--dry-run"],
]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def write_config(folder: Path, db: str = "scanner.db", sources: str = "[]") -> Path:
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    (folder / "policies" / "gifts.md").write_text("# Gifts\n\n## GIFT-1 Limits\n\nGifts are capped.\n", encoding="utf-8")
    path = folder / "sources.yaml"
    path.write_text(f"database: {db}\npolicies: policies/\nsources: {sources}\n", encoding="utf-8")
    return path


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_a_read_command_on_a_missing_database_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path)
    missing = tmp_path / "h" / "nodir" / "missing.db"
    result = invoke(*command, "--config", str(config), "--db", str(missing))
    assert result.exit_code == 1, result.output
    assert f"no database at {missing}" in result.stderr and "scan crawl" in result.stderr
    assert not (tmp_path / "h").exists()


def test_scan_db_pointing_at_a_missing_file_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    monkeypatch.setenv("SCAN_DB", str(tmp_path / "scaner.db"))
    result = invoke("search", "loot boxes", "--config", str(config))
    assert result.exit_code == 1 and "no database at" in result.stderr
    assert not (tmp_path / "scaner.db").exists()


def foreign_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('keep me')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("command", [["search", "loot"], ["crawl"], ["subscribe", "x", "--topic", "loot"], ["sources"]],
                         ids=lambda c: c[0])
def test_another_applications_sqlite_file_is_refused_untouched(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path)
    other = foreign_db(tmp_path / "other.sqlite")
    before = digest_of(other)
    result = invoke(*command, "--config", str(config), "--db", str(other))
    assert result.exit_code == 1, result.output
    assert "not a scan database" in result.stderr
    assert digest_of(other) == before
    assert not Path(f"{other}-wal").exists() or Path(f"{other}-wal").stat().st_size == 0


def test_an_empty_policies_folder_is_refused_before_a_database_exists(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for path in (tmp_path / "policies").iterdir():
        path.unlink()
    result = invoke("crawl", "--config", str(config))
    assert result.exit_code == 1
    assert "no clauses found" in result.stderr
    assert not (tmp_path / "scanner.db").exists()


def test_a_policy_file_without_clause_headings_is_named(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "policies" / "notes.md").write_text("# Notes\n\nJust prose, no clauses.\n", encoding="utf-8")
    result = invoke("policies", "--config", str(config))
    assert result.exit_code == 0
    assert "notes.md: no clause headings" in result.stderr


def test_an_empty_database_says_so_and_points_at_the_demo(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert invoke("subscribe", "x", "--topic", "loot", "--config", str(config)).exit_code == 0  # creates the db
    (tmp_path / "scan-demo").mkdir()
    (tmp_path / "scan-demo" / "sources.yaml").write_text("sources: []\n")
    result = invoke("search", "gift cash-out minors", "--config", str(config))
    assert result.exit_code == 0
    assert "holds no developments yet" in result.stderr and "--config scan-demo/sources.yaml" in result.stderr


def test_a_missing_database_beside_the_demo_points_at_the_demo(tmp_path: Path) -> None:
    """The first search after `scan demo`, typed in the same folder without --config."""
    config = write_config(tmp_path)
    (tmp_path / "scan-demo").mkdir()
    (tmp_path / "scan-demo" / "sources.yaml").write_text("sources: []\n")
    result = invoke("search", "gift cash-out minors", "--config", str(config))
    assert result.exit_code == 1
    assert "no database at" in result.stderr and "scan --config scan-demo/sources.yaml search" in result.stderr
    assert not (tmp_path / "scanner.db").exists()


def test_unknown_source_ids_are_refused_like_crawl_does(tmp_path: Path) -> None:
    config = write_config(tmp_path, sources="[{id: ofcom-news, kind: regulator, feed: 'https://example.org/rss'}]")
    assert invoke("subscribe", "x", "--topic", "loot", "--config", str(config)).exit_code == 0
    result = invoke("search", "loot", "-s", "ofcom-new", "--config", str(config))
    assert result.exit_code == 1
    assert "no source 'ofcom-new'" in result.stderr and "ofcom-news" in result.stderr


def test_subscriptions_and_alerts_say_what_to_do_next(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert invoke("subscribe", "x", "--topic", "loot", "--config", str(config)).exit_code == 0
    assert invoke("unsubscribe", "x", "--config", str(config)).exit_code == 0
    listed = invoke("subscriptions", "--config", str(config))
    assert listed.exit_code == 0 and "no subscriptions yet" in listed.stderr and "scan subscribe" in listed.stderr
    assert invoke("subscribe", "y", "--topic", "loot", "--config", str(config)).exit_code == 0
    dry = invoke("alerts", "--dry-run", "--config", str(config))
    assert dry.exit_code == 0 and "--backfill" in dry.stderr


def test_config_and_db_are_accepted_before_the_command(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "elsewhere.db"
    assert invoke("--config", str(config), "--db", str(db), "subscribe", "x", "--topic", "loot").exit_code == 0
    assert db.is_file()
    listed = invoke("--config", str(config), "--db", str(db), "subscriptions", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["subscriptions"][0]["name"] == "x"


@pytest.mark.parametrize("command", ["crawl", "search", "digest", "sources", "subscriptions", "clause", "judge"])
def test_help_keeps_the_bracketed_defaults_and_env_names(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "[env SCAN_CONFIG; default ./sources.yaml]" in text and "[env SCAN_DB]" in text
    assert "<bool>" not in text


def test_digest_to_stdout_defaults_to_markdown(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert invoke("subscribe", "x", "--topic", "loot", "--config", str(config)).exit_code == 0
    result = invoke("digest", "--week", "2026-W47", "--out", "-", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Horizon scan digest 2026-W47")


def test_sources_has_a_header_and_aligned_columns(tmp_path: Path) -> None:
    sources = ("[{id: a-very-long-source-identifier-indeed, kind: regulator, feed: 'https://example.org/rss'},"
               " {id: b, kind: competitor, page: 'https://example.org/p'}]")
    config = write_config(tmp_path, sources=sources)
    result = invoke("sources", "--config", str(config))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["SOURCE", "KIND"]
    starts = {line.index(kind) for line, kind in zip(lines[1:], ("regulator", "competitor"))}
    assert len(starts) == 1 and starts == {lines[0].index("KIND")}
    assert "no database" in result.stderr and not (tmp_path / "scanner.db").exists()


def test_a_database_on_a_read_only_mount_can_be_searched(analysed_site, tmp_path: Path) -> None:
    """A valid database where no -shm/-wal can be made: reads work, and the advice is not to move it aside."""
    config = analysed_site.copy_to(tmp_path / "site")
    folder = load_config(config).database.parent
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(folder), str(mount)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        unmount = ["umount", str(mount)]
    else:  # without root, a folder without write permission is the same to SQLite
        os.rmdir(mount)
        mount = folder
        os.chmod(folder, 0o555)
        unmount = ["chmod", "755", str(folder)]
    try:
        with pytest.raises(OSError):
            (mount / "probe").write_text("x")
        result = invoke("search", "loot box odds", "--json", "--config", str(config), "--db", str(mount / "scanner.db"))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["results"]
    finally:
        subprocess.run(unmount, check=True)


def test_two_overlapping_runs_do_not_collide(tmp_path: Path) -> None:
    """The second waits for the run lock and, when it cannot get it in time, says who holds it and exits 1."""
    from scanner.pipeline import run_lock

    config = write_config(tmp_path)
    db = load_config(config).database
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with run_lock(db):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    held.wait(10)
    try:
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-m", "scanner", "run", "--config", str(config), "--wait", "1"],
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == 1, child.stderr
        assert "another scan run holds" in child.stderr and f"pid {os.getpid()}" in child.stderr
        assert "Traceback" not in child.stderr
        assert time.monotonic() - started >= 1
    finally:
        release.set()
        holder.join()
    # with the lock free again, the same run goes through
    child = subprocess.run([sys.executable, "-m", "scanner", "run", "--config", str(config), "--wait", "1"],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr


def test_sqlite_errors_become_one_line_with_the_path(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert invoke("subscribe", "x", "--topic", "loot", "--config", str(config)).exit_code == 0
    db = load_config(config).database
    conn = sqlite3.connect(db)
    conn.execute("drop table outbox")
    conn.commit()
    conn.close()
    result = invoke("alerts", "--config", str(config))
    assert result.exit_code == 1
    assert str(db) in result.stderr and "Traceback" not in result.output
