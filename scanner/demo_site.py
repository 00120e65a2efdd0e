"""The offline example site behind `scan demo`, the test suite and the benchmarks.

The labelled developments in ``data/eval/dev.jsonl`` are published the way real
sources publish them, so that every crawler path runs against something realistic:
RSS 2.0 feeds, Atom 1.0 feeds, listing pages without a feed (whose article links share
a path pattern that a ``match:`` substring selects, among nav and footer links that it
must not select), one development served only as a PDF, and two competitor policy
pages tracked for changes (``version=2`` edits them).  Every article page wraps the
real text in boilerplate (navigation, cookie banner, breadcrumbs, share links, a
"Related news" sidebar with other items' titles, a newsletter box, a footer); each block
carries a phrase from `BOILERPLATE_MARKERS`, so a test can prove none of it reaches the
extracted text.

Design, because feeds need absolute URLs and the port is only known after binding:
serve first, then build into the directory being served.  The server reads files on
every request, so a rebuild (e.g. ``version=2``) is visible at once::

    with serve(root) as server:
        manifest = build_site(root, base_url=server.base_url)
        config = demo_config(server.base_url)

Builds are deterministic: the same items, base URL and version give the same bytes
and the same file modification times (publication times), hence the same ``ETag``
and ``Last-Modified``; a second crawl of an unchanged site gets only 304s.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import html
import json
import math
import os
import re
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

BOILERPLATE_MARKERS: tuple[str, ...] = (
    "Skip to main content",  # navigation
    "We use cookies to make this website work",  # cookie banner
    "Accept additional cookies",  # cookie banner
    "You are here:",  # breadcrumbs
    "Share this page",  # share links inside the article element
    "Related news",  # sidebar with other items' titles
    "Get our weekly bulletin in your inbox",  # newsletter box
    "You can unsubscribe at any time",  # newsletter box
    "Terms, privacy and accessibility",  # footer
    "Follow us on social media",  # footer
)
"""Phrases that appear only in page boilerplate, never in a development's text."""

FEDERAL_REGISTER_PATH = "/api/v1/documents.json"
"""Where the site serves the bundled Federal Register API sample (the path the real API uses)."""

PDF_ITEM_ID = "d-046"
"""The development served only as a PDF: an English item whose text fits Latin-1 core fonts."""

_DATA = resources.files("scanner") / "data"
_STYLES = ("rss", "atom", "listing")
_LISTING_SECTIONS = ("news", "press-releases", "updates")
_UTC_OFFSETS = {  # publication times in the source's local time, as real feeds give them
    "US": -5.0, "EU": 1.0, "DE": 1.0, "FR": 1.0, "IT": 1.0, "ES": 1.0, "NL": 1.0,
    "IN": 5.5, "ID": 7.0, "CN": 8.0, "SG": 8.0, "JP": 9.0, "KR": 9.0, "AU": 11.0,
    "BR": -3.0, "MX": -6.0,
}
_TRAILING_STOPWORDS = {"and", "of", "the", "for", "de", "del", "do", "und", "der", "e", "per", "le"}
_ROBOTS = b"User-agent: *\nAllow: /\n"
_ROBOTS_MTIME = datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp()
_CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0}.layout{display:flex;gap:2rem}"
    ".cookie-banner{background:#ffd;padding:1rem}.sidebar{width:18rem}"
)


# --- the manifest -------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """One configured source of the site, as `demo_config` writes it."""

    id: str
    name: str
    kind: str
    jurisdiction: str | None  # None for global sources, which the contract leaves unset
    type: Literal["feed", "listing", "page"]
    format: Literal["rss", "atom", "html"]
    path: str  # absolute path on the site, e.g. "/ofcom/news.rss"
    match: str | None = None  # listings only
    item_ids: tuple[str, ...] = ()  # developments reachable from this source


@dataclass(frozen=True)
class ArticleSpec:
    """Where one development is published, and which other items its page shows."""

    item_id: str
    source_id: str
    path: str
    content_type: Literal["html", "pdf"]
    related: tuple[str, ...] = ()  # item ids whose titles appear in the "Related news" sidebar


@dataclass(frozen=True)
class SiteManifest:
    """What `build_site` published: enough for a test to check coverage by URL."""

    base_url: str
    version: int
    sources: tuple[SourceSpec, ...]
    articles: dict[str, ArticleSpec]
    boilerplate_markers: tuple[str, ...] = field(default=BOILERPLATE_MARKERS)

    def url(self, path: str) -> str:
        """The absolute URL of a site path."""
        return self.base_url + path

    def source(self, source_id: str) -> SourceSpec:
        """The source with this id (KeyError if none)."""
        for spec in self.sources:
            if spec.id == source_id:
                return spec
        raise KeyError(source_id)


# --- competitor pages tracked for changes -----------------------------------------------


@dataclass(frozen=True)
class _TrackedPage:
    id: str
    name: str
    site: str
    path: str
    title: str
    blocks: tuple[tuple[str, ...], ...]  # (tag, text) in both versions, or (tag, v1, v2); None = absent
    modified: tuple[date, date]  # (v1, v2)


_TRACKED_PAGES = (
    _TrackedPage(
        id="beamly-gifts-coins-policy",
        name="Beamly Gifts and Coins policy",
        site="Beamly Help Center",
        path="/beamly-help/legal/gifts-and-coins-policy.html",
        title="Gifts and Coins policy",
        modified=(date(2026, 11, 2), date(2026, 11, 19)),
        blocks=(
            ("h2", "1. What Coins are"),
            ("p", "Coins are a virtual item you buy in the Beamly app and use to send Gifts to "
                  "creators during LIVE streams. Coins have no cash value, cannot be exchanged for "
                  "money and cannot be transferred to another account."),
            ("p", None,
                  "Before you buy, we show the price of every Coin pack in your local currency, "
                  "including taxes, and next to every Gift we show what it costs in that currency, "
                  "not only in Coins."),
            ("h2", "2. Who can buy Coins and send Gifts"),
            ("p", "You must be at least 16 years old to buy Coins. Users aged 16 and 17 may send "
                  "Gifts up to a daily limit set by Beamly.",
                  "You must be at least 18 years old to buy Coins or send Gifts. We confirm your age "
                  "with age assurance, such as facial age estimation or an ID check, before your "
                  "first purchase; a birth date you type in is not enough."),
            ("h2", "3. Unused Coins"),
            ("p", "Coins that you have not used for 24 months expire and are removed from your "
                  "account without compensation.", None),
            ("p", "If you close your account, any Coins left in it are lost unless the law where "
                  "you live gives you a right to a refund."),
            ("h2", "4. Refunds"),
            ("p", "Coin purchases are final. If you were charged for Coins you did not receive, "
                  "contact us within 30 days and we will investigate."),
        ),
    ),
    _TrackedPage(
        id="vidora-creator-payout-terms",
        name="Vidora creator payout terms",
        site="Vidora for Creators",
        path="/vidora-creators/terms/payouts.html",
        title="Creator payout terms",
        modified=(date(2026, 11, 4), date(2026, 11, 20)),
        blocks=(
            ("h2", "Your share of Gifts"),
            ("p", "When a viewer sends you a Gift, you receive 50% of the Gift's Coin value as "
                  "Diamonds. The rest covers app store fees, payment processing and Vidora's costs.",
                  "When a viewer sends you a Gift, you receive 60% of the Gift's Coin value as "
                  "Diamonds. The rest covers app store fees, payment processing and Vidora's costs."),
            ("h2", "Withdrawals"),
            ("p", "You can withdraw Diamonds once your balance reaches the equivalent of USD 50. "
                  "Withdrawals are paid within five business days."),
            ("p", None,
                  "Before your first withdrawal, and again when you change your payout account, we "
                  "verify your identity with a government-issued ID and a liveness check."),
            ("h2", "Payout accounts"),
            ("p", "Payouts are sent to a bank account or payment wallet in your own name."),
            ("p", "If you belong to a creator agency, you can ask us to send your payouts to an "
                  "account nominated by the agency.", None),
            ("h2", "Tax"),
            ("p", "We may withhold tax from your payouts where the law requires it and we report "
                  "your earnings to tax authorities, for example under DAC7 in the EU or on Form "
                  "1099-K in the United States."),
        ),
    ),
)


# --- public API -----------------------------------------------------------------------


def load_dev_items() -> list[dict]:
    """The bundled labelled developments (a copy of ../shared/eval/dev.jsonl, for wheels)."""
    lines = (_DATA / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def build_site(
    root: Path, items: list[dict] | None = None, *, base_url: str, version: int = 1
) -> SiteManifest:
    """Write the static site for ``items`` (default: the bundled developments) into ``root``.

    ``base_url`` is where the site is served (see `serve`); feeds and half of the listings
    use absolute URLs built from it, the other listings use root-relative links, as real
    sites do.  ``version`` 1 or 2 selects the state of the tracked competitor pages; news
    pages are the same in both, so rebuilding in place changes only those two pages.
    Files are replaced atomically, so building while serving never exposes half a file.
    """
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2, not {version!r}")
    items = load_dev_items() if items is None else items
    base_url = base_url.rstrip("/")
    manifest = _plan(items, base_url, version)
    by_id = {item["id"]: item for item in items}
    sources = {spec.id: spec for spec in manifest.sources}

    _write(root / "robots.txt", _ROBOTS, _ROBOTS_MTIME)
    for spec in manifest.sources:
        if spec.type == "page":
            page = next(p for p in _TRACKED_PAGES if p.id == spec.id)
            modified = page.modified[version - 1]
            mtime = datetime(modified.year, modified.month, modified.day, 8, tzinfo=timezone.utc)
            _write(_file(root, spec.path), _policy_page_html(page, version, mtime).encode(),
                   mtime.timestamp())
            continue
        spec_items = sorted((by_id[i] for i in spec.item_ids), key=_published_at, reverse=True)
        newest = _published_at(spec_items[0]).timestamp()
        articles = [manifest.articles[item["id"]] for item in spec_items]
        if spec.format == "rss":
            body = _rss(spec, spec_items, articles, base_url)
        elif spec.format == "atom":
            body = _atom(spec, spec_items, articles, base_url)
        else:
            absolute = _listing_index(manifest, spec) % 2 == 0
            body = _listing_html(spec, spec_items, articles, base_url if absolute else "")
        _write(_file(root, spec.path), body.encode(), newest)

    for article in manifest.articles.values():
        item = by_id[article.item_id]
        spec = sources[article.source_id]
        published = _published_at(item).timestamp()
        if article.content_type == "pdf":
            _write(_file(root, article.path), _pdf_bytes(item), published)
        else:
            related = [(by_id[r], manifest.articles[r]) for r in article.related]
            page_html = _article_html(item, spec, article, related, base_url)
            _write(_file(root, article.path), page_html.encode(), published)
    sample = (_DATA / "federal_register" / "documents.json").read_bytes()
    _write(root / FEDERAL_REGISTER_PATH.lstrip("/"), sample, _ROBOTS_MTIME)
    return manifest


def demo_config(
    base_url: str,
    *,
    database: str = "scanner.db",
    policies: str = "policies/",
    digests: str = "digests/",
    items: list[dict] | None = None,
    federal_register: bool = False,
) -> str:
    """The ``sources.yaml`` text for the site served at ``base_url`` (contract format).

    ``federal_register`` adds a source reading the site's sample of the Federal Register documents
    API (rules and proposed rules with their stated dates; `scan demo` shows it).

    ``items`` must be the list given to `build_site` (default: the bundled developments),
    since the sources are derived from it.  Fetching is tuned for loopback: no per-host
    delay; private targets stay refused except a source's own host, as the contract allows.
    """
    manifest = _plan(load_dev_items() if items is None else items, base_url.rstrip("/"), 1)
    lines = [
        "# The example site of `scan demo`, written by scanner.demo_site.demo_config.",
        f"database: {_yaml_str(database)}",
        f"policies: {_yaml_str(policies)}",
        f"digests: {_yaml_str(digests)}",
        "fetch:",
        "  per_host_delay: 0",
        "  allow_private: false",
        "sources:",
    ]
    for spec in manifest.sources:
        lines += [
            f"  - id: {spec.id}",
            f"    name: {_yaml_str(spec.name)}",
            f"    kind: {spec.kind}",
        ]
        if spec.jurisdiction is not None:
            lines.append(f"    jurisdiction: {spec.jurisdiction}")
        lines.append(f"    {spec.type}: {_yaml_str(manifest.url(spec.path))}")
        if spec.match is not None:
            lines.append(f"    match: {_yaml_str(spec.match)}")
    if federal_register:
        lines += ["  - id: us-federal-register", "    name: US Federal Register (FTC and CFPB documents)",
                  "    kind: regulator", "    jurisdiction: US",
                  f"    federal_register: {_yaml_str(base_url.rstrip('/') + FEDERAL_REGISTER_PATH)}"]
    return "\n".join(lines) + "\n"


def write_policies(dest: Path) -> None:
    """Copy the bundled policy corpus (one Markdown file per policy) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in (_DATA / "policies").iterdir():
        if entry.name.endswith(".md"):
            (dest / entry.name).write_bytes(entry.read_bytes())


def render_pdf(item: dict, source_name: str) -> bytes:
    """Typeset one development as a PDF with fpdf2 (Latin-1 core fonts, so English items).

    Deterministic: the creation date is the publication time, so a rebuild gives the same
    ETag.  Needs fpdf2, which is a development dependency only; installed copies use the
    PDF committed under ``data/pdf/`` (regenerate it with this function).
    """
    from fpdf import FPDF

    published = _published_at(item)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(published)
    pdf.set_title(item["title"])
    pdf.set_author(source_name)
    pdf.set_lang(item["lang"])
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 7, item["title"], align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, f"{source_name}, {_human_date(published)}", align="L",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 11)
    for paragraph in _paragraphs(item["text"]):
        pdf.multi_cell(0, 5.5, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    return bytes(pdf.output())


class Hit(NamedTuple):
    """One request the demo server answered."""

    method: str
    path: str  # as requested, query string included
    status: int


class DemoSiteServer(ThreadingHTTPServer):
    """A loopback static server with the conditional-GET behaviour of a well-run site.

    ``hits`` records every answered request so tests can assert, for instance, that a
    second crawl was conditional (all 304s).
    """

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, *, path: str | None = None, status: int | None = None,
              method: str | None = None) -> int:
        """How many answered requests match all the given filters."""
        with self._lock:
            return sum(
                1 for hit in self.hits
                if (path is None or hit.path == path)
                and (status is None or hit.status == status)
                and (method is None or hit.method == method)
            )

    def record(self, hit: Hit) -> None:
        """Append a hit (called from handler threads)."""
        with self._lock:
            self.hits.append(hit)

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when a client hangs up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[DemoSiteServer]:
    """Serve ``root`` on 127.0.0.1 at an ephemeral port from a daemon thread.

    Yields the server: use ``server.base_url`` to build the site (see the module
    docstring) and ``server.hits`` / ``server.count()`` to inspect traffic.  Files are
    read on each request with ``ETag`` (strong, content hash), ``Last-Modified`` (file
    mtime) and 304 answers to ``If-None-Match`` / ``If-Modified-Since``.
    """
    server = DemoSiteServer(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="demo-site", daemon=True)  # quick shutdown for tests
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- planning: which source publishes what, where -----------------------------------


def _plan(items: list[dict], base_url: str, version: int) -> SiteManifest:
    """Decide source ids, types and article paths: pure, so config and site agree."""
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(item["source"], []).append(item)
    ids = _unique_slugs(groups, limit=40)
    ordered = sorted(groups, key=lambda name: ids[name])

    sources: list[SourceSpec] = []
    articles: dict[str, ArticleSpec] = {}
    listing_count = 0
    for index, name in enumerate(ordered):
        group = groups[name]
        sid = ids[name]
        first = group[0]
        has_pdf = any(item["id"] == PDF_ITEM_ID for item in group)
        style = "listing" if has_pdf else _STYLES[index % len(_STYLES)]
        if style == "listing":
            section = _LISTING_SECTIONS[listing_count % len(_LISTING_SECTIONS)]
            listing_count += 1
            path, match, fmt, source_type = f"/{sid}/", f"/{section}/", "html", "listing"
        else:
            section = "news"
            path, match, fmt, source_type = f"/{sid}/news.{style}", None, style, "feed"
        taken: set[str] = set()
        for item in sorted(group, key=_published_at):
            slug = _slug(item["title"], limit=60) or _slug(item["id"])
            slug = _dedupe(slug, taken)
            pdf = item["id"] == PDF_ITEM_ID
            articles[item["id"]] = ArticleSpec(
                item_id=item["id"],
                source_id=sid,
                path=f"/{sid}/{section}/{item['published'][:4]}/{slug}.{'pdf' if pdf else 'html'}",
                content_type="pdf" if pdf else "html",
            )
        sources.append(SourceSpec(
            id=sid, name=name, kind=first["kind"], jurisdiction=_jurisdiction(first),
            type=source_type, format=fmt, path=path, match=match,
            item_ids=tuple(item["id"] for item in group),
        ))
    for page in _TRACKED_PAGES:
        sources.append(SourceSpec(id=page.id, name=page.name, kind="competitor",
                                  jurisdiction=None, type="page", format="html", path=page.path))

    related = _related(items, articles)
    articles = {k: ArticleSpec(a.item_id, a.source_id, a.path, a.content_type, related[k])
                for k, a in articles.items()}
    return SiteManifest(base_url=base_url, version=version, sources=tuple(sources),
                        articles=articles)


def _related(items: list[dict], articles: dict[str, ArticleSpec]) -> dict[str, tuple[str, ...]]:
    """Up to three other items per page: same source first, then the nearest in time."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        day = date.fromisoformat(item["published"])

        def rank(other: dict) -> tuple[int, int, str]:
            same = articles[other["id"]].source_id == articles[item["id"]].source_id
            gap = abs((date.fromisoformat(other["published"]) - day).days)
            return (0 if same else 1, gap, other["id"])

        others = sorted((o for o in items if o["id"] != item["id"]), key=rank)
        out[item["id"]] = tuple(o["id"] for o in others[:3])
    return out


def _listing_index(manifest: SiteManifest, spec: SourceSpec) -> int:
    return [s.id for s in manifest.sources if s.type == "listing"].index(spec.id)


def _jurisdiction(item: dict) -> str | None:
    value = item.get("jurisdiction")
    return None if not value or value == "GLOBAL" else value


def _unique_slugs(names: dict[str, list[dict]], limit: int) -> dict[str, str]:
    taken = {page.id for page in _TRACKED_PAGES}
    return {name: _dedupe(_source_slug(name, limit), taken) for name in sorted(names)}


def _source_slug(name: str, limit: int) -> str:
    """A short id as a person would write it: "AGCOM (Autorità …)" → agcom, "… (BzKJ)" → bzkj."""
    outer, _, inner = name.partition("(")
    candidates = [_slug(part, limit) for part in (outer, inner.rstrip(")"))]
    return min((c for c in candidates if c), key=len, default="source")


def _slug(text: str, limit: int = 60) -> str:
    """ASCII words joined by hyphens, cut at a word boundary, without a dangling "of"/"und"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    if len("-".join(words)) > limit:
        while len(words) > 1 and len("-".join(words)) > limit:
            words.pop()
        while len(words) > 1 and words[-1] in _TRAILING_STOPWORDS:
            words.pop()
    return "-".join(words)[:limit]


def _dedupe(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _published_at(item: dict) -> datetime:
    """A local publication time on the item's date that is the same date in UTC.

    Real feeds give times in the publisher's zone; keeping the UTC date equal to the
    labelled date makes the zone parsing matter without making the label ambiguous.
    """
    day = date.fromisoformat(item["published"])
    offset = _UTC_OFFSETS.get(item.get("jurisdiction", ""), 0.0)
    spread = int(hashlib.sha256(item["id"].encode()).hexdigest(), 16)
    hour = max(9, math.ceil(offset)) + spread % 5
    return datetime(day.year, day.month, day.day, hour, (spread >> 8) % 60,
                    tzinfo=timezone(timedelta(hours=offset)))


# --- rendering ------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _summary(text: str, limit: int = 220) -> str:
    first = _paragraphs(text)[0] if _paragraphs(text) else ""
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + "…"


def _human_date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _file(root: Path, path: str) -> Path:
    rel = unquote(path).lstrip("/")
    return root / rel / "index.html" if path.endswith("/") else root / rel


def _write(path: Path, data: bytes, mtime: float) -> None:
    """Replace ``path`` atomically, with its mtime set before it becomes visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _pdf_bytes(item: dict) -> bytes:
    """Render with fpdf2 when available; otherwise the committed copy of the bundled item."""
    try:
        return render_pdf(item, item["source"])
    except ModuleNotFoundError:
        bundled = next((i for i in load_dev_items() if i["id"] == item["id"]), None)
        if bundled != item:
            raise RuntimeError(
                f"item {item['id']} differs from the bundled one and fpdf2 is not installed "
                "to typeset it as a PDF; pip install fpdf2") from None
        return (_DATA / "pdf" / f"{item['id']}.pdf").read_bytes()


def _chrome_top(site: str, sid: str, lang: str, title: str, head_extra: str) -> str:
    """Document head, cookie banner and site header shared by every HTML page."""
    return f"""<!DOCTYPE html>
<html lang="{_esc(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)} | {_esc(site)}</title>
{head_extra}
<style>{_STYLE}</style>
<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments)}}gtag('js',new Date());</script>
</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<div id="cookie-banner" class="cookie-banner" role="region" aria-label="Cookies on this site">
<p>We use cookies to make this website work and to understand how you use it, so that we can improve our services.</p>
<button type="button" name="cookies" value="accept">Accept additional cookies</button>
<button type="button" name="cookies" value="reject">Reject additional cookies</button>
<a href="/{sid}/cookies/">View cookie settings</a>
</div>
<header class="site-header">
<a class="logo" href="/{sid}/">{_esc(site)}</a>
<nav aria-label="Main menu">
<ul>
<li><a href="/{sid}/">Home</a></li>
<li><a href="/{sid}/about/">About us</a></li>
<li><a href="/{sid}/what-we-do/">What we do</a></li>
<li><a href="/{sid}/publications/">Publications</a></li>
<li><a href="/{sid}/contact/">Contact</a></li>
<li><a href="/{sid}/search/?q=">Search</a></li>
</ul>
</nav>
</header>
"""


def _chrome_bottom(site: str, sid: str) -> str:
    """Newsletter box and footer shared by every HTML page."""
    return f"""<section class="newsletter" aria-labelledby="newsletter-title">
<h2 id="newsletter-title">Get our weekly bulletin in your inbox</h2>
<form action="/{sid}/newsletter/subscribe" method="post">
<label for="newsletter-email">Email address</label>
<input id="newsletter-email" type="email" name="email" autocomplete="email">
<button type="submit">Subscribe</button>
</form>
<p>You can unsubscribe at any time. Read our <a href="/privacy">privacy notice</a> to find out how we use your data.</p>
</section>
<footer class="site-footer">
<ul>
<li><a href="/about">About</a></li>
<li><a href="/contact">Contact</a></li>
<li><a href="/careers">Careers</a></li>
<li><a href="/accessibility">Accessibility statement</a></li>
<li><a href="/privacy">Privacy</a></li>
<li><a href="/{sid}/sitemap/">Sitemap</a></li>
</ul>
<p>Follow us on social media: <a href="https://social.example/@{sid}">Social</a> · <a href="https://video.example/c/{sid}">Video</a></p>
<p>© 2026 {_esc(site)}. Terms, privacy and accessibility information for this website is available on request.</p>
</footer>
</body>
</html>
"""


def _article_html(item: dict, spec: SourceSpec, article: ArticleSpec,
                  related: list[tuple[dict, ArticleSpec]], base_url: str) -> str:
    published = _published_at(item)
    url = base_url + article.path
    summary = _summary(item["text"])
    json_ld = json.dumps({
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": item["title"],
        "datePublished": published.isoformat(), "inLanguage": item["lang"],
        "publisher": {"@type": "Organization", "name": spec.name}, "url": url,
    }, ensure_ascii=False).replace("</", "<\\/")
    feed_link = ""
    if spec.type == "feed":
        mime = _CONTENT_TYPES["." + spec.format].split(";")[0]
        feed_link = (f'<link rel="alternate" type="{mime}" title="{_esc(spec.name)}" '
                     f'href="{_esc(base_url + spec.path)}">')
    head = f"""<meta name="description" content="{_esc(summary)}">
<meta property="og:type" content="article">
<meta property="og:title" content="{_esc(item['title'])}">
<meta property="og:url" content="{_esc(url)}">
<meta property="og:site_name" content="{_esc(spec.name)}">
<meta property="article:published_time" content="{published.isoformat()}">
<link rel="canonical" href="{_esc(url)}">
{feed_link}
<script type="application/ld+json">{json_ld}</script>"""
    body = "\n".join(f"<p>{_esc(p)}</p>" for p in _paragraphs(item["text"]))
    share_url = quote(url, safe="")
    sidebar = "\n".join(
        f'<li><a href="{_esc(a.path)}">{_esc(other["title"])}</a> '
        f'<time datetime="{other["published"]}">{_human_date(_published_at(other))}</time></li>'
        for other, a in related
    )
    news_home = spec.path if spec.type == "listing" else f"/{spec.id}/"
    return (_chrome_top(spec.name, spec.id, item["lang"], item["title"], head) + f"""<nav class="breadcrumbs" aria-label="Breadcrumb">
<span>You are here:</span> <a href="/{spec.id}/">Home</a> › <a href="{_esc(news_home)}">News and updates</a>
</nav>
<div class="layout">
<main id="main">
<article class="news-article">
<h1>{_esc(item['title'])}</h1>
<p class="article-meta">Press release · <time datetime="{published.isoformat()}">{_human_date(published)}</time></p>
<div class="article-body">
{body}
</div>
<div class="share">
<h2>Share this page</h2>
<ul>
<li><a href="https://social.example/share?url={share_url}">Share on Social</a></li>
<li><a href="mailto:?subject={quote(item['title'])}&amp;body={share_url}">Share by email</a></li>
</ul>
</div>
</article>
</main>
<aside class="sidebar" aria-labelledby="related-title">
<h2 id="related-title">Related news</h2>
<ul>
{sidebar}
</ul>
</aside>
</div>
""" + _chrome_bottom(spec.name, spec.id))


def _listing_html(spec: SourceSpec, items: list[dict], articles: list[ArticleSpec],
                  link_base: str) -> str:
    """An index page without a feed; ``link_base`` "" gives root-relative article links."""
    entries = []
    for item, article in zip(items, articles):
        published = _published_at(item)
        kind = ' <span class="filetype">(PDF)</span>' if article.content_type == "pdf" else ""
        entries.append(f"""<li class="teaser">
<h3><a href="{_esc(link_base + article.path)}">{_esc(item['title'])}</a>{kind}</h3>
<time datetime="{published.isoformat()}">{_human_date(published)}</time>
<p>{_esc(_summary(item['text']))}</p>
</li>""")
    lang = items[0]["lang"]
    head = f'<meta name="description" content="News and updates from {_esc(spec.name)}">'
    return (_chrome_top(spec.name, spec.id, lang, "News and updates", head) + f"""<div class="layout">
<main id="main">
<h1>News and updates</h1>
<ul class="news-list">
{chr(10).join(entries)}
</ul>
</main>
</div>
""" + _chrome_bottom(spec.name, spec.id))


def _policy_page_html(page: _TrackedPage, version: int, modified: datetime) -> str:
    blocks = []
    for tag, *texts in page.blocks:
        text = texts[0] if len(texts) == 1 else texts[version - 1]
        if text is not None:
            blocks.append(f"<{tag}>{_esc(text)}</{tag}>")
    sid = page.path.strip("/").split("/")[0]
    head = f'<meta property="article:modified_time" content="{modified.isoformat()}">'
    return (_chrome_top(page.site, sid, "en", page.title, head) + f"""<div class="layout">
<main id="main">
<article class="policy">
<h1>{_esc(page.title)}</h1>
{chr(10).join(blocks)}
</article>
</main>
</div>
""" + _chrome_bottom(page.site, sid))


def _rss(spec: SourceSpec, items: list[dict], articles: list[ArticleSpec], base_url: str) -> str:
    entries = "".join(f"""
<item>
<title>{_esc(item['title'])}</title>
<link>{_esc(base_url + article.path)}</link>
<guid isPermaLink="true">{_esc(base_url + article.path)}</guid>
<pubDate>{email.utils.format_datetime(_published_at(item))}</pubDate>
<description>{_esc(_summary(item['text']))}</description>
</item>""" for item, article in zip(items, articles))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{_esc(spec.name)}</title>
<link>{_esc(base_url)}/{spec.id}/</link>
<description>News and press releases from {_esc(spec.name)}</description>
<language>{_esc(items[0]['lang'])}</language>
<lastBuildDate>{email.utils.format_datetime(_published_at(items[0]))}</lastBuildDate>
<atom:link href="{_esc(base_url + spec.path)}" rel="self" type="application/rss+xml"/>{entries}
</channel>
</rss>
"""


def _atom(spec: SourceSpec, items: list[dict], articles: list[ArticleSpec], base_url: str) -> str:
    """Atom with tag: ids, so crawlers must follow the link rather than treat ids as URLs."""
    entries = "".join(f"""
<entry>
<id>tag:demo.scan.invalid,2026:{spec.id}:{_esc(item['id'])}</id>
<title type="text">{_esc(item['title'])}</title>
<link rel="alternate" type="text/html" href="{_esc(base_url + article.path)}"/>
<published>{_published_at(item).isoformat()}</published>
<updated>{_published_at(item).isoformat()}</updated>
<summary type="text">{_esc(_summary(item['text']))}</summary>
</entry>""" for item, article in zip(items, articles))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_esc(items[0]['lang'])}">
<id>tag:demo.scan.invalid,2026:{spec.id}</id>
<title>{_esc(spec.name)}</title>
<updated>{_published_at(items[0]).isoformat()}</updated>
<author><name>{_esc(spec.name)}</name></author>
<link rel="self" type="application/atom+xml" href="{_esc(base_url + spec.path)}"/>
<link rel="alternate" type="text/html" href="{_esc(base_url)}/{spec.id}/"/>{entries}
</feed>
"""


# --- serving --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Static files with strong ETags, Last-Modified and 304s; no logging."""

    server: DemoSiteServer
    protocol_version = "HTTP/1.1"
    server_version = "DemoSite/1.0"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silence the default stderr access log."""

    def _respond(self, send_body: bool) -> None:
        target = self._resolve(urlsplit(self.path).path)
        if target is None:
            body = b"<!DOCTYPE html><title>Not found</title><h1>Page not found</h1>"
            self._send(404, {"Content-Type": _CONTENT_TYPES[".html"]}, body, send_body)
            return
        body = target.read_bytes()
        mtime = int(target.stat().st_mtime)
        headers = {
            "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
            "Cache-Control": "no-cache",
        }
        if self._not_modified(headers["ETag"], mtime):
            self._send(304, headers, b"", send_body=False)
            return
        headers["Content-Type"] = _CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        self._send(200, headers, body, send_body)

    def _resolve(self, url_path: str) -> Path | None:
        candidate = _file(self.server.root, url_path)
        if candidate.is_dir():
            candidate = candidate / "index.html"
        try:
            resolved = candidate.resolve()
        except OSError:
            return None
        inside = resolved.is_relative_to(self.server.root)
        return resolved if inside and resolved.is_file() else None

    def _not_modified(self, etag: str, mtime: int) -> bool:
        """RFC 9110: If-None-Match (weak comparison) wins over If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return since.tzinfo is not None and mtime <= since.timestamp()
        return False

    def _send(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
        self.server.record(Hit(self.command, self.path, status))  # before the client can see it
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)
