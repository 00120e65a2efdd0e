"""The only package that speaks SQL: one SQLite file, split into table groups by what they hold.

`Store.open(path)` is the write open (create or migrate, WAL, busy timeout);
`Store.open(path, readonly=True)` is what read commands use: it never creates or changes a file.
Each group (`store.sources`, `store.developments`, `store.vectors`, `store.alerts`,
`store.judgments`, `store.workspace`, `store.lifecycle`) is a small interface over its own tables,
so a second backend is a bounded job: implement the same groups. Every source's crawl results go
in one transaction (`Store.atomic`), so a crash leaves all of a source's new rows or none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from .alerts import AlertTables
from .core import StoreError, connect, development_uid, utcnow
from .developments import DevelopmentTables
from .judgments import VERDICTS, JudgmentTables
from .lifecycle import LifecycleTables
from .schema import migrations
from .sources import SourceTables
from .vectors import VectorTables
from .workspace import WorkspaceTables

__all__ = ["Store", "StoreError", "VERDICTS", "development_uid", "utcnow"]


class Store:
    """An open scan database and its table groups."""

    def __init__(self, db: sqlite_utils.Database, path: Path, *, readonly: bool = False):
        self.db = db
        self.path = path
        self.readonly = readonly
        self.sources = SourceTables(db, path)
        self.developments = DevelopmentTables(db, path)
        self.vectors = VectorTables(db, path)
        self.alerts = AlertTables(db, path)
        self.judgments = JudgmentTables(db, path)
        self.workspace = WorkspaceTables(db, path)
        self.lifecycle = LifecycleTables(db, path)

    @classmethod
    def open(cls, path: Path | str, *, readonly: bool = False) -> "Store":
        """Open for writing (creating or migrating) or, with `readonly`, for reading only."""
        path = Path(path)
        return cls(connect(path, readonly=readonly), path, readonly=readonly)

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
