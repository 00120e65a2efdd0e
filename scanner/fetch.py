"""Polite, bounded HTTP: everything scan downloads goes through `Fetcher.get`.

It identifies itself, waits between requests to one host, obeys robots.txt, makes conditional
requests, retries what is worth retrying (honouring Retry-After), checks every redirect hop
against the private-address guard, and stops reading once `max_bytes` of *decompressed* body
have arrived. Decompression is done here with `zlib.decompressobj(...).decompress(data,
max_length)` rather than by httpx, because httpx inflates a whole network chunk at once and a
gzip bomb (1000:1) would balloon memory before any cap could act.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Protocol
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from protego import Protego

from scanner.config import FetchSettings
from scanner.errors import ScanError

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After ends the attempt: sleeping it out would stall a cron run
BODY_TIME_FACTOR = 3


class FetchError(ScanError):
    """A fetch that failed, with a short category (timeout, http, too-large, refused, robots, …)."""

    def __init__(
        self, url: str, category: str, reason: str, status: int | None = None, retry_after: float | None = None
    ):
        self.url = url
        self.category = category
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{url}: {reason}")

    @property
    def retryable(self) -> bool:
        """Connect errors, timeouts, 408, 429 and 5xx may pass; anything else will fail again."""
        return self.category in ("connect", "timeout") or (self.category == "http" and self.status in RETRY_STATUSES)


@dataclass
class Response:
    url: str
    status: int
    content_type: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class _HostState:
    last_request: float = 0.0
    robots: Protego | None = None
    robots_checked: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, CGNAT, unique-local, multicast, reserved and mapped forms."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            return is_public_address(str(mapped))
    if ip in ipaddress.ip_network("100.64.0.0/10"):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


_REFUSED = "refused: "
_DEADLINE = "whole-request deadline passed"
_hop = threading.local()


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads and writes stop at the hop's deadline.

    httpx's timeouts are per socket operation, so a server that sends its headers a byte at a
    time never trips them; the deadline bounds the whole exchange, headers included.
    """

    def __init__(self, inner: httpcore.NetworkStream):
        self.inner = inner

    def _left(self, timeout: float | None) -> float:
        deadline = getattr(_hop, "deadline", None)
        if deadline is None:
            return timeout if timeout is not None else float("inf")
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout(_DEADLINE)
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self.inner.read(max_bytes, self._left(timeout))
        except httpcore.ReadTimeout:
            self._left(None)  # raises the deadline's own error when that is what ran out
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self.inner.write(buffer, self._left(timeout))
        except httpcore.WriteTimeout:
            self._left(None)
            raise

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:  # type: ignore[no-untyped-def]
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, self._left(timeout)))

    def get_extra_info(self, info: str):  # type: ignore[no-untyped-def]
        return self.inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Checks the address actually connected to, closing the gap between our DNS look-up and
    httpx's own (DNS rebinding), and wraps every stream in the hop's deadline."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        if getattr(_hop, "public_only", False):
            peer = stream.get_extra_info("server_addr")
            if peer and not is_public_address(peer[0]):
                stream.close()
                raise httpcore.ConnectError(f"{_REFUSED}{host} connected to non-public address {peer[0]}")
        return _DeadlineStream(stream)


def _transport() -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(retries=0)
    # httpx has no public hook for httpcore's network backend; the pool reads this attribute for
    # every new connection. tests/test_hostile.py's slow-header case fails if this stops working.
    transport._pool._network_backend = _GuardedBackend()
    return transport


class RobotsCache(Protocol):
    """Where robots.txt bodies outlive one run ('' = the host has none)."""

    def get(self, host: str) -> str | None: ...

    def put(self, host: str, body: str) -> None: ...


class Fetcher:
    """One client for a crawl.

    The private-address guard lets through a host that is trusted for the request at hand: the
    `trusted_host` passed to `get` (the crawler passes the source's own host, so a feed may link
    to its own intranet server but not to another source's), plus any `trusted_hosts` given here
    for every request (a single-site client, tests).
    """

    def __init__(
        self, settings: FetchSettings, trusted_hosts: set[str] | None = None, robots_cache: RobotsCache | None = None
    ):
        self.settings = settings
        self.robots_cache = robots_cache
        self.trusted_hosts = {h.lower() for h in (trusted_hosts or set())}
        self._hosts: dict[str, _HostState] = {}
        self._hosts_lock = threading.Lock()
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            trust_env=False,
            transport=_transport(),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, trusted_host: str | None = None
    ) -> Response:
        """GET with validators; a 304 comes back as a Response with `not_modified` and no body.

        `trusted_host` may be private (it is the source's own configured host); every other host on
        the way, redirects included, must resolve to public addresses.
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for attempt in range(self.settings.retries + 1):
            try:
                log.debug("GET %s%s", url, " (conditional)" if headers else "")
                response = self._follow(url, headers, (trusted_host or "").lower())
                log.debug("GET %s -> %s, %d bytes", url, response.status, len(response.body))
                return response
            except FetchError as exc:
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER_S:
                    raise FetchError(
                        exc.url, exc.category,
                        f"{exc.reason}; Retry-After asks for {exc.retry_after:.0f}s, more than the "
                        f"{MAX_RETRY_AFTER_S:.0f}s one run waits; will try again next run",
                        exc.status,
                    ) from None
                if not exc.retryable or attempt == self.settings.retries:
                    if attempt:
                        raise FetchError(exc.url, exc.category, f"{exc.reason} after {attempt} retries", exc.status) from None
                    raise
                pause = exc.retry_after if exc.retry_after is not None else min(0.5 * 2.0**attempt, 30.0)
                log.debug("retry %d of %s in %.1fs: %s", attempt + 1, url, pause, exc.reason)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _follow(self, url: str, headers: dict[str, str], trusted_host: str) -> Response:
        current = url
        for _ in range(self.settings.max_redirects + 1):
            public_only = self._check_allowed(current, trusted_host)
            response = self._request(current, headers, public_only)
            if response is None:
                log.debug("skip %s: disallowed by robots.txt", current)
                raise FetchError(current, "robots", "disallowed by robots.txt")
            if isinstance(response, str):
                log.debug("redirect %s -> %s", current, response)
                current = response
                continue
            return response
        raise FetchError(url, "redirects", f"more than {self.settings.max_redirects} redirects")

    def _check_allowed(self, url: str, trusted_host: str) -> bool:
        """Refuse what may not be fetched; True when the hop must connect to public addresses only."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchError(url, "refused", f"scheme {parts.scheme or 'none'!r} is not http(s)")
        host = (parts.hostname or "").lower()
        if not host:
            raise FetchError(url, "refused", "no host in URL")
        if self.settings.allow_private or host == trusted_host or host in self.trusted_hosts:
            return False
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(url, "connect", f"cannot resolve {host}: {exc.strerror}") from None
        for info in infos:
            address = info[4][0]
            if not is_public_address(address):
                raise FetchError(
                    url, "refused",
                    f"{host} resolves to non-public address {address} (set fetch.allow_private: true to allow)",
                )
        return True

    def _host(self, host: str) -> _HostState:
        with self._hosts_lock:
            return self._hosts.setdefault(host, _HostState())

    def _wait_turn(self, state: _HostState) -> None:
        with state.lock:
            wait = state.last_request + self.settings.per_host_delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            state.last_request = time.monotonic()

    def _robots_allows(self, url: str, state: _HostState, public_only: bool) -> bool:
        if not self.settings.obey_robots:
            return True
        if not state.robots_checked:
            state.robots_checked = True
            body = self._robots_body(url, state, public_only)
            state.robots = Protego.parse(body) if body else None
        return state.robots is None or state.robots.can_fetch(url, self.settings.user_agent)

    def _robots_body(self, url: str, state: _HostState, public_only: bool) -> str:
        """robots.txt from the cache when fresh, else fetched; a missing one (4xx) means allow all.

        Cached (a day, as RFC 9309 allows) so a re-crawl asks each host for nothing but its
        sources; a server error is not cached, and allows this run.
        """
        host = (urlsplit(url).hostname or "").lower()
        cached = self.robots_cache.get(host) if self.robots_cache else None
        if cached is not None:
            return cached
        try:
            self._wait_turn(state)
            result = self._read(urljoin(url, "/robots.txt"), {}, 512 * 1024, public_only)
        except FetchError as exc:
            log.debug("robots.txt unavailable for %s: %s", url, exc)
            if exc.status is None or exc.status >= 500:
                return ""
            result = None
        body = result.body.decode("utf-8", "replace") if isinstance(result, Response) and result.status == 200 else ""
        if self.robots_cache:
            self.robots_cache.put(host, body)
        return body

    def _request(self, url: str, headers: dict[str, str], public_only: bool) -> Response | str | None:
        """One hop: a Response, the next URL on a redirect, or None when robots.txt says no."""
        host = (urlsplit(url).hostname or "").lower()
        state = self._host(host)
        if not self._robots_allows(url, state, public_only):
            return None
        self._wait_turn(state)
        return self._read(url, headers, self.settings.max_bytes, public_only)

    def _read(self, url: str, headers: dict[str, str], limit: int, public_only: bool) -> Response | str:
        budget = BODY_TIME_FACTOR * self.settings.timeout
        _hop.deadline, _hop.public_only = time.monotonic() + budget, public_only
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return Response(url, 304, "", b"", response.headers.get("etag"), response.headers.get("last-modified"))
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(url, "http", f"HTTP {response.status_code} redirect without Location", response.status_code)
                    return urljoin(url, location)
                if response.status_code >= 400:
                    raise FetchError(
                        url, "http", f"HTTP {response.status_code}", response.status_code,
                        _retry_after(response.headers.get("retry-after")),
                    )
                body = _read_body(response, url, limit, budget)
                return Response(
                    url=str(response.url), status=response.status_code,
                    content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
                    body=body, etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
                )
        except httpx.TimeoutException as exc:
            if str(exc) == _DEADLINE:
                raise FetchError(url, "slow", f"response still arriving after {budget:g}s (slow drip)") from None
            raise FetchError(url, "timeout", f"timed out after {self.settings.timeout:g}s") from None
        except httpx.TransportError as exc:
            if str(exc).startswith(_REFUSED):
                raise FetchError(url, "refused", str(exc).removeprefix(_REFUSED)) from None
            raise FetchError(url, "connect", f"connection failed: {exc or type(exc).__name__}") from None
        finally:
            _hop.deadline = None


def _read_body(response: httpx.Response, url: str, limit: int, max_seconds: float) -> bytes:
    """Stream and inflate by hand, stopping at `limit` decompressed bytes or after `max_seconds`.

    httpx's timeout is per read, so a server dripping one byte a second would never trip it;
    the whole-body deadline does. `iter_raw()` is called without a chunk size on purpose: with
    one, httpx buffers until that many bytes arrived, and a trickle would never reach the check.
    """
    encoding = response.headers.get("content-encoding", "").lower().strip()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater: _Inflater | None = _Inflater(gzip=encoding != "deflate", url=url)
    elif encoding in ("", "identity"):
        inflater = None
    else:
        raise FetchError(url, "http", f"unsupported Content-Encoding {encoding!r}")
    declared = response.headers.get("content-length")
    if inflater is None and declared and declared.isdigit() and int(declared) > limit:
        raise FetchError(url, "too-large", f"body of {int(declared)} bytes is over max_bytes ({limit})")
    parts: list[bytes] = []
    size = 0
    started = time.monotonic()
    for raw in response.iter_raw():
        pieces = [raw] if inflater is None else inflater.feed(raw, limit - size + 1)
        for piece in pieces:
            size += len(piece)
            if size > limit:
                raise FetchError(url, "too-large", f"body over max_bytes ({limit} bytes after decompression)")
            parts.append(piece)
        if time.monotonic() - started > max_seconds:
            raise FetchError(url, "slow", f"body still arriving after {max_seconds:g}s (slow drip)")
    return b"".join(parts)


class _Inflater:
    """Inflates a gzip or deflate body in bounded steps, so a bomb never expands past the cap.

    A gzip body may be several members back to back (RFC 1952; some servers concatenate), and
    zlib stops at the end of the first: each further member gets a fresh decompressor, else the
    rest of the page would be silently dropped. "deflate" is meant to be zlib-wrapped, but many
    servers send raw deflate; the first bytes tell which.
    """

    def __init__(self, *, gzip: bool, url: str):
        self.gzip = gzip
        self.url = url
        self.zlib: "zlib._Decompress | None" = None

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """Inflate `data`, producing at most about `room` bytes (one more tells the caller it is over)."""
        out: list[bytes] = []
        try:
            while data and room > 0:
                if self.zlib is None:
                    if self.gzip and not data.strip(b"\0"):
                        break  # zero padding after the last member, which gzip tolerates
                    self.zlib = zlib.decompressobj(self._wbits(data))
                piece = self.zlib.decompress(data, room)
                out.append(piece)
                room -= len(piece)
                data = self.zlib.unconsumed_tail
                if self.zlib.eof:
                    data = self.zlib.unused_data if self.gzip else b""
                    self.zlib = None
        except zlib.error as exc:
            raise FetchError(self.url, "http", f"corrupt compressed body: {exc}") from None
        return out

    def _wbits(self, head: bytes) -> int:
        if self.gzip:
            return 31
        zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return 15 if zlib_header else -15


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta or HTTP date); `get` gives up rather than wait past MAX_RETRY_AFTER_S."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
