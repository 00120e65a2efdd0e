"""Crawl progress and the closing summary, both on stderr so stdout stays clean for `--json`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scanner.analyse import AnalyseResult
from scanner.crawl import SourceResult


class CrawlProgress:
    """A bar on a terminal; when stderr is a file (cron mail), a line per source that had news or failed."""

    def __init__(self, total: int, label: str = "crawling"):
        self.console = Console(stderr=True)
        self.total = total
        self.progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=self.console, transient=True,
        )
        self.task = self.progress.add_task("", total=total)

    def __enter__(self) -> "CrawlProgress":
        if self.console.is_terminal:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def advance(self, result: SourceResult) -> None:
        if self.console.is_terminal:
            self.progress.update(self.task, advance=1, description=result.source_id)
        elif result.new or result.changed or result.failed or result.status == "error":
            self.console.print(line(result), highlight=False, soft_wrap=True)

    def step(self, done: int, total: int) -> None:
        """Progress of a stage counted in items rather than sources (matching)."""
        if self.console.is_terminal:
            self.progress.update(self.task, completed=done, total=total)

    def summary(self, results: Sequence[SourceResult]) -> None:
        self.console.print(summary_line(results), highlight=False, soft_wrap=True)
        for result in results:
            if result.error:
                self.console.print(f"  source {result.source_id}: {result.error}", highlight=False, soft_wrap=True)


def line(result: SourceResult) -> str:
    return (
        f"{result.source_id}: {result.status} (new {result.new}, changed {result.changed}, "
        f"unchanged {result.unchanged}, failed {result.failed})"
    )


def summary_line(results: Sequence[SourceResult]) -> str:
    totals = {k: sum(getattr(r, k) for r in results) for k in ("new", "changed", "unchanged", "failed")}
    failed_sources = [r.source_id for r in results if r.status == "error"]
    text = (
        f"crawled {len(results)} sources: {totals['new']} new, {totals['changed']} changed, "
        f"{totals['unchanged']} unchanged, {totals['failed']} failed items"
    )
    if failed_sources:
        text += f"; failed sources: {', '.join(failed_sources)}"
    return text


def analyse_line(result: AnalyseResult) -> str:
    return (
        f"matched {result.matched} developments to policy clauses: {result.attached} with clauses attached, "
        f"{result.encoded} texts embedded (the rest from cache)"
    )
