"""The fetcher against a real HTTP server on loopback: validators, retries, caps and the address guard."""

import gzip
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from scanner.config import FetchSettings
from scanner.fetch import Fetcher, FetchError, is_public_address


def fetcher(**overrides) -> Fetcher:
    settings = FetchSettings(**{"per_host_delay": 0, "timeout": 5, **overrides})
    return Fetcher(settings, trusted_hosts={"localhost", "127.0.0.1"})


def test_conditional_get_returns_304(httpserver: HTTPServer) -> None:
    def handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response("<rss/>", headers={"ETag": '"v1"', "Last-Modified": "Mon, 16 Nov 2026 10:00:00 GMT"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    with fetcher() as f:
        first = f.get(httpserver.url_for("/feed"))
        second = f.get(httpserver.url_for("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert first.body == b"<rss/>" and first.etag == '"v1"'
    assert second.not_modified and second.body == b""


def test_429_honours_retry_after_then_succeeds(httpserver: HTTPServer) -> None:
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response("ok")

    httpserver.expect_request("/x").respond_with_handler(handler)
    with fetcher() as f:
        assert f.get(httpserver.url_for("/x")).body == b"ok"
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.95


def test_500_storm_gives_up_after_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down").respond_with_data("oops", status=503)
    with fetcher(retries=2) as f, pytest.raises(FetchError) as info:
        f.get(httpserver.url_for("/down"))
    assert "HTTP 503 after 2 retries" in str(info.value)
    assert len([r for r, _ in httpserver.log if r.path == "/down"]) == 3


def test_404_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    with fetcher(retries=2) as f, pytest.raises(FetchError, match="HTTP 404"):
        f.get(httpserver.url_for("/gone"))
    assert len([r for r, _ in httpserver.log if r.path == "/gone"]) == 1


def test_redirect_loop_is_capped(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_response(Response(status=302, headers={"Location": "/b"}))
    httpserver.expect_request("/b").respond_with_response(Response(status=302, headers={"Location": "/a"}))
    with fetcher(max_redirects=4) as f, pytest.raises(FetchError) as info:
        f.get(httpserver.url_for("/a"))
    assert info.value.category == "redirects"


def test_gzip_bomb_stops_at_max_bytes(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb").respond_with_response(
        Response(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"})
    )
    with fetcher(max_bytes=1_000_000) as f, pytest.raises(FetchError) as info:
        f.get(httpserver.url_for("/bomb"))
    assert info.value.category == "too-large"


def test_gzip_body_is_inflated(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/z").respond_with_response(
        Response(gzip.compress("Grüße".encode() * 1000), headers={"Content-Encoding": "gzip"})
    )
    with fetcher() as f:
        assert f.get(httpserver.url_for("/z")).body == "Grüße".encode() * 1000


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "file:///etc/passwd"])
def test_redirect_to_private_or_non_http_target_is_refused(httpserver: HTTPServer, target: str) -> None:
    httpserver.expect_request("/hop").respond_with_response(Response(status=302, headers={"Location": target}))
    with fetcher() as f, pytest.raises(FetchError) as info:
        f.get(httpserver.url_for("/hop"))
    assert info.value.category == "refused"


def test_untrusted_loopback_host_is_refused_without_a_request() -> None:
    f = Fetcher(FetchSettings(per_host_delay=0), trusted_hosts={"example.org"})
    with f, pytest.raises(FetchError, match="non-public address 127.0.0.2"):
        f.get("http://127.0.0.2:9/")


def test_robots_txt_is_obeyed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("User-agent: *\nDisallow: /private/\n")
    httpserver.expect_request("/private/page").respond_with_data("secret")
    with fetcher() as f, pytest.raises(FetchError) as info:
        f.get(httpserver.url_for("/private/page"))
    assert info.value.category == "robots"
    assert not [r for r, _ in httpserver.log if r.path == "/private/page"]


def test_per_host_delay_spaces_requests(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/p").respond_with_data("ok")
    with fetcher(per_host_delay=0.4, obey_robots=False) as f:
        start = time.monotonic()
        f.get(httpserver.url_for("/p"))
        f.get(httpserver.url_for("/p"))
    assert time.monotonic() - start >= 0.4


def test_user_agent_is_identifiable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ua").respond_with_data("ok")
    with fetcher(user_agent="scan/test (+mailto:team@example.com)") as f:
        f.get(httpserver.url_for("/ua"))
    request = [r for r, _ in httpserver.log if r.path == "/ua"][0]
    assert request.headers["User-Agent"] == "scan/test (+mailto:team@example.com)"


@pytest.mark.parametrize(
    "address, public",
    [("8.8.8.8", True), ("127.0.0.1", False), ("10.1.2.3", False), ("169.254.169.254", False), ("100.64.1.1", False),
     ("::1", False), ("fd00::1", False), ("::ffff:127.0.0.1", False), ("2606:4700::1111", True)],
)
def test_address_classification(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def _dripping_server(payload: bytes, interval: float):
    """A raw TCP server that sends `payload` one byte per `interval`: headers never complete in time."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    for byte in payload:
                        if stop.is_set():
                            break
                        conn.sendall(bytes([byte]))
                        time.sleep(interval)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, stop


def test_headers_sent_a_byte_at_a_time_stop_at_the_deadline() -> None:
    listener, stop = _dripping_server(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000, 0.05)
    port = listener.getsockname()[1]
    try:
        with fetcher(timeout=1, retries=0, obey_robots=False) as f, pytest.raises(FetchError) as info:
            start = time.monotonic()
            f.get(f"http://127.0.0.1:{port}/")
        assert info.value.category == "slow"
        assert time.monotonic() - start < 6
    finally:
        stop.set()
        listener.close()


def test_connect_time_check_catches_a_dns_answer_that_changed(httpserver: HTTPServer, monkeypatch) -> None:
    """DNS rebinding: the guard's look-up says public, the connection lands on loopback."""
    import socket

    httpserver.expect_request("/x").respond_with_data("internal")
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", httpserver.port))]])

    def first_public_then_real(host, *args, **kwargs):
        if host == "rebind.test":
            try:
                return next(answers)
            except StopIteration:
                return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", first_public_then_real)
    f = Fetcher(FetchSettings(per_host_delay=0, obey_robots=False, retries=0), trusted_hosts=set())
    with f, pytest.raises(FetchError) as info:
        f.get(f"http://rebind.test:{httpserver.port}/x")
    assert info.value.category == "refused"
    assert "non-public address 127.0.0.1" in str(info.value)
    assert not [r for r, _ in httpserver.log if r.path == "/x"]
