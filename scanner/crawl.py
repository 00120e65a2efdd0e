"""Chain fetch → extract → store for each source, keeping each source's failure on its own record.

Network work for a source runs in a worker thread (sources on different hosts overlap; the
fetcher keeps each host polite); everything a source produced is then written in one
transaction on the calling thread, together with the HTTP validators that say it was seen. A
crash before that commit loses only the download, never consistency: the rerun fetches again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scanner.config import Config, Source
from scanner.extract import (
    ExtractError,
    canonical_url,
    extract_article,
    listing_links,
    page_diff,
    parse_feed,
    summarize,
)
from scanner.fetch import Fetcher, FetchError
from scanner.store import Store, development_uid, utcnow

log = logging.getLogger(__name__)

MAX_WORKERS = 4
ROBOTS_MAX_AGE_S = 24 * 3600


@dataclass
class SourceResult:
    """What one source's crawl did; `error` is the one-line reason when it (partly) failed."""

    source_id: str
    status: str = "ok"
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None
    item_errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"new": self.new, "changed": self.changed, "unchanged": self.unchanged, "failed": self.failed}


@dataclass
class _Work:
    """Rows gathered by a worker, written later in one transaction."""

    developments: list[dict[str, Any]] = field(default_factory=list)
    validators: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    page_version: tuple[str, str, str] | None = None


def content_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


class Crawler:
    """Crawls configured sources into a store; usable from Python as well as from `scan crawl`."""

    def __init__(self, config: Config, store: Store, *, on_progress: Callable[[SourceResult], None] | None = None):
        self.config = config
        self.store = store
        self.on_progress = on_progress
        self._db_lock = threading.Lock()  # one connection: workers' reads and the commits take turns
        self.fetcher = Fetcher(config.fetch, robots_cache=_StoredRobots(store, self._db_lock))

    def close(self) -> None:
        self.fetcher.close()

    def crawl(self, source_ids: Iterable[str] | None = None) -> list[SourceResult]:
        """Crawl the chosen sources (all by default); one failing source never stops the others."""
        sources = [self.config.source(i) for i in source_ids] if source_ids else list(self.config.sources)
        self.store.sync_sources(self.config.sources)
        results: list[SourceResult] = []
        started = utcnow()
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(sources)))) as pool:
            futures = {pool.submit(self._gather, source): source for source in sources}
            for future in as_completed(futures):
                source = futures[future]
                result, work = future.result()
                self._commit(source, result, work, started)
                results.append(result)
                if self.on_progress:
                    self.on_progress(result)
        order = {s.id: i for i, s in enumerate(sources)}
        return sorted(results, key=lambda r: order[r.source_id])

    def _commit(self, source: Source, result: SourceResult, work: _Work, started: str) -> None:
        with self._db_lock, self.store.atomic():
            for record in work.developments:
                if self.store.add_development(record) is None:
                    result.unchanged += 1
                elif record.get("diff"):
                    result.changed += 1
                else:
                    result.new += 1
            if work.page_version:
                self.store.add_page_version(source.id, *work.page_version)
            for url, etag, last_modified, digest in work.validators:
                self.store.save_http_cache(url, etag, last_modified, digest)
            self.store.record_source_result(
                source.id, started_at=started, status=result.status, error=result.error, counts=result.counts
            )

    def _gather(self, source: Source) -> tuple[SourceResult, _Work]:
        result = SourceResult(source.id)
        work = _Work()
        try:
            if source.type == "page":
                self._gather_page(source, result, work)
            else:
                self._gather_entries(source, result, work)
        except (FetchError, ExtractError) as exc:
            result.status, result.error = "error", _describe(exc, source)
        except Exception as exc:  # a bug must not take the other sources down; it is recorded loudly
            log.exception("source %s: unexpected error", source.id)
            result.status, result.error = "error", f"internal error: {type(exc).__name__}: {exc}"
        if result.status != "error" and result.failed:
            result.status = "partial"
            result.error = f"{result.failed} item(s) failed; first: {result.item_errors[0]}"
        return result, work

    def _conditional_get(self, source: Source, work: _Work) -> bytes | None:
        """The source's body if it changed since last time, else None; queues the new validators."""
        url = source.url
        with self._db_lock:
            cached = self.store.http_cache(url)
        response = self.fetcher.get(
            url, etag=cached and cached["etag"], last_modified=cached and cached["last_modified"],
            trusted_host=urlsplit(url).hostname,
        )
        if response.not_modified:
            return None
        digest = hashlib.sha256(response.body).hexdigest()
        work.validators.append((url, response.etag, response.last_modified, digest))
        if cached and cached["content_hash"] == digest:
            return None
        return response.body

    def _gather_entries(self, source: Source, result: SourceResult, work: _Work) -> None:
        body = self._conditional_get(source, work)
        if body is None:
            result.status = "not-modified"
            return
        if source.type == "feed":
            entries = [(e.link, e.title, e.published, e.summary) for e in parse_feed(body, source.url)]
        else:
            links = listing_links(body, source.url, source.match, self.config.fetch.max_links)
            entries = [(link, text, None, "") for link, text in links]
        with self._db_lock:
            known = self.store.known_urls(canonical_url(e[0]) for e in entries)
        for link, title, published, summary in entries:
            canonical = canonical_url(link)
            if canonical in known:
                result.unchanged += 1
                continue
            known.add(canonical)
            try:
                response = self.fetcher.get(link, trusted_host=urlsplit(source.url).hostname)
                article = extract_article(response.body, response.url, response.content_type)
            except (FetchError, ExtractError) as exc:
                result.failed += 1
                result.item_errors.append(_describe(exc, source, link))
                continue
            text = article.text
            work.developments.append(
                {
                    "uid": development_uid(canonical), "source_id": source.id, "kind": source.kind,
                    "jurisdiction": source.jurisdiction, "url": link, "canonical_url": canonical,
                    "title": title or article.title or link, "text": text,
                    "summary": summarize(summary or text), "published": published or article.published,
                    "content_hash": content_hash(text), "first_seen": utcnow(),
                }
            )
        if result.failed:
            work.validators.clear()  # so the next run reads the index again and retries what failed

    def _gather_page(self, source: Source, result: SourceResult, work: _Work) -> None:
        body = self._conditional_get(source, work)
        if body is None:
            result.status = "not-modified"
            return
        article = extract_article(body, source.url, "")
        digest = content_hash(article.text)
        with self._db_lock:
            previous = self.store.last_page_version(source.id)
        if previous and previous["content_hash"] == digest:
            result.unchanged += 1
            return
        work.page_version = (source.url, digest, article.text)
        if previous is None:
            result.unchanged += 1
            return
        diff = page_diff(previous["text"], article.text)
        canonical = canonical_url(source.url)
        work.developments.append(
            {
                "uid": development_uid(f"{canonical}#{digest}"), "source_id": source.id, "kind": source.kind,
                "jurisdiction": source.jurisdiction, "url": source.url, "canonical_url": canonical,
                "title": f"{article.title or source.display_name}: page changed",
                "text": article.text, "summary": summarize(_added_text(diff) or article.text),
                "published": utcnow()[:10],
                "content_hash": digest, "first_seen": utcnow(), "diff": diff,
            }
        )


class _StoredRobots:
    """robots.txt kept in the store between runs; worker threads take the connection's lock."""

    def __init__(self, store: Store, lock: threading.Lock):
        self.store = store
        self.lock = lock

    def get(self, host: str) -> str | None:
        with self.lock:
            return self.store.robots(host, ROBOTS_MAX_AGE_S)

    def put(self, host: str, body: str) -> None:
        with self.lock:
            self.store.save_robots(host, body)


def _added_text(diff: str) -> str:
    return " ".join(line[1:] for line in diff.splitlines() if line.startswith("+"))


def _describe(exc: Exception, source: Source, url: str | None = None) -> str:
    if isinstance(exc, FetchError):
        return str(exc)
    return f"{url or source.url}: {exc}"


def crawl(config: Config, store: Store, source_ids: Iterable[str] | None = None,
          on_progress: Callable[[SourceResult], None] | None = None) -> list[SourceResult]:
    """Crawl and store; the convenience entry point for Python callers."""
    crawler = Crawler(config, store, on_progress=on_progress)
    try:
        return crawler.crawl(source_ids)
    finally:
        crawler.close()
