"""Run each source's gatherer (see `scanner.sourcetypes`) and store what it found, one source at a time.

Network work for a source runs in a worker thread (sources on different hosts overlap; the
fetcher keeps each host polite); everything a source produced is then written in one
transaction on the calling thread, together with the HTTP validators that say it was seen. A
crash before that commit loses only the download, never consistency: the rerun fetches again.
A failing source keeps its failure on its own record (as urlwatch's JobState does) and the
others go on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from scanner import sourcetypes
from scanner.config import Config, FetchSettings, Source
from scanner.extract import ExtractError, canonical_url, extract_article, page_diff, summarize
from scanner.fetch import Fetcher, FetchError
from scanner.records import Development
from scanner.store import Store, development_uid, utcnow
from scanner.textutil import content_hash

log = logging.getLogger(__name__)

MAX_WORKERS = 4
ROBOTS_MAX_AGE_S = 24 * 3600


@dataclass
class SourceResult:
    """What one source's crawl did; `error` is the one-line reason when it (partly) failed.

    `status`: ok, not-modified, partial (some items failed), error (nothing could be read), or
    baseline (a tracked page's first version: stored to compare against, not a development).
    """

    source_id: str
    status: str = "ok"
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    same_text: int = 0
    error: str | None = None
    item_errors: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"new": self.new, "changed": self.changed, "unchanged": self.unchanged, "failed": self.failed}

    def as_json(self) -> dict[str, object]:
        return {"source_id": self.source_id, "status": self.status, **self.counts, "same_text": self.same_text,
                "error": self.error, "item_errors": list(self.item_errors)}


@dataclass
class _Work:
    """Rows gathered by a worker, written later in one transaction."""

    developments: list[Development] = field(default_factory=list)
    validators: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    page_version: tuple[str, str, str] | None = None


class Gathering:
    """What a source type's gatherer works with: the source, the fetcher, and where results go."""

    def __init__(self, crawler: "Crawler", source: Source, result: SourceResult, work: _Work):
        self.source = source
        self.result = result
        self.work = work
        self.settings: FetchSettings = crawler.config.fetch
        self._crawler = crawler

    @property
    def fetcher(self) -> Fetcher:
        return self._crawler.fetcher

    def read(self, call: Callable[[Store], object]):  # type: ignore[no-untyped-def]
        """Run a store read from a worker thread, taking turns on the one connection."""
        with self._crawler.db_lock:
            return call(self._crawler.store)

    def changed_body(self) -> bytes | None:
        """The source's own URL if it changed since last time (conditional GET), else None; queues the validators."""
        url = self.source.url
        cached = self.read(lambda s: s.sources.http_cache(url))
        response = self.fetcher.get(url, etag=cached and cached["etag"], last_modified=cached and cached["last_modified"],
                                    trusted_host=urlsplit(url).hostname)
        if response.not_modified:
            self.result.status = "not-modified"
            log.debug("source %s: %s not modified (304)", self.source.id, url)
            return None
        digest = hashlib.sha256(response.body).hexdigest()
        self.work.validators.append((url, response.etag, response.last_modified, digest))
        if cached and cached["content_hash"] == digest:
            self.result.status = "not-modified"
            log.debug("source %s: %s unchanged (same bytes)", self.source.id, url)
            return None
        return response.body

    def add_entries(self, entries: list[tuple[str, str, str | None, str]]) -> None:
        """(link, title, published, summary) of items on an index: fetch each new one's full text."""
        known = self.read(lambda s: s.developments.known_urls(canonical_url(e[0]) for e in entries))
        texts: dict[str, int] = {}
        for link, title, published, summary in entries:
            canonical = canonical_url(link)
            if canonical in known:
                self.result.unchanged += 1
                log.debug("source %s: skip %s (already stored)", self.source.id, link)
                continue
            known.add(canonical)
            try:
                response = self.fetcher.get(link, trusted_host=urlsplit(self.source.url).hostname)
                article = extract_article(response.body, response.url, response.content_type)
            except (FetchError, ExtractError) as exc:
                self.result.failed += 1
                self.result.item_errors.append(_describe(exc, self.source, link))
                log.info("source %s: item failed: %s", self.source.id, self.result.item_errors[-1])
                continue
            digest = content_hash(article.text)
            texts[digest] = texts.get(digest, 0) + 1
            self.add(Development(
                uid=development_uid(canonical), source=self.source.id, kind=self.source.kind, url=link,
                canonical_url=canonical, title=title or article.title or link, text=article.text,
                summary=summarize(summary or article.text), published=published or article.published,
                content_hash=digest, jurisdiction=self.source.jurisdiction, first_seen=utcnow()))
        self.result.same_text = max([n for n in texts.values() if n > 1], default=0)
        if self.result.failed:
            self.work.validators.clear()  # so the next run reads the index again and retries what failed

    def add(self, development: Development) -> None:
        self.work.developments.append(development)

    def track_page(self) -> None:
        """A tracked page: store its first version as the baseline; each later change is a development with a diff."""
        source = self.source
        body = self.changed_body()
        if body is None:
            return
        article = extract_article(body, source.url, "")
        digest = content_hash(article.text)
        previous = self.read(lambda s: s.developments.last_page_version(source.id))
        if previous and previous["content_hash"] == digest:
            self.result.unchanged += 1
            return
        self.work.page_version = (source.url, digest, article.text)
        if previous is None:
            self.result.status = "baseline"
            log.info("source %s: first version stored; changes are reported from the next crawl", source.id)
            return
        diff = page_diff(previous["text"], article.text)
        canonical = canonical_url(source.url)
        self.add(Development(
            uid=development_uid(f"{canonical}#{digest}"), source=source.id, kind=source.kind, url=source.url,
            canonical_url=canonical, title=f"{article.title or source.display_name}: page changed",
            text=article.text, summary=summarize(_added_text(diff) or article.text), published=utcnow()[:10],
            content_hash=digest, jurisdiction=source.jurisdiction, first_seen=utcnow(), diff=diff))


class Crawler:
    """Crawls configured sources into a store; usable from Python as well as from `scan crawl`."""

    def __init__(self, config: Config, store: Store, *, on_progress: Callable[[SourceResult], None] | None = None):
        self.config = config
        self.store = store
        self.on_progress = on_progress
        self.db_lock = threading.Lock()  # one connection: workers' reads and the commits take turns
        self.fetcher = Fetcher(config.fetch, robots_cache=_StoredRobots(store, self.db_lock))

    def close(self) -> None:
        self.fetcher.close()

    def crawl(self, source_ids: Iterable[str] | None = None) -> list[SourceResult]:
        """Crawl the chosen sources (all by default); one failing source never stops the others."""
        sources = [self.config.source(i) for i in source_ids] if source_ids else list(self.config.sources)
        self.store.sources.sync(self.config.sources)
        results: list[SourceResult] = []
        started = utcnow()
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(sources)))) as pool:
            futures = {pool.submit(self._gather, source): source for source in sources}
            for future in as_completed(futures):
                source = futures[future]
                result, work = future.result()
                self._commit(source, result, work, started)
                log.info("source %s: %s (new %d, changed %d, unchanged %d, failed %d)%s", source.id, result.status,
                         result.new, result.changed, result.unchanged, result.failed,
                         f": {result.error}" if result.error else "")
                results.append(result)
                if self.on_progress:
                    self.on_progress(result)
        order = {s.id: i for i, s in enumerate(sources)}
        return sorted(results, key=lambda r: order[r.source_id])

    def _commit(self, source: Source, result: SourceResult, work: _Work, started: str) -> None:
        with self.db_lock, self.store.atomic():
            for development in work.developments:
                if self.store.developments.add(development.row()) is None:
                    result.unchanged += 1
                elif development.diff:
                    result.changed += 1
                else:
                    result.new += 1
            if work.page_version:
                self.store.developments.add_page_version(source.id, *work.page_version)
            for url, etag, last_modified, digest in work.validators:
                self.store.sources.save_http_cache(url, etag, last_modified, digest)
            self.store.sources.record_result(source.id, started_at=started, status=result.status, error=result.error,
                                             counts=result.counts)

    def _gather(self, source: Source) -> tuple[SourceResult, _Work]:
        result = SourceResult(source.id)
        work = _Work()
        try:
            sourcetypes.REGISTRY[source.type].gather(Gathering(self, source, result, work))
        except (FetchError, ExtractError) as exc:
            result.status, result.error = "error", _describe(exc, source)
        except Exception as exc:  # a bug must not take the other sources down; it is recorded loudly
            log.exception("source %s: unexpected error", source.id)
            result.status, result.error = "error", f"internal error: {type(exc).__name__}: {exc}"
        if result.status != "error" and result.failed:
            result.status = "partial"
            more = f" (and {result.failed - 1} more)" if result.failed > 1 else ""
            result.error = f"{result.failed} item(s) failed; first: {result.item_errors[0]}{more}"
        return result, work


class _StoredRobots:
    """robots.txt kept in the store between runs; worker threads take the connection's lock."""

    def __init__(self, store: Store, lock: threading.Lock):
        self.store = store
        self.lock = lock

    def get(self, host: str) -> str | None:
        with self.lock:
            return self.store.sources.robots(host, ROBOTS_MAX_AGE_S)

    def put(self, host: str, body: str) -> None:
        with self.lock:
            self.store.sources.save_robots(host, body)


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
