"""A hostile web on loopback: the servers behind tests/test_hostile.py, importable by bench/.

`serve_hostile()` starts two servers and yields a `HostileWeb`:

- the *hostile* server on 127.0.0.1 serves good feeds, listings and articles beside every kind of
  abuse a crawler meets: a gzip bomb (1 GiB inflated), a 100 MB page, an endless slow drip, a
  redirect loop, redirects to 127.0.0.2 / 169.254.169.254 / file:///etc/passwd, 429 with
  Retry-After, a 503 storm, XXE and billion-laughs feeds, ill-formed feeds (truncated, wrong
  encoding declared, HTML instead of XML), script/onerror payloads in titles and bodies, a listing
  linking to 10 000 pages and a robots.txt-forbidden feed;
- the *trap* server on 127.0.0.2 answers anything and records it. 127.0.0.2 is never a configured
  source host, so the SSRF guard must keep every request away from it: `trap.hits` stays empty.

`HostileWeb.config(folder)` writes a sources.yaml with one source per case, and `CASES` says
what a correct crawl records for each (status, stored developments, a phrase of the reason), so
tests and benchmarks share one case table instead of drifting apart. `slow_config()` is a
separate, slowed-down site for kill -9 tests.

Everything is generated on the fly and streamed; nothing large is held in memory here, so a
benchmark measuring the crawler's peak RSS measures the crawler.
"""

from __future__ import annotations

import contextlib
import html
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

TRAP_HOST = "127.0.0.2"
BOMB_INFLATED = 1 << 30  # 1 GiB of zeros behind about 1 MB of gzip
HUGE_BYTES = 100_000_000
MANY_LINKS = 10_000
DRIP_INTERVAL_S = 0.1
STREAM_CHUNK = 64 * 1024
XSS_TITLE = "Fee caps <script>alert('t')</script><img src=x onerror=alert('t')> for live gifts"
LINK_LIMIT = 25  # `fetch.max_links` in the hostile config: the listing of 10 000 yields exactly this many


@dataclass(frozen=True)
class Case:
    """What a correct crawl records for one hostile source."""

    status: str  # sources.last_status: ok | partial | error
    stored: int  # developments stored for the source
    reason: str | None  # a phrase of sources.last_error (None: no error)
    what: str  # the hostile input, for reports


CASES: dict[str, Case] = {
    "good-feed": Case("ok", 3, None, "a well-formed RSS feed, one article with invalid UTF-8 bytes"),
    "good-listing": Case("ok", 3, None, "a listing page whose matching links are articles"),
    "payload-feed": Case("ok", 2, None, "titles and bodies carrying <script> and onerror payloads"),
    "bomb-page": Case("error", 0, "after decompression", "a gzip bomb: 1 GiB of zeros in ~1 MB"),
    "huge-feed": Case("error", 0, "over max_bytes", "a 100 MB feed without Content-Length"),
    "drip-listing": Case("error", 0, "slow drip", "a listing dripping one byte every 0.1 s, forever"),
    "redirect-loop": Case("error", 0, "more than 5 redirects", "a feed redirecting /a -> /b -> /a"),
    "redirect-private": Case("error", 0, "non-public address 127.0.0.2", "a feed redirecting to 127.0.0.2"),
    "redirect-metadata": Case("error", 0, "non-public address 169.254.169.254", "a redirect to cloud metadata"),
    "redirect-file": Case("error", 0, "scheme 'file' is not http(s)", "a redirect to file:///etc/passwd"),
    "link-private": Case("partial", 1, "non-public address 127.0.0.2", "a feed item linking to 127.0.0.2"),
    "rate-limited": Case("ok", 1, None, "429 with Retry-After: 1, then the feed"),
    "rate-limited-long": Case("error", 0, "Retry-After", "429 with Retry-After of a day"),
    "storm": Case("error", 0, "HTTP 503 after 1 retries", "503 on every request"),
    "xxe-feed": Case("ok", 1, None, "external entities to file:///etc/passwd and to 127.0.0.2"),
    "xxe-listing": Case("ok", 1, None, "an HTML listing and article declaring external entities"),
    "laughs-feed": Case("ok", 1, None, "billion laughs (nested entity expansion)"),
    "truncated-feed": Case("ok", 2, None, "RSS cut off in the middle of its third item"),
    "misdeclared-feed": Case("ok", 1, None, "declares UTF-8, is Windows-1252"),
    "html-feed": Case("error", 0, "not a readable RSS/Atom feed", "an HTML page where the feed should be"),
    "many-links": Case("ok", LINK_LIMIT, None, f"a listing linking to {MANY_LINKS} pages"),
    "robots-blocked": Case("error", 0, "disallowed by robots.txt", "a feed under a robots.txt Disallow"),
}


@dataclass(frozen=True)
class Hit:
    path: str
    user_agent: str
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, route: Callable[["_Handler"], None]):
        self.route = route
        self.hits: list[Hit] = []
        self.stopping = threading.Event()
        super().__init__((host, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(Hit(self.path, self.headers.get("User-Agent", ""), time.monotonic()))
        try:
            self.server.route(self)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the crawler hung up on us: that is the point of most routes

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, body: bytes | str, status: int = 200, content_type: str = "text/html; charset=utf-8",
             headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location: str) -> None:
        self.send("", 302, headers={"Location": location})

    def stream(self, chunks: Iterator[bytes], content_type: str, headers: dict[str, str] | None = None) -> None:
        """A body without Content-Length (ended by closing), so only counting can cap it."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in chunks:
            if self.server.stopping.is_set():
                return
            self.wfile.write(chunk)
            self.wfile.flush()


@contextlib.contextmanager
def _running(host: str, route: Callable[[_Handler], None]) -> Iterator[_Server]:
    server = _Server(host, route)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- content ------------------------------------------------------------------------------


def article_html(title: str, slug: str, extra: str = "", charset: str = "utf-8") -> str:
    """A plausible regulator article: enough real text that extraction has no excuse."""
    paragraphs = [
        f"The regulator today published {title.lower()} following its consultation on virtual gifting "
        "and live-stream monetisation, setting out what platforms must do before the rules apply.",
        "Platforms must disclose the real-money price of every virtual item, keep spending limits for "
        "minors switched on by default and refund purchases made without parental consent.",
        f"Reference {slug}: responses to the consultation are summarised in the annex, and the "
        "obligations take effect twelve months after publication of this notice.",
    ]
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><meta charset=\"{charset}\"><title>{html.escape(title)}</title></head>"
        f"<body><nav><a href=\"/\">Home</a></nav><main><article><h1>{html.escape(title)}</h1>"
        f"<p><time datetime=\"2026-11-18\">18 November 2026</time></p>{body}{extra}</article></main></body></html>"
    )


def rss(items: list[tuple[str, str]], *, title: str = "Hostile test feed", prolog: str = "",
        encoding: str = "utf-8", raw_titles: bool = False) -> str:
    """RSS 2.0 with (title, link) items; `raw_titles` leaves titles unescaped (entity references)."""
    entries = "".join(
        f"<item><title>{t if raw_titles else html.escape(t)}</title><link>{html.escape(link)}</link>"
        "<pubDate>Wed, 18 Nov 2026 09:00:00 GMT</pubDate></item>"
        for t, link in items
    )
    return (
        f"<?xml version=\"1.0\" encoding=\"{encoding}\"?>{prolog}<rss version=\"2.0\"><channel>"
        f"<title>{title}</title><link>http://example.invalid/</link><description>test</description>"
        f"{entries}</channel></rss>"
    )


@cache
def _bomb_parts() -> tuple[bytes, bytes, int, bytes]:
    """(gzip header, one deflate segment inflating to 1 MiB of zeros, repeats, trailer).

    After a full flush the compressor starts afresh, so every 1 MiB segment compresses to the same
    bytes: the bomb streams as header + segment × 1024 + trailer, a valid gzip member of 1 GiB.
    """
    mib = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush(zlib.Z_FINISH)
    repeats = BOMB_INFLATED // len(mib)
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = final + struct.pack("<II", crc, BOMB_INFLATED & 0xFFFFFFFF)
    return header, segment, repeats, trailer


def gzip_bomb() -> Iterator[bytes]:
    """The bomb's bytes in order, about 1 MB in all."""
    header, segment, repeats, trailer = _bomb_parts()
    yield header
    for _ in range(repeats):
        yield segment
    yield trailer


def _huge() -> Iterator[bytes]:
    block = (b"<item><title>filler</title></item>" * 2000)[:STREAM_CHUNK]
    yield b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>"
    for _ in range(HUGE_BYTES // len(block)):
        yield block


def _drip() -> Iterator[bytes]:
    yield b"<html><body>"
    while True:
        time.sleep(DRIP_INTERVAL_S)
        yield b"<"


GOOD = ("Gift price disclosure rules", "Spending limits for minors", "Refund duties for virtual items")
MISDECLARED_TITLE = "Gebühren für virtuelle Geschenke – Entwurf"


class HostileWeb:
    """Both servers, their URLs, and the configs that point a crawl at them."""

    def __init__(self, hostile: _Server, trap: _Server):
        self.hostile = hostile
        self.trap = trap
        self.base = f"http://127.0.0.1:{hostile.server_address[1]}"
        self.trap_base = f"http://{TRAP_HOST}:{trap.server_address[1]}"
        self.slow_delay = 0.0
        self._rate_limited_calls = 0
        self._lock = threading.Lock()

    # --- routing ---------------------------------------------------------------------------

    def route(self, h: _Handler) -> None:
        path = urlsplit(h.path).path
        base, trap = self.base, self.trap_base
        feeds: dict[str, Callable[[], None]] = {
            "/robots.txt": lambda: h.send("User-agent: *\nDisallow: /private/\n", content_type="text/plain"),
            "/good/feed.xml": lambda: h.send(rss([(t, f"{base}/a/good-{i}.html") for i, t in enumerate(GOOD)]),
                                             content_type="application/rss+xml"),
            "/good/listing.html": lambda: h.send(_listing([f"/a/list-{i}.html" for i in range(3)])),
            "/payload/feed.xml": lambda: h.send(
                rss([(XSS_TITLE, f"{base}/a/xss-0.html"), ("Bold <b onmouseover=alert(1)>claims</b> rules",
                                                          f"{base}/a/xss-1.html")]),
                content_type="application/rss+xml"),
            "/bomb": lambda: h.stream(gzip_bomb(), "text/html", {"Content-Encoding": "gzip"}),
            "/huge/feed.xml": lambda: h.stream(_huge(), "application/rss+xml"),
            "/drip": lambda: h.stream(_drip(), "text/html"),
            "/loop/a": lambda: h.redirect("/loop/b"),
            "/loop/b": lambda: h.redirect("/loop/a"),
            "/redirect/private": lambda: h.redirect(f"{trap}/feed.xml"),
            "/redirect/metadata": lambda: h.redirect("http://169.254.169.254/latest/meta-data/iam/"),
            "/redirect/file": lambda: h.redirect("file:///etc/passwd"),
            "/link-private/feed.xml": lambda: h.send(
                rss([("A public notice", f"{base}/a/lp-0.html"), ("Internal", f"{trap}/secret.html")]),
                content_type="application/rss+xml"),
            "/limited/feed.xml": lambda: self._rate_limited(h),
            "/limited-long/feed.xml": lambda: h.send("slow down", 429, "text/plain", {"Retry-After": "86400"}),
            "/storm/feed.xml": lambda: h.send("busy", 503, "text/plain"),
            "/xxe/feed.xml": lambda: h.send(_xxe_feed(base, trap), content_type="application/rss+xml"),
            "/xxe/listing.html": lambda: h.send(_xxe_doctype(trap) + _listing(["/a/xxe-list-0.html"]).replace(
                "Notice 0", "Notice &file; &remote;").removeprefix("<!doctype html>")),
            "/laughs/feed.xml": lambda: h.send(_laughs_feed(base), content_type="application/rss+xml"),
            "/truncated/feed.xml": lambda: h.send(_truncated_feed(base), content_type="application/rss+xml"),
            "/misdeclared/feed.xml": lambda: h.send(
                rss([(MISDECLARED_TITLE, f"{base}/a/md-0.html")]).encode("cp1252"),
                content_type="application/rss+xml"),
            "/html-feed/feed.xml": lambda: h.send(article_html("Not a feed at all", "html-feed")),
            "/many/listing.html": lambda: h.send(_listing([f"/many/{i}.html" for i in range(MANY_LINKS)])),
            "/private/feed.xml": lambda: h.send(rss([("Hidden", f"{base}/a/hidden.html")])),
        }
        if path in feeds:
            feeds[path]()
        elif path.startswith(("/a/", "/many/")):
            self._article(h, path)
        elif path.startswith("/slow/"):
            self._slow(h, path)
        else:
            h.send("not found", 404, "text/plain")

    def _rate_limited(self, h: _Handler) -> None:
        with self._lock:
            self._rate_limited_calls += 1
            first = self._rate_limited_calls == 1
        if first:
            h.send("slow down", 429, "text/plain", {"Retry-After": "1"})
        else:
            h.send(rss([("After the wait", f"{self.base}/a/rl-0.html")]), content_type="application/rss+xml")

    def _article(self, h: _Handler, path: str) -> None:
        slug = path.rsplit("/", 1)[-1].removesuffix(".html")
        if slug == "good-1":  # declared UTF-8, with bytes that are not: decoding must fall back, not crash
            page = article_html("Spending limits for minors", slug, "<p>Fee: 5 \x80 per coin.</p>")
            h.send(page.encode("utf-8").replace("\x80".encode(), b"\x80\xff"))
        elif slug.startswith("xss-"):
            payload = (
                "<script>document.title='pwned'</script><img src=x onerror=\"alert('body')\">"
                "<p onclick=\"alert(2)\">Clickable paragraph with enough words to be kept as text.</p>"
            )
            h.send(article_html(f"Payload article {slug}", slug, payload))
        elif slug.startswith("xxe-list-"):
            page = article_html(f"Entity article {slug}", slug, "<p>Leaked: &file; &remote;</p>")
            h.send(_xxe_doctype(self.trap_base) + page.removeprefix("<!doctype html>"))
        elif slug.startswith("md-"):
            page = article_html(MISDECLARED_TITLE, slug)
            h.send(page.encode("cp1252"))
        else:
            h.send(article_html(f"Article {slug.replace('-', ' ')}", slug))

    def _slow(self, h: _Handler, path: str) -> None:
        """/slow/feed-K.xml lists /slow/K-J.html; each article answers after `slow_delay` seconds."""
        name = path.rsplit("/", 1)[-1]
        if name.startswith("feed-"):
            k = name.removeprefix("feed-").removesuffix(".xml")
            h.send(rss([(f"Slow item {k}-{j}", f"{self.base}/slow/{k}-{j}.html") for j in range(SLOW_ITEMS)]),
                   content_type="application/rss+xml")
        else:
            time.sleep(self.slow_delay)
            h.send(article_html(f"Slow article {name}", name))

    # --- configs ---------------------------------------------------------------------------

    def source_urls(self) -> dict[str, tuple[str, str]]:
        """Source id -> (type, URL) for every case in `CASES`."""
        b = self.base
        return {
            "good-feed": ("feed", f"{b}/good/feed.xml"),
            "good-listing": ("listing", f"{b}/good/listing.html"),
            "payload-feed": ("feed", f"{b}/payload/feed.xml"),
            "bomb-page": ("page", f"{b}/bomb"),
            "huge-feed": ("feed", f"{b}/huge/feed.xml"),
            "drip-listing": ("listing", f"{b}/drip"),
            "redirect-loop": ("feed", f"{b}/loop/a"),
            "redirect-private": ("feed", f"{b}/redirect/private"),
            "redirect-metadata": ("feed", f"{b}/redirect/metadata"),
            "redirect-file": ("feed", f"{b}/redirect/file"),
            "link-private": ("feed", f"{b}/link-private/feed.xml"),
            "rate-limited": ("feed", f"{b}/limited/feed.xml"),
            "rate-limited-long": ("feed", f"{b}/limited-long/feed.xml"),
            "storm": ("feed", f"{b}/storm/feed.xml"),
            "xxe-feed": ("feed", f"{b}/xxe/feed.xml"),
            "xxe-listing": ("listing", f"{b}/xxe/listing.html"),
            "laughs-feed": ("feed", f"{b}/laughs/feed.xml"),
            "truncated-feed": ("feed", f"{b}/truncated/feed.xml"),
            "misdeclared-feed": ("feed", f"{b}/misdeclared/feed.xml"),
            "html-feed": ("feed", f"{b}/html-feed/feed.xml"),
            "many-links": ("listing", f"{b}/many/listing.html"),
            "robots-blocked": ("feed", f"{b}/private/feed.xml"),
        }

    def config(self, folder: Path, *, timeout: float = 1.0) -> Path:
        """A sources.yaml in `folder` with every case; `timeout` sets how long the drip may take (3×)."""
        lines = []
        for source_id, (kind, url) in self.source_urls().items():
            lines.append(f"  - id: {source_id}\n    kind: regulator\n    jurisdiction: XX\n    {kind}: {url}\n")
            if kind == "listing":
                lines.append(f'    match: "{"/many/" if source_id == "many-links" else "/a/"}"\n')
        return _write_config(folder, "".join(lines), timeout=timeout, max_links=LINK_LIMIT)

    def slow_config(self, folder: Path, feeds: int) -> Path:
        """`feeds` feed sources of `SLOW_ITEMS` slow articles each, for kill -9 tests."""
        lines = "".join(
            f"  - id: slow-{k}\n    kind: regulator\n    feed: {self.base}/slow/feed-{k}.xml\n" for k in range(feeds)
        )
        return _write_config(folder, lines, timeout=5.0, max_links=LINK_LIMIT)


SLOW_ITEMS = 5


def _write_config(folder: Path, sources: str, *, timeout: float, max_links: int) -> Path:
    from scanner.demo_site import write_policies

    write_policies(folder / "policies")
    path = folder / "sources.yaml"
    path.write_text(
        "database: scan.db\npolicies: policies/\n"
        f"fetch:\n  user_agent: \"scan-hostile-test/1 (+mailto:test@example.invalid)\"\n  per_host_delay: 0\n"
        f"  timeout: {timeout}\n  retries: 1\n  max_links: {max_links}\n"
        f"sources:\n{sources}",
        encoding="utf-8",
    )
    return path


def _listing(paths: list[str]) -> str:
    links = "".join(f"<li><a href=\"{p}\">Notice {i}</a></li>" for i, p in enumerate(paths))
    return f"<!doctype html><html><body><nav><a href=\"/about\">About</a></nav><ul>{links}</ul></body></html>"


def _xxe_doctype(trap: str, root: str = "html") -> str:
    """External entities to a local file and to the trap, plus an external parameter-entity DTD."""
    return (
        f"<!DOCTYPE {root} [\n"
        '  <!ENTITY file SYSTEM "file:///etc/passwd">\n'
        f'  <!ENTITY remote SYSTEM "{trap}/xxe-entity">\n'
        f'  <!ENTITY % dtd SYSTEM "{trap}/xxe.dtd">\n'
        "  %dtd;\n"
        "]>"
    )


def _xxe_feed(base: str, trap: str) -> str:
    prolog = _xxe_doctype(trap, "rss")
    return rss([("Leak &file; and &remote; here", f"{base}/a/xxe-0.html")], prolog=prolog, raw_titles=True)


def _laughs_feed(base: str) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    prolog = "<!DOCTYPE rss [" + "".join(entities) + "]>"
    return rss([("Laughing &lol9; matter", f"{base}/a/laughs-0.html")], prolog=prolog, raw_titles=True)


def _truncated_feed(base: str) -> str:
    full = rss([(f"Truncated item {i}", f"{base}/a/trunc-{i}.html") for i in range(3)])
    return full[: full.rindex("<item>") + len("<item><title>Truncated it")]


@contextlib.contextmanager
def serve_hostile() -> Iterator[HostileWeb]:
    """Run the hostile server on 127.0.0.1 and the trap on 127.0.0.2 (ephemeral ports)."""
    web: HostileWeb | None = None

    def route(h: _Handler) -> None:
        assert web is not None
        web.route(h)

    def trap_route(h: _Handler) -> None:
        h.send("root:x:0:0:trap hit\n", content_type="text/plain")

    with _running("127.0.0.1", route) as hostile, _running(TRAP_HOST, trap_route) as trap:
        web = HostileWeb(hostile, trap)
        yield web
