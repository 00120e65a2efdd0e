"""What keeps the web workspace safe to open: who may see it, who may change it, and what a page may load.

- Token: with `--token`, every request needs it, either `Authorization: Bearer T` (scripts) or the
  session cookie set after visiting any page once with `?token=T` (browsers). The cookie holds an
  HMAC of the token, not the token, and is HttpOnly and SameSite=Strict.
- CSRF: a signed double-submit token. The `scan_csrf` cookie holds a random nonce; each form
  carries HMAC(server key, nonce) in a hidden field. A POST without both, or with a field that
  does not sign the cookie's nonce, is refused with 403. A cross-site page can neither read the
  cookie nor compute the signature.
- Headers on every response: a Content-Security-Policy that allows only this server's own CSS and
  script (no inline code or styles, no frames, forms only to this origin), `nosniff`, and a
  same-origin referrer policy.
- Limits: request bodies over `MAX_BODY` bytes get 413; each client may POST `POST_RATE` times per
  `POST_WINDOW` seconds, beyond that 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
MAX_BODY = 64 * 1024
"""Largest request body accepted: a review note or a subscription is a few hundred bytes."""
POST_RATE = 30
POST_WINDOW = 60.0
"""Each client may POST this many times per window (seconds): far above a person, far below a script."""
CSRF_COOKIE = "scan_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "scan_session"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: the only addresses served without a token."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Csrf:
    """Signed double-submit tokens: the nonce in a cookie, its HMAC in the form."""

    def __init__(self, key: bytes | None = None):
        self.key = key or secrets.token_bytes(32)

    def sign(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()

    def nonce(self, request: Request) -> tuple[str, bool]:
        """The request's nonce and whether it is new (then the response must set the cookie)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if 16 <= len(current) <= 64 and current.isalnum():
            return current, False
        return secrets.token_hex(16), True

    def valid(self, request: Request, field: str | None) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE)
        return bool(nonce and field) and hmac.compare_digest(self.sign(nonce), field or "")


class RateLimit:
    """A sliding window of POST times per client address."""

    def __init__(self, rate: int = POST_RATE, window: float = POST_WINDOW):
        self.rate, self.window = rate, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """0 when the client may go ahead (and the hit is counted), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.rate:
                return max(1, int(hits[0] + self.window - now) + 1)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                for key in [k for k, v in self._hits.items() if not v]:
                    del self._hits[key]
            return 0


def session_value(token: str) -> str:
    """What the session cookie holds: a digest of the token (the token itself never sits in a cookie)."""
    return hmac.new(token.encode(), b"scan-web-session", hashlib.sha256).hexdigest()


def authorised(request: Request, token: str | None) -> bool:
    if not token:
        return True
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def without_token(request: Request) -> str:
    """The request's path and query with `token` removed (where a login redirects to)."""
    query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
    return request.url.path + ("?" + urlencode(query) if query else "")


class SecurityHeaders:
    """Adds the security headers to every response, and refuses bodies declared larger than `MAX_BODY`."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _plain(send_with_headers, 413, f"request body over {self.max_body} bytes")
            return
        await self.app(scope, receive, send_with_headers)


async def _plain(send: Any, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


async def read_form(request: Request, limit: int = MAX_BODY) -> dict[str, list[str]]:
    """An urlencoded form body, read up to `limit` bytes (a chunked body that goes past it raises BodyTooLarge)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    form: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(key, []).append(value)
    return form
