"""Crawling the served example site: coverage, dates, boilerplate, conditional re-crawl, diffs, failures."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.config import load_config
from scanner.crawl import crawl
from scanner.demo_site import BOILERPLATE_MARKERS, build_site, demo_config, load_dev_items, serve
from scanner.store import Store


@pytest.fixture
def site(tmp_path: Path):
    root = tmp_path / "site"
    root.mkdir()
    with serve(root) as server:
        manifest = build_site(root, base_url=server.base_url)
        config_path = tmp_path / "sources.yaml"
        config_path.write_text(demo_config(server.base_url))
        yield server, manifest, config_path


def _normal(text: str) -> str:
    return " ".join(text.split())


def test_crawl_stores_every_labelled_development_with_date_and_no_boilerplate(site) -> None:
    server, manifest, config_path = site
    config = load_config(config_path)
    with Store.open(config.database) as store:
        results = crawl(config, store)
        rows = store.developments()
    assert all(r.status == "ok" for r in results), [r for r in results if r.status != "ok"]
    by_url = {r["url"]: r for r in rows}
    items = {i["id"]: i for i in load_dev_items()}
    for item_id, article in manifest.articles.items():
        row = by_url.get(manifest.url(article.path))
        assert row is not None, f"{item_id} not stored"
        item = items[item_id]
        assert row["published"] == item["published"], item_id
        assert _normal(row["title"]) == _normal(item["title"]), item_id
        assert _normal(item["text"]) in _normal(row["text"]), item_id
        leaked = [m for m in BOILERPLATE_MARKERS if m in row["text"]]
        assert not leaked, (item_id, leaked)
        assert row["kind"] == item["kind"]
    assert len(rows) == len(manifest.articles) == 60


def test_second_crawl_is_conditional_and_stores_nothing_new(site) -> None:
    server, manifest, config_path = site
    config = load_config(config_path)
    with Store.open(config.database) as store:
        crawl(config, store)
        before = len(server.hits)
        results = crawl(config, store)
        count = len(store.developments())
    second = server.hits[before:]
    assert len(second) == len(manifest.sources)  # robots.txt comes from the store for a day
    assert all(h.status == 304 for h in second)
    assert sum(r.new + r.changed for r in results) == 0
    assert count == 60


def test_changed_tracked_page_becomes_a_development_with_its_diff(site, tmp_path: Path) -> None:
    server, manifest, config_path = site
    config = load_config(config_path)
    page = next(s for s in manifest.sources if s.type == "page")
    with Store.open(config.database) as store:
        crawl(config, store, [page.id])
        assert store.developments(sources=[page.id]) == []
        build_site(server.root, base_url=server.base_url, version=2)
        (result,) = crawl(config, store, [page.id])
        (change,) = store.developments(sources=[page.id])
    assert result.changed == 1
    added = [line for line in change["diff"].splitlines() if line.startswith("+")]
    removed = [line for line in change["diff"].splitlines() if line.startswith("-")]
    assert added and removed
    assert change["kind"] == "competitor"


def test_failing_source_is_recorded_and_the_others_go_on(site, httpserver) -> None:
    server, manifest, config_path = site
    httpserver.expect_request("/rss").respond_with_data("Internal Server Error", status=500)
    text = config_path.read_text().replace("fetch:\n", "fetch:\n  retries: 1\n") + (
        "  - id: broken-regulator\n    kind: regulator\n    jurisdiction: US\n"
        f"    feed: {httpserver.url_for('/rss')}\n"
    )
    config_path.write_text(text)
    config = load_config(config_path)
    with Store.open(config.database) as store:
        results = {r.source_id: r for r in crawl(config, store)}
        health = {r["id"]: r for r in store.source_health()}
    assert results["broken-regulator"].status == "error"
    assert health["broken-regulator"]["last_status"] == "error"
    assert "HTTP 500 after 1 retries" in health["broken-regulator"]["last_error"]
    assert health["broken-regulator"]["last_fetch"]
    assert sum(r["developments"] for r in health.values()) == 60
    assert all(r.status == "ok" for i, r in results.items() if i != "broken-regulator")


def test_cli_summary_names_failed_sources_and_exits_0(site, httpserver) -> None:
    server, manifest, config_path = site
    httpserver.expect_request("/rss").respond_with_data("nope", status=404)
    config_path.write_text(
        "database: scan.db\npolicies: policies/\nfetch:\n  per_host_delay: 0\nsources:\n"
        f"  - id: broken\n    kind: regulator\n    feed: {httpserver.url_for('/rss')}\n"
    )
    from scanner.demo_site import write_policies

    write_policies(config_path.parent / "policies")
    result = CliRunner().invoke(app, ["crawl", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "failed sources: broken" in result.output
    assert "HTTP 404" in result.output
    health = CliRunner().invoke(app, ["sources", "--config", str(config_path), "--json"])
    import json

    (row,) = json.loads(health.stdout)["sources"]
    assert row["last_status"] == "error" and "HTTP 404" in row["last_error"]


def test_item_that_fails_is_retried_next_run(site, tmp_path: Path) -> None:
    server, manifest, config_path = site
    config = load_config(config_path)
    source = next(s for s in manifest.sources if s.type == "feed" and len(s.item_ids) > 1)
    victim = manifest.articles[source.item_ids[0]]
    path = server.root / victim.path.lstrip("/")
    saved = path.read_bytes()
    path.unlink()
    with Store.open(config.database) as store:
        (first,) = crawl(config, store, [source.id])
        path.write_bytes(saved)
        (second,) = crawl(config, store, [source.id])
        stored = len(store.developments(sources=[source.id]))
    assert first.status == "partial" and first.failed == 1 and "HTTP 404" in first.error
    assert second.new == 1 and second.status == "ok"
    assert stored == len(source.item_ids)
