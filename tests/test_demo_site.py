"""The demo site is the fixture every crawl test and benchmark stands on: check it is
complete (every labelled development reachable by URL), well-formed (feeds parse
cleanly), cache-friendly (ETag/Last-Modified/304) and that its traps are real."""

import difflib
import html
import http.client
import io
import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
import pypdf
import pytest
import yaml

from scanner import demo_site
from scanner.demo_site import BOILERPLATE_MARKERS, PDF_ITEM_ID, SiteManifest

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _links(page: str, page_url: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return [urljoin(page_url, href) for href in parser.hrefs]


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[demo_site.DemoSiteServer, SiteManifest]]:
    root = tmp_path_factory.mktemp("site")
    with demo_site.serve(root) as server:
        yield server, demo_site.build_site(root, base_url=server.base_url)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def test_config_follows_the_contract(site: tuple[demo_site.DemoSiteServer, SiteManifest]) -> None:
    server, manifest = site
    config = yaml.safe_load(demo_site.demo_config(server.base_url, database="x.db"))
    assert config["database"] == "x.db"
    assert config["fetch"] == {"per_host_delay": 0, "allow_private": False}
    ids = [s["id"] for s in config["sources"]]
    assert len(ids) == len(set(ids)) == len(manifest.sources)
    for source in config["sources"]:
        assert re.fullmatch(r"[a-z0-9-]+", source["id"])
        assert source["kind"] in {"regulator", "legal-news", "competitor"}
        kinds = [key for key in ("feed", "listing", "page") if key in source]
        assert len(kinds) == 1
        assert source[kinds[0]].startswith(server.base_url + "/")
        assert ("match" in source) == (kinds[0] == "listing")
    assert {(s.type, s.format) for s in manifest.sources} == {
        ("feed", "rss"), ("feed", "atom"), ("listing", "html"), ("page", "html")}


def test_every_development_is_reachable_from_its_source(
    site: tuple[demo_site.DemoSiteServer, SiteManifest], client: httpx.Client
) -> None:
    server, manifest = site
    items = {item["id"]: item for item in demo_site.load_dev_items()}
    reached: dict[str, str] = {}  # article path -> source id
    for source in manifest.sources:
        url = manifest.url(source.path)
        response = client.get(url)
        assert response.status_code == 200, url
        if source.type == "feed":
            assert response.headers["content-type"].startswith(f"application/{source.format}+xml")
            feed = feedparser.parse(response.content)
            assert not feed.bozo, (url, feed.get("bozo_exception"))
            assert feed.version == ("rss20" if source.format == "rss" else "atom10")
            for entry in feed.entries:
                assert entry.published_parsed and entry.summary
                reached[urlsplit(entry.link).path] = source.id
        elif source.type == "listing":
            links = _links(response.text, url)
            selected = [link for link in links if source.match in link]
            assert len(selected) < len(links), "listing must also carry links to skip"
            assert any(urlsplit(link).path in {"/about", "/contact", "/careers"} for link in links)
            for link in selected:
                assert link.startswith(server.base_url)
                reached[urlsplit(link).path] = source.id
    articles = manifest.articles
    assert set(articles) == set(items)
    assert {a.path: a.source_id for a in articles.values()} == reached

    for article in articles.values():
        item = items[article.item_id]
        response = client.get(manifest.url(article.path))
        assert response.status_code == 200
        if article.content_type == "html":
            page = response.text
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert f"<h1>{html.escape(item['title'])}</h1>" in page
            assert f'<meta property="article:published_time" content="{item["published"]}T' in page
            assert all(marker in page for marker in BOILERPLATE_MARKERS)


def test_markers_never_occur_in_real_text() -> None:
    for item in demo_site.load_dev_items():
        for marker in BOILERPLATE_MARKERS:
            assert marker not in item["text"] and marker not in item["title"], (item["id"], marker)


def test_a_standard_extractor_can_separate_text_from_boilerplate(
    site: tuple[demo_site.DemoSiteServer, SiteManifest], client: httpx.Client
) -> None:
    import trafilatura
    _, manifest = site
    items = {item["id"]: item for item in demo_site.load_dev_items()}
    for item_id in ("d-001", "d-004", "d-012", "d-029"):  # rss, listing, zh, atom
        article = manifest.articles[item_id]
        text = trafilatura.extract(client.get(manifest.url(article.path)).text)
        assert _norm(items[item_id]["text"]) == _norm(text)
        assert not any(items[r]["title"] in text for r in article.related)


def test_conditional_get_and_rebuild_keep_validators(
    site: tuple[demo_site.DemoSiteServer, SiteManifest], client: httpx.Client, tmp_path: Path
) -> None:
    server, manifest = site
    path = manifest.source("european-commission").path
    first = client.get(manifest.url(path))
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'},
                    {"If-Modified-Since": last_modified}):
        response = client.get(manifest.url(path), headers=headers)
        assert response.status_code == 304 and response.content == b""
        assert response.headers["etag"] == etag
    stale = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert client.get(manifest.url(path), headers=stale).status_code == 200
    assert server.count(path=path, status=304) == 3

    demo_site.build_site(server.root, base_url=server.base_url)  # identical rebuild while serving
    assert client.get(manifest.url(path), headers={"If-None-Match": etag}).status_code == 304


def test_tracked_pages_change_in_version_2(tmp_path: Path, client: httpx.Client) -> None:
    class _Blocks(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.blocks: list[str] = []
            self.depth = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.depth += tag == "article"
            if self.depth and tag in {"p", "h2"}:
                self.blocks.append("")

        def handle_endtag(self, tag: str) -> None:
            self.depth -= tag == "article"

        def handle_data(self, data: str) -> None:
            if self.depth and self.blocks:
                self.blocks[-1] += data

    def blocks(url: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response, list[str]]:
        response = client.get(url, headers=headers)
        parser = _Blocks()
        parser.feed(response.text)
        return response, parser.blocks

    with demo_site.serve(tmp_path) as server:
        manifest = demo_site.build_site(tmp_path, base_url=server.base_url, version=1)
        pages = [s for s in manifest.sources if s.type == "page"]
        assert len(pages) == 2
        before = {s.id: blocks(manifest.url(s.path)) for s in pages}
        demo_site.build_site(tmp_path, base_url=server.base_url, version=2)
        for source in pages:
            old_response, old = before[source.id]
            response, new = blocks(manifest.url(source.path),
                                   {"If-None-Match": old_response.headers["etag"]})
            assert response.status_code == 200
            ops = [op for op, *_ in difflib.SequenceMatcher(a=old, b=new).get_opcodes()]
            assert sorted(op for op in ops if op != "equal") == ["delete", "insert", "replace"]
            assert response.headers["last-modified"] != old_response.headers["last-modified"]


def test_pdf_carries_the_real_text(
    site: tuple[demo_site.DemoSiteServer, SiteManifest], client: httpx.Client
) -> None:
    _, manifest = site
    item = next(i for i in demo_site.load_dev_items() if i["id"] == PDF_ITEM_ID)
    article = manifest.articles[PDF_ITEM_ID]
    assert article.content_type == "pdf" and manifest.source(article.source_id).type == "listing"
    response = client.get(manifest.url(article.path))
    assert response.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    text = _norm(" ".join(page.extract_text() for page in reader.pages))
    assert _norm(item["text"]) in text and item["title"] in text
    assert reader.metadata.title == item["title"]


def test_committed_pdf_is_what_the_generator_makes() -> None:
    """The wheel ships data/pdf/; regenerate it with render_pdf when the item changes."""
    import fpdf  # noqa: F401  (the test extra installs it; a missing generator is a failure, not a skip)
    item = next(i for i in demo_site.load_dev_items() if i["id"] == PDF_ITEM_ID)
    committed = Path(demo_site.__file__).parent / "data" / "pdf" / f"{PDF_ITEM_ID}.pdf"

    def text(data: bytes) -> str:
        return " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)

    assert text(committed.read_bytes()) == text(demo_site.render_pdf(item, item["source"]))


def test_server_basics(site: tuple[demo_site.DemoSiteServer, SiteManifest], client: httpx.Client) -> None:
    server, manifest = site
    robots = client.get(manifest.url("/robots.txt"))
    assert robots.status_code == 200 and "Allow: /" in robots.text
    assert client.get(manifest.url("/nowhere.html")).status_code == 404
    assert client.head(manifest.url("/robots.txt")).content == b""
    connection = http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=5)
    connection.request("GET", "/../../../etc/passwd")
    assert connection.getresponse().status == 404
    connection.close()
    assert server.count(path="/nowhere.html", status=404) == 1


def test_policies_and_bundled_data(tmp_path: Path) -> None:
    demo_site.write_policies(tmp_path / "policies")
    written = sorted(p.name for p in (tmp_path / "policies").iterdir())
    assert len(written) == 12 and all(name.endswith(".md") for name in written)
    bundled = Path(demo_site.__file__).parent / "data"
    assert [json.loads(line)["id"] for line in (bundled / "eval" / "dev.jsonl").open()] == [
        item["id"] for item in demo_site.load_dev_items()]
    if not SHARED_EVAL.is_dir() and not os.environ.get("CI"):
        return  # a standalone clone has no ../shared to compare the bundled copy with; CI always has it
    for name in ("dev.jsonl", "lifecycle-dev.jsonl", "queries-dev.jsonl", "subscriptions-dev.json"):
        assert (bundled / "eval" / name).read_bytes() == (SHARED_EVAL / name).read_bytes(), name
    for name in written:
        assert (tmp_path / "policies" / name).read_bytes() == (SHARED_EVAL / "policies" / name).read_bytes()
    assert [json.loads(line)["id"] for line in (SHARED_EVAL / "dev.jsonl").open()] == [
        item["id"] for item in demo_site.load_dev_items()]
