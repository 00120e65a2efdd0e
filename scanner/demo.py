"""`scan demo`: the real pipeline, offline, against the bundled example site served on loopback.

Nothing is shortcut: the site is served over HTTP on 127.0.0.1, crawled through the same
fetcher, extracted, stored, embedded and matched; a tracked competitor page is changed and
crawled again so a diff shows up; then the digest is written and a search is run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scanner.config import Config, load_config
from scanner.demo_site import build_site, demo_config, load_dev_items, serve, write_policies
from scanner.store import Store

DEMO_QUERY = "gift cash-out minors"


@dataclass
class DemoResult:
    folder: Path
    config_path: Path
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


def run_demo(
    folder: Path,
    crawl_step: Callable[[Config, Store], object],
    *,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Serve, crawl twice (the second after a competitor page changes), digest and search.

    `crawl_step` is the CLI's crawl-and-analyse with its progress display, so the demo shows
    exactly what a user's `scan crawl` shows.
    """
    from scanner.digest import write_digest
    from scanner.search import search

    prepare(folder)
    items = load_dev_items()
    with serve(folder / "site") as server:
        build_site(folder / "site", items, base_url=server.base_url)
        config_path = folder / "sources.yaml"
        config_path.write_text(demo_config(server.base_url, items=items), encoding="utf-8")
        config = load_config(config_path)
        say(f"serving the example site at {server.base_url} ({len(config.sources)} sources)")
        with Store.open(config.database) as store:
            crawl_step(config, store)
            say("a competitor changed its policy pages; crawling again (conditional requests)")
            build_site(folder / "site", items, base_url=server.base_url, version=2)
            crawl_step(config, store)
            days = sorted(str(row["published"]) for row in store.developments() if row["published"])
            paths = write_digest(store, config, since=days[0], until=days[-1])
            results = search(store, DEMO_QUERY, limit=5)
            count = len(store.developments())
    return DemoResult(folder, config_path, count, list(paths), results)
