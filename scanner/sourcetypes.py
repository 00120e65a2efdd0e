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


register(SourceType("feed", "RSS or Atom feed: each entry is a development; its link is fetched for full text", _feed))
register(SourceType("listing", "index page without a feed: links whose URL matches `match` are developments",
                    _listing, options=("match",)))
register(SourceType("page", "one page tracked for changes: each changed version is a development, with its diff", _page))


def describe() -> list[dict[str, Any]]:
    """The registered kinds with their keys, for docs and `--help` (generated, so it cannot drift)."""
    return [{"key": t.key, "options": list(t.options), "summary": t.summary} for t in REGISTRY.values()]
