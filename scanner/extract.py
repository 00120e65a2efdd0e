"""Bytes in, text and metadata out: feeds, listing links, article text, PDFs and page diffs.

Pure functions with no I/O, so every failure is a value or a typed `ExtractError` saying why
nothing came out, and the crawler decides what to record.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from time import struct_time
from urllib.parse import urldefrag, urljoin, urlsplit

import courlan

from scanner.errors import ScanError

log = logging.getLogger(__name__)

MIN_TEXT_CHARS = 40
SUMMARY_CHARS = 280


class ExtractError(ScanError):
    """Nothing usable came out of a document; the message says why."""


@dataclass(frozen=True)
class FeedEntry:
    title: str
    link: str
    published: str | None
    summary: str


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    published: str | None


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case host, no fragment, no tracking parameters."""
    url = urldefrag(url.strip())[0]
    try:
        return courlan.normalize_url(url, strict=True)
    except (ValueError, AttributeError):
        return url


def decode_text(body: bytes, declared: str | None = None) -> str:
    """Decode with the declared charset, else UTF-8, else cp1252 — never raise on bad bytes."""
    for encoding in filter(None, (declared, "utf-8")):
        try:
            return body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("cp1252", errors="replace")


def _iso_date(parsed: struct_time | None) -> str | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=timezone.utc).date().isoformat()
    except (TypeError, ValueError):
        return None


def parse_feed(body: bytes, url: str) -> list[FeedEntry]:
    """Entries of an RSS/Atom feed; a malformed ('bozo') feed still yields what it can.

    feedparser gets bytes (so it sniffs the encoding itself) and the feed URL as its base, so
    relative links resolve. It never fetches anything and does not expand external entities.
    """
    import feedparser

    try:
        parsed = feedparser.parse(body, response_headers={"content-location": url})
    except Exception as exc:  # feedparser's contract is to never raise; guard a broken release anyway
        raise ExtractError(f"feed could not be parsed: {exc}") from None
    entries = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link:
            continue
        link = urljoin(url, link)
        if urlsplit(link).scheme not in ("http", "https"):
            continue
        published = _iso_date(entry.get("published_parsed") or entry.get("updated_parsed") or entry.get("created_parsed"))
        summary = _plain(entry.get("summary") or "")
        entries.append(FeedEntry(title=_plain(entry.get("title") or ""), link=link, published=published, summary=summary))
    if not entries and parsed.get("bozo"):
        reason = parsed.get("bozo_exception")
        raise ExtractError(f"not a readable RSS/Atom feed ({type(reason).__name__}: {reason})")
    return entries


def _plain(html: str) -> str:
    """Feed titles and summaries may hold markup; keep the text a reader would see.

    Script and style bodies are dropped with their tags: `<script>alert(1)</script>` in a title is
    code, not words, and would otherwise surface as "alert(1)" in digests and search snippets.
    """
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    import lxml.html

    try:
        tree = lxml.html.fromstring(f"<div>{html}</div>")
        for element in list(tree.iter("script", "style")):
            element.drop_tree()
        text = tree.text_content()
    except Exception:  # lxml raises several unrelated types on junk; the raw text is a fine fallback
        text = re.sub(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", " ", html, flags=re.I | re.S)
    return " ".join(text.split())


def listing_links(body: bytes, url: str, pattern: str | None, limit: int) -> list[tuple[str, str]]:
    """(absolute URL, anchor text) of links on an index page whose URL matches `pattern`, first `limit`."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(body, base_url=url)
    except Exception as exc:  # lxml's parser errors have no common base class worth naming
        raise ExtractError(f"listing page is not parseable HTML: {exc}") from None
    regex = re.compile(pattern) if pattern else None
    seen: set[str] = set()
    links: list[tuple[str, str]] = []
    own = canonical_url(url)
    for anchor in tree.iter("a"):
        href = anchor.get("href")
        if not href:
            continue
        link = urldefrag(urljoin(url, href.strip()))[0]
        if urlsplit(link).scheme not in ("http", "https"):
            continue
        if regex and not regex.search(link):
            continue
        key = canonical_url(link)
        if key in seen or key == own:
            continue
        seen.add(key)
        links.append((link, " ".join(anchor.text_content().split())))
        if len(links) >= limit:
            break
    return links


def extract_article(body: bytes, url: str, content_type: str = "") -> Article:
    """Main text, title and date of an article page or PDF, without navigation or boilerplate."""
    if content_type == "application/pdf" or body[:5] == b"%PDF-":
        return _extract_pdf(body)
    import trafilatura

    html = decode_text(body, _charset(body))
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True,
        favor_precision=True, deduplicate=False,
    )
    if document is None:
        raise ExtractError("no main text found on the page")
    data = document.as_dict() if hasattr(document, "as_dict") else dict(document)
    text = paragraphs(data.get("text") or "")
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractError(f"main text too short ({len(text)} characters)")
    return Article(title=(data.get("title") or "").strip(), text=text, published=_date_only(data.get("date")))


def paragraphs(text: str) -> str:
    """trafilatura puts one paragraph per line; a blank line between them is what chunking and
    evidence read as a paragraph break, so a crawled article chunks like the original page."""
    return "\n\n".join(line.strip() for line in text.splitlines() if line.strip())


def _charset(body: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", body[:4096], re.I)
    return match.group(1).decode("ascii") if match else None


def _date_only(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _extract_pdf(body: bytes) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata or {}
        title = str(meta.get("/Title") or "").strip()
        published = _pdf_date(str(meta.get("/CreationDate") or ""))
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractError(f"unreadable PDF: {exc}") from None
    paragraphs = [" ".join(p.split()) for page in pages for p in re.split(r"\n\s*\n", page)]
    text = "\n\n".join(p for p in paragraphs if p)
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractError("PDF has no extractable text (scanned image?)")
    if not title:
        title = text.split("\n", 1)[0][:200]
    return Article(title=title, text=text, published=published)


def _pdf_date(value: str) -> str | None:
    match = re.match(r"D:(\d{4})(\d{2})(\d{2})", value)
    return f"{match[1]}-{match[2]}-{match[3]}" if match else None


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The opening of the text, cut at a word boundary: enough to recognise the story in a list."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"


def page_diff(old: str, new: str) -> str:
    """A unified diff of paragraphs: what a tracked page added (+) and removed (-)."""
    old_lines = [p.strip() for p in old.splitlines() if p.strip()]
    new_lines = [p.strip() for p in new.splitlines() if p.strip()]
    diff = difflib.unified_diff(old_lines, new_lines, "before", "after", n=0, lineterm="")
    return "\n".join(line for line in diff if not line.startswith(("---", "+++", "@@")))
