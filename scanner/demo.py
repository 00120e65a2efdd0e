"""`scan demo`: the real pipeline, offline, against the bundled example site served on loopback.

Nothing is shortcut: the site is served over HTTP on 127.0.0.1, crawled through the same
fetcher and `pipeline.run_cycle` as `scan crawl`, extracted, stored, embedded and matched; a
tracked competitor page is changed and crawled again so a diff shows up; then the digest is
written and a search is run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from scanner.config import load_config
from scanner.demo_site import build_site, demo_config, load_dev_items, serve, write_policies
from scanner.pipeline import SourceProgress, run_cycle, run_lock
from scanner.store import Store

DEMO_QUERY = "gift cash-out minors"


@dataclass
class DemoResult:
    folder: Path
    config_path: Path
    database: Path
    developments: int
    digest_paths: list[Path] = field(default_factory=list)
    search_results: list[dict] = field(default_factory=list)


def prepare(folder: Path) -> None:
    """Start from a clean demo state inside `folder` only (the site's port changes every run)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("scanner.db", "scanner.db-wal", "scanner.db-shm"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "site", ignore_errors=True)
    (folder / "site").mkdir()
    write_policies(folder / "policies")


def run_demo(folder: Path, *, progress: SourceProgress | None = None) -> DemoResult:
    """Serve, crawl twice (the second after a competitor page changes), digest and search."""
    from scanner.digest import write_digest
    from scanner.search import search

    progress = progress or SourceProgress()
    say = getattr(progress, "say", print)
    prepare(folder)
    items = load_dev_items()
    with serve(folder / "site") as server:
        build_site(folder / "site", items, base_url=server.base_url)
        config_path = folder / "sources.yaml"
        config_path.write_text(demo_config(server.base_url, items=items, federal_register=True), encoding="utf-8")
        config = load_config(config_path)
        say(f"serving the example site at {server.base_url} ({len(config.sources)} sources)")
        with Store.open(config.database) as store, run_lock(config.database):
            first = run_cycle(config, store, progress=progress)
            say(f"crawled {len(first.sources)} sources; matched {first.analysis.matched} developments "
                f"({first.analysis.attached} with clauses)")
            say("a competitor changed its policy pages; crawling again (conditional requests)")
            build_site(folder / "site", items, base_url=server.base_url, version=2)
            second = run_cycle(config, store, progress=progress)
            say(f"second crawl: {sum(r.changed for r in second.sources)} changed pages, "
                f"{sum(r.new for r in second.sources)} new")
            days = sorted(str(row["published"]) for row in store.developments.list() if row["published"])
            paths = write_digest(store, config, since=days[0], until=days[-1])
            results = search(store, DEMO_QUERY, limit=5)
            count = store.developments.count()
    return DemoResult(folder, config_path, config.database, count, list(paths), results)
