"""The kinds of source a config can name, as a registry: each declares its keys and how it gathers.

A source in `sources.yaml` names its target with exactly one registered key (`feed:`, `listing:`,
`page:` …). Adding a kind is one `register()` call here: config validation and the crawler's
dispatch both read this registry (as urlwatch's job kinds do), so the two cannot drift.
A gatherer fetches through the crawl's polite `Fetcher`, turns what it finds into `Development`
records and counts its outcome on the `SourceResult`; the crawler writes them in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.crawl import Gathering

log = logging.getLogger(__name__)

Gather = Callable[["Gathering"], None]


@dataclass(frozen=True)
class SourceType:
    """A kind of source: its config key (whose value is the URL), extra keys it allows, and its gatherer."""

    key: str
    summary: str
    gather: Gather
    options: tuple[str, ...] = ()


REGISTRY: dict[str, SourceType] = {}


def register(source_type: SourceType) -> SourceType:
    REGISTRY[source_type.key] = source_type
    return source_type


def option_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(o for t in REGISTRY.values() for o in t.options))


def _feed(g: "Gathering") -> None:
    """Each RSS/Atom entry is a development; its link is fetched for the full text."""
    from scanner.extract import parse_feed

    body = g.changed_body()
    if body is not None:
        g.add_entries([(e.link, e.title, e.published, e.summary) for e in parse_feed(body, g.source.url)])


def _listing(g: "Gathering") -> None:
    """Links on an index page whose URL matches `match` are developments."""
    from scanner.extract import listing_links

    body = g.changed_body()
    if body is not None:
        links = listing_links(body, g.source.url, g.source.match, g.settings.max_links)
        g.add_entries([(link, text, None, "") for link, text in links])


def _page(g: "Gathering") -> None:
    """One page tracked for changes: each changed version is a development with its diff."""
    g.track_page()


def _federal_register(g: "Gathering") -> None:
    """The US Federal Register documents API (JSON): each rule, proposed rule or notice is a development,
    with the key dates, stage and RIN/docket ids the API states (so lifecycle does not have to guess)."""
    from scanner.extract import ExtractError, canonical_url
    from scanner.federal_register import FederalRegisterError, parse_documents
    from scanner.records import Development
    from scanner.store import development_uid, utcnow

    body = g.changed_body()
    if body is None:
        return
    try:
        documents = parse_documents(body)
    except FederalRegisterError as exc:
        raise ExtractError(f"Federal Register response: {exc}") from None
    known = g.read(lambda s: s.developments.known_urls(canonical_url(d.html_url) for d in documents))
    for document in documents:
        canonical = canonical_url(document.html_url)
        if not document.html_url or canonical in known:
            g.result.unchanged += 1
            continue
        data = document.as_development()
        keys = sorted(document.thread_keys)
        text = "\n\n".join(p for p in (data["text"], " ".join(k.replace(":", " ").upper() for k in keys)) if p)
        g.add(Development(
            uid=development_uid(canonical), source=g.source.id, kind=g.source.kind, url=document.html_url,
            canonical_url=canonical, title=document.title, text=text, summary=document.abstract[:280],
            published=data["published"], content_hash=_hash(text), jurisdiction=g.source.jurisdiction or "US",
            lang="en", first_seen=utcnow(),
            meta={"dates": data["dates"], "stage": data["stage"], "thread_keys": keys,
                  "document_number": document.document_number}))


def _hash(text: str) -> str:
    from scanner.textutil import content_hash

    return content_hash(text)


register(SourceType("feed", "RSS or Atom feed: each entry is a development; its link is fetched for full text", _feed))
register(SourceType("listing", "index page without a feed: links whose URL matches `match` are developments",
                    _listing, options=("match",)))
register(SourceType("page", "one page tracked for changes: each changed version is a development, with its diff", _page))
register(SourceType("federal_register", "the US Federal Register documents API (a documents.json query URL): rules and "
                    "proposed rules with their stated comment and effective dates, RINs and dockets", _federal_register))


def describe() -> list[dict[str, Any]]:
    """The registered kinds with their keys, for docs and `--help` (generated, so it cannot drift)."""
    return [{"key": t.key, "options": list(t.options), "summary": t.summary} for t in REGISTRY.values()]
