"""Shared fixtures: no test touches real state, and the embedding model loads once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every state path at the test's tmp dir, as llm's conftest does with LLM_USER_PATH."""
    for var in ("SCAN_CONFIG", "SCAN_DB", "SCAN_SMTP_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(folder: Path, body: str) -> Path:
    """A sources.yaml in `folder`; tests pass it with --config."""
    path = folder / "sources.yaml"
    path.write_text(body, encoding="utf-8")
    return path


os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def analysed_site(tmp_path_factory: pytest.TempPathFactory):
    """The example site served, crawled and analysed once per session (the model loads once).

    Yields a `Site` whose `copy_to(dir)` gives a test its own config + database copy to mutate.
    """
    from scanner.analyse import analyse
    from scanner.config import load_config
    from scanner.crawl import crawl
    from scanner.demo_site import build_site, demo_config, serve, write_policies
    from scanner.store import Store

    folder = tmp_path_factory.mktemp("analysed-site")
    root = folder / "site"
    root.mkdir()
    with serve(root) as server:
        manifest = build_site(root, base_url=server.base_url)
        write_policies(folder / "policies")
        config_path = write_config(folder, demo_config(server.base_url))
        config = load_config(config_path)
        with Store.open(config.database) as store:
            crawl(config, store)
            analyse(config, store)
        yield Site(folder, config_path, manifest, server)


class Site:
    """A crawled and analysed example site; `copy_to` clones config, corpus and database."""

    def __init__(self, folder: Path, config_path: Path, manifest, server):
        self.folder = folder
        self.config_path = config_path
        self.manifest = manifest
        self.server = server

    def copy_to(self, dest: Path) -> Path:
        import shutil
        import sqlite3

        from scanner.config import load_config

        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.folder / "policies", dest / "policies", dirs_exist_ok=True)
        config_path = dest / "sources.yaml"
        shutil.copy(self.config_path, config_path)
        source = sqlite3.connect(load_config(self.config_path).database)
        target = sqlite3.connect(load_config(config_path).database)
        source.backup(target)
        source.close()
        target.close()
        return config_path


@pytest.fixture
def site(analysed_site, tmp_path: Path) -> Path:
    """A private copy of the crawled and analysed example site: its config path (a test file needing
    something else defines its own `site`)."""
    return analysed_site.copy_to(tmp_path / "site")


SLOW_FIXTURES = {"analysed_site", "matcher"}
"""The analysed example site (minutes, once per session) and a Matcher (all three encoders, clause vectors)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs a slow fixture is marked slow, so `-m "not slow"` stays a quick loop."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
