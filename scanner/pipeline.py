"""One cycle of scan, in one place: crawl → analyse → (alerts). The CLI, the demo, the bench and the
web server all run it from here.

Whoever runs a cycle holds the database's run lock (`run_lock`, a file beside it) for its whole
length, so two overlapping cron runs never interleave: the second waits for the first, up to `wait`
seconds, then gives up with a `RunLocked` error that says who holds it — nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scanner.analyse import AnalyseResult, Progress, analyse
from scanner.config import Config
from scanner.crawl import SourceResult, crawl
from scanner.errors import ScanError
from scanner.lifecycle import analyse_lifecycle
from scanner.store import Store, utcnow

if TYPE_CHECKING:
    from scanner.alerts import AlertRun

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 300.0


class RunLocked(ScanError):
    """Another scan run holds the database's run lock."""


@dataclass
class CycleResult:
    """What a cycle did: each source's outcome, the analysis, and the alert run when alerts were on."""

    sources: list[SourceResult]
    analysis: AnalyseResult
    alerts: "AlertRun | None" = None

    @property
    def all_failed(self) -> bool:
        """No source could be fetched at all: a total outage that cron must see (exit 1)."""
        return bool(self.sources) and all(r.status == "error" for r in self.sources)

    @property
    def failed_sources(self) -> list[str]:
        return [r.source_id for r in self.sources if r.status == "error"]


class SourceProgress(Progress):
    """Progress that also hears about each finished source."""

    def source_done(self, result: SourceResult) -> None:
        """One source's crawl is committed."""


@contextmanager
def run_lock(database: Path, *, wait: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold `<database>.lock` (filelock) for a run; wait up to `wait` seconds for a run that holds it."""
    from filelock import FileLock, Timeout

    lock_path = Path(f"{database}.lock")
    info_path = Path(f"{database}.lock.json")
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read_holder(info_path)
        log.warning("another scan run holds %s%s; waiting up to %.0fs", database, holder, wait)
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise RunLocked(f"another scan run holds {database}{holder}; this run did nothing "
                            f"(it waited {wait:.0f}s; see --wait)") from None
    try:
        info_path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utcnow()}))
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f" (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return ""


def run_cycle(
    config: Config,
    store: Store,
    *,
    sources: Iterable[str] | None = None,
    alerts: bool = False,
    progress: SourceProgress | None = None,
) -> CycleResult:
    """Crawl (all due sources, or `sources`), analyse what is new, then deliver alerts if asked.

    The corpus is loaded before anything is fetched, so an unreadable corpus stops the cycle
    before it costs any traffic. The caller holds `run_lock` (the CLI does).
    """
    from scanner.policies import load_corpus

    progress = progress or SourceProgress()
    chosen = list(sources or [])
    for source_id in chosen:
        config.source(source_id)
    load_corpus(config.policies)
    progress.stage("crawling", len(chosen or config.sources))
    results = crawl(config, store, chosen or None, on_progress=progress.source_done)
    analysis = analyse(config, store, progress=progress)
    progress.stage("finding key dates and threads")
    analysis.lifecycle = analyse_lifecycle(store)
    alert_run = None
    if alerts:
        from scanner.alerts import run_alerts

        alert_run = run_alerts(config, store)
    return CycleResult(results, analysis, alert_run)
