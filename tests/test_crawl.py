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
        rows = store.developments.list()
    pages = {s.id for s in config.sources if s.type == "page"}
    assert all(r.status == ("baseline" if r.source_id in pages else "ok") for r in results), \
        [r for r in results if r.status != "ok"]
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
        count = len(store.developments.list())
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
        assert store.developments.list(sources=[page.id]) == []
        build_site(server.root, base_url=server.base_url, version=2)
        (result,) = crawl(config, store, [page.id])
        (change,) = store.developments.list(sources=[page.id])
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
        health = {r["id"]: r for r in store.sources.health()}
    assert results["broken-regulator"].status == "error"
    assert health["broken-regulator"]["last_status"] == "error"
    assert "HTTP 500 after 1 retries" in health["broken-regulator"]["last_error"]
    assert health["broken-regulator"]["last_fetch"]
    assert sum(r["developments"] for r in health.values()) == 60
    assert all(r.status in ("ok", "baseline") for i, r in results.items() if i != "broken-regulator")


@pytest.mark.slow
def test_cli_summary_names_failed_sources_and_exits_0(site, httpserver) -> None:
    """Some sources failed, others did not: the run is done (exit 0) and the summary names the failure."""
    server, manifest, config_path = site
    httpserver.expect_request("/rss").respond_with_data("nope", status=404)
    good = load_config(config_path).sources[0]
    config_path.write_text(
        "database: scan.db\npolicies: policies/\nfetch:\n  per_host_delay: 0\nsources:\n"
        f"  - id: broken\n    kind: regulator\n    feed: {httpserver.url_for('/rss')}\n"
        f"  - id: {good.id}\n    kind: {good.kind}\n    {good.type}: {good.url}\n"
        + (f"    match: '{good.match}'\n" if good.match else "")
    )
    from scanner.demo_site import write_policies

    write_policies(config_path.parent / "policies")
    result = CliRunner().invoke(app, ["crawl", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "failed sources: broken" in result.output
    assert "HTTP 404" in result.output
    health = CliRunner().invoke(app, ["sources", "--config", str(config_path), "--json"])
    import json

    row = json.loads(health.stdout)["sources"][0]
    assert row["id"] == "broken" and row["last_status"] == "error" and "HTTP 404" in row["last_error"]


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
        stored = len(store.developments.list(sources=[source.id]))
    assert first.status == "partial" and first.failed == 1 and "HTTP 404" in first.error
    assert second.new == 1 and second.status == "ok"
    assert stored == len(source.item_ids)


CONSENT_WALL = ("<html><body><main><article><h1>Before you continue</h1><p>We use cookies and data to deliver and "
                "maintain our services. Please accept our terms of use and privacy policy to continue reading this "
                "page. Select Accept all or Reject all to continue.</p></article></main></body></html>")


def test_pages_that_extract_to_the_same_text_are_all_kept_and_the_source_is_flagged(httpserver, tmp_path: Path) -> None:
    """Five items whose pages are one consent wall: five developments, linked as duplicates, never silently one."""
    items = "".join(
        f"<item><title>Notice {n}: gift limits update</title><link>{httpserver.url_for(f'/news/{n}')}</link>"
        f"<pubDate>Mon, 16 Nov 2026 0{n}:00:00 GMT</pubDate></item>" for n in range(5))
    httpserver.expect_request("/rss").respond_with_data(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Walled</title>{items}</channel></rss>',
        content_type="application/rss+xml")
    for n in range(5):
        httpserver.expect_request(f"/news/{n}").respond_with_data(CONSENT_WALL, content_type="text/html")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "gifts.md").write_text("# Gifts\n\n## GIFT-1 Limits\n\nGifts are capped.\n")
    config_path = tmp_path / "sources.yaml"
    config_path.write_text("database: scan.db\npolicies: policies/\nfetch:\n  per_host_delay: 0\nsources:\n"
                           f"  - id: walled\n    kind: regulator\n    feed: {httpserver.url_for('/rss')}\n")
    config = load_config(config_path)
    with Store.open(config.database) as store:
        (result,) = crawl(config, store)
        rows = store.developments.list()
        health = store.sources.health()
    assert result.new == 5 and result.unchanged == 0 and result.same_text == 5
    assert len({r["url"] for r in rows}) == 5 and len({r["title"] for r in rows}) == 5
    first = min(r["id"] for r in rows)
    assert sorted(r["duplicate_of"] for r in rows if r["id"] != first) == [first] * 4
    assert health[0]["same_text"] == 5
    listed = CliRunner().invoke(app, ["sources", "--config", str(config_path)])
    assert "5 pages gave the same text" in listed.stdout
    digest = CliRunner().invoke(app, ["digest", "--since", "2026-11-16", "--until", "2026-11-16", "--out", "-",
                                      "--config", str(config_path)])
    assert "5 pages gave the same text — extraction may be failing" in digest.stdout
    assert all(f"Notice {n}" in digest.stdout for n in range(5))
