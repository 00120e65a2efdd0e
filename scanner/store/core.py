"""Opening a scan database safely, and the base every table group builds on.

A write open creates or migrates, but only a file that is new or already a scan database; a
read open (search, digest, sources, …) never creates, migrates or writes, refuses a missing
file or a foreign one, and works on a read-only mount. Every SQLite error raised inside a
table method becomes a `StoreError` naming the database file, so the CLI prints one line.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlite_utils

from scanner.errors import ScanError

from .schema import migrations

BUSY_TIMEOUT_S = 30
F = TypeVar("F", bound=Callable[..., Any])


class StoreError(ScanError):
    """The database cannot be opened or used; names the file so the on-call engineer can find it."""


def utcnow() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def development_uid(key: str) -> str:
    """A short, stable public id: the same canonical URL (or page version) always gets the same id."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def batches(values: list[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """Slices of `values` with their `?,?,…` placeholders: SQLite caps the parameters of one query."""
    for start in range(0, len(values), size):
        part = values[start : start + size]
        yield part, ",".join("?" * len(part))


class Tables:
    """A group of tables with their queries; public methods turn SQLite errors into `StoreError`."""

    def __init__(self, db: sqlite_utils.Database, path: Path):
        self.db = db
        self.path = path

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and callable(value) and not isinstance(value, (staticmethod, classmethod, type)):
                setattr(cls, name, _wrapped(value))

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield


def _wrapped(method: F) -> F:
    @functools.wraps(method)
    def call(self: Tables, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: {exc}") from exc

    return call  # type: ignore[return-value]


def connect(path: Path, *, readonly: bool) -> sqlite_utils.Database:
    """An open, checked connection: see the module docstring for what each mode refuses."""
    path = Path(path)
    if readonly:
        return _connect_readonly(path)
    if path.exists() and path.is_dir():
        raise StoreError(f"{path} is a folder, not a database file")
    is_new = not path.exists() or path.stat().st_size == 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        if not is_new:
            _check_ours(db, path)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        if db.journal_mode != "wal":
            db.enable_wal()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"database {path}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"database {path}: {exc.strerror or exc}") from None
    return db


def _connect_readonly(path: Path) -> sqlite_utils.Database:
    if not path.is_file():
        raise StoreError(f"no database at {path} — run `scan crawl` first, or pass --config/--db")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # A WAL database on a read-only mount: no -shm can be made, so read it as immutable.
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        _check_ours(db, path)
        if migrations.pending(db):
            raise StoreError(
                f"database {path} was written by an older scan; run a write command once "
                "(`scan crawl`) to upgrade it"
            )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"database {path}: {exc}") from None
    return db


def _check_ours(db: sqlite_utils.Database, path: Path) -> None:
    """Refuse a SQLite file some other application owns, before anything is written to it."""
    names = set(db.table_names())
    if not names:
        return
    if "_sqlite_migrations" not in names or not migrations.applied(db):
        raise StoreError(
            f"{path} is not a scan database (it has tables scan did not make: "
            f"{', '.join(sorted(names)[:4])}{', …' if len(names) > 4 else ''}); "
            "pass --db with another path"
        )
