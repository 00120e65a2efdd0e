"""Progress of a cycle and its closing summary, on stderr so stdout stays clean for `--json`.

On a terminal: a bar per step (crawling, loading the models, matching). Elsewhere (cron mail, CI
logs): one line per step, a line per source that had news or failed, and a line at most every
`LINE_EVERY_S` seconds during long steps, so a log never goes silent for minutes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scanner.analyse import AnalyseResult
from scanner.crawl import SourceResult
from scanner.pipeline import SourceProgress

LINE_EVERY_S = 10.0


class CycleProgress(SourceProgress):
    """A `SourceProgress` for the CLI: a rich bar on a terminal, plain timestamped lines elsewhere."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=self.console, transient=True)
        self._task: Any = None
        self._name = ""
        self._total = 0
        self._last_line = 0.0

    def __enter__(self) -> "CycleProgress":
        if self.live:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def stage(self, name: str, total: int = 0) -> None:
        self._name, self._total = name, total
        if self.live:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(name, total=total or None)
        else:
            self.say(f"{name}…" + (f" ({total})" if total else ""))
            self._last_line = time.monotonic()

    def advance(self, done: int) -> None:
        if self.live:
            self._bar.update(self._task, completed=done)
        elif time.monotonic() - self._last_line >= LINE_EVERY_S or (self._total and done == self._total):
            self.say(f"{self._name}: {done}" + (f"/{self._total}" if self._total else ""))
            self._last_line = time.monotonic()

    def source_done(self, result: SourceResult) -> None:
        if self.live:
            self._bar.update(self._task, advance=1)
        elif result.new or result.changed or result.failed or result.status in ("error", "baseline"):
            self.say(line(result))

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def summary(self, results: Sequence[SourceResult], analysis: AnalyseResult | None = None) -> None:
        self.say(summary_line(results))
        for result in results:
            if result.error:
                self.say(f"  source {result.source_id}: {result.error}")
            elif result.status == "baseline":
                self.say(f"  source {result.source_id}: first version stored; changes are reported from the next crawl")
            if result.same_text:
                self.say(f"  source {result.source_id}: {result.same_text} pages gave the same text — extraction may be failing")
        if analysis is not None:
            self.say(analyse_line(analysis))


def line(result: SourceResult) -> str:
    return (f"{result.source_id}: {result.status} (new {result.new}, changed {result.changed}, "
            f"unchanged {result.unchanged}, failed {result.failed})")


def summary_line(results: Sequence[SourceResult]) -> str:
    totals = {k: sum(getattr(r, k) for r in results) for k in ("new", "changed", "unchanged", "failed")}
    failed_sources = [r.source_id for r in results if r.status == "error"]
    text = (f"crawled {len(results)} sources: {totals['new']} new, {totals['changed']} changed, "
            f"{totals['unchanged']} unchanged, {totals['failed']} failed items")
    if failed_sources:
        text += f"; failed sources: {', '.join(failed_sources)}"
    return text


def analyse_line(result: AnalyseResult) -> str:
    if not result.matched:
        return "nothing new to match"
    return (f"matched {result.matched} developments to policy clauses: {result.attached} with clauses attached, "
            f"{result.encoded} texts embedded (the rest from cache)")
