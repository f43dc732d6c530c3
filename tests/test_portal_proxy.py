"""The portal under the real waitress with the settings `mimsdir sspr serve` uses
(mimsdir/portal/serving.py): whose proxy headers are believed, and bodies refused by waitress
itself. nginx in front: tests/test_proxy_nginx.py."""

from __future__ import annotations

import socket
import time

import pytest

from mimsdir.portal import create_app, serving
from tests.browser import serve_wsgi
from tests.portal_helpers import portal_config
from tests.web_client import WebClient

LIMIT = "3 per minute"


@pytest.fixture(scope="module")
def proxied(slapd):  # type: ignore[no-untyped-def]
    """The portal trusting one proxy at 127.0.0.1, three posts a minute per client."""
    cfg = portal_config(slapd, trusted_proxies=1, trusted_proxy_address="127.0.0.1",
                        address_limit=LIMIT)
    with serve_wsgi(create_app(cfg), **serving.adjustments(cfg.portal)) as url:
        yield url


def burn(client: WebClient, headers: dict[str, str] | None = None) -> list[int]:
    """Four wrong sign-ins: the limit is three."""
    return [client.login("nobody@students.test.sg", "wrong", headers).status for _ in range(4)]


def test_the_trusted_proxy_names_the_client(proxied) -> None:  # type: ignore[no-untyped-def]
    # 127.0.0.1 is the proxy: each X-Forwarded-For it sends is a client of its own.
    via_proxy = WebClient(proxied, source="127.0.0.1")
    assert burn(via_proxy, {"X-Forwarded-For": "10.20.0.1"}) == [200, 200, 200, 429]
    other = WebClient(proxied, source="127.0.0.1")
    assert other.login("nobody@students.test.sg", "wrong",
                       {"X-Forwarded-For": "10.20.0.2"}).status == 200


def test_a_direct_client_cannot_choose_its_address(proxied) -> None:  # type: ignore[no-untyped-def]
    # 127.0.0.5 is not the proxy: its X-Forwarded-For is deleted, every post is its own.
    direct = WebClient(proxied, source="127.0.0.5")
    codes = [direct.login("nobody@students.test.sg", "wrong",
                          {"X-Forwarded-For": f"10.30.0.{i}"}).status for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert direct.login("nobody@students.test.sg", "wrong").status == 429


def test_the_trusted_proxy_says_https(proxied) -> None:  # type: ignore[no-untyped-def]
    """X-Forwarded-Proto from the proxy makes the portal's own origin https://, which the
    CSRF origin check compares with the browser's; from anyone else it is dropped."""
    https = proxied.replace("http://", "https://")
    for source, xff, origin, status in (("127.0.0.1", "10.50.0.1", https, 200),
                                        ("127.0.0.1", "10.50.0.2", proxied, 400),
                                        ("127.0.0.8", "10.50.0.3", https, 400),
                                        ("127.0.0.8", "10.50.0.4", proxied, 200)):
        client = WebClient(proxied, source=source)
        headers = {"X-Forwarded-For": xff, "X-Forwarded-Proto": "https"}
        client.get("/login", headers)
        reply = client.post("/login", {"login_id": "nobody@students.test.sg",
                                       "password": "wrong"}, headers, origin=origin)
        assert reply.status == status, (source, origin)


def test_without_trusted_proxies_every_forwarded_header_is_dropped(slapd) -> None:  # type: ignore[no-untyped-def]
    cfg = portal_config(slapd, address_limit=LIMIT)
    with serve_wsgi(create_app(cfg), **serving.adjustments(cfg.portal)) as url:
        client = WebClient(url, source="127.0.0.1")  # the default proxy address
        codes = [client.login("nobody@students.test.sg", "wrong",
                              {"X-Forwarded-For": f"10.40.0.{i}"}).status for i in range(4)]
    assert codes == [200, 200, 200, 429]


def _raw(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_a_large_body_is_refused_before_it_is_sent(proxied) -> None:  # type: ignore[no-untyped-def]
    """10 MiB announced: waitress answers 413 from the header alone. Nothing of the body was
    sent, so nothing can have been read or spooled to a temp file (waitress's default limit
    is 1 GiB: it would wait for the body and this read would time out)."""
    with socket.create_connection(_raw(proxied), timeout=5) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /login HTTP/1.1\r\nHost: portal\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 10485760\r\n\r\n")
        head = s.recv(4096)
        took = time.monotonic() - t0
    assert head.startswith(b"HTTP/1.1 413"), head[:100]
    assert took < 2


def test_a_large_chunked_body_is_cut_off(proxied) -> None:  # type: ignore[no-untyped-def]
    """Without a Content-Length waitress counts as it reads and stops at the limit: the
    connection is closed long before 10 MiB has gone (unlimited, all of it would be read)."""
    chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
    sent = 0
    with socket.create_connection(_raw(proxied), timeout=5) as s:
        s.sendall(b"POST /login HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        try:
            while sent < 10 * 1024 * 1024:
                s.sendall(chunk)
                sent += 65536
        except OSError:  # reset or broken pipe: the server stopped reading and closed
            pass
    assert sent < 10 * 1024 * 1024


def test_a_body_at_the_limit_reaches_the_portal(proxied) -> None:  # type: ignore[no-untyped-def]
    """waitress's limit and Flask's are the same number: a post of exactly MAX_BODY_BYTES is
    Flask's to judge (here: no CSRF token, 400), one byte more is waitress's 413."""
    client = WebClient(proxied, source="127.0.0.7")
    for size, status in ((serving.MAX_BODY_BYTES, 400), (serving.MAX_BODY_BYTES + 1, 413)):
        body = "x=" + "a" * (size - 2)
        assert client.request("POST", "/login", body=body).status == status


@pytest.mark.parametrize(("portal", "message"), [
    ("{trusted_proxy_address: '*'}", "trusted_proxy_address: one IP address"),
    ("{trusted_proxy_address: nginx.local}", "trusted_proxy_address: one IP address"),
    ("{trusted_proxies: -1}", "trusted_proxies: cannot be negative"),
    ("{metrics_listen: 9108}", "metrics_listen: expected host:port"),
    ("{listen: '127.0.0.1:8080', metrics_listen: '127.0.0.1:8080'}",
     "metrics_listen: must not be the public listen address"),
])
def test_proxy_and_metrics_settings_are_checked(tmp_path, portal, message) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.config import load_config
    from mimsdir.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(f"portal: {portal}\n")
    with pytest.raises(ConfigError, match=f"portal.{message}"):
        load_config(path)
    path.write_text("portal: {metrics_listen: null, trusted_proxies: 1}\n")
    p = load_config(path).portal
    assert p.metrics_listen is None and p.trusted_proxy_address == "127.0.0.1"
    assert serving.adjustments(p)["trusted_proxy"] == "127.0.0.1"


def test_metrics_only_on_their_own_listener(slapd) -> None:  # type: ignore[no-untyped-def]
    """The public app has no /metrics (its directory timings count one extra look-up per
    existing login ID); the metrics listener's app has nothing else."""
    from werkzeug.test import Client

    app = create_app(portal_config(slapd))
    public = app.test_client()
    public.get("/login")
    assert public.get("/metrics").status_code == 404
    metrics = Client(serving.metrics_wsgi(app))
    r = metrics.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = r.get_data(as_text=True)
    assert 'mims_portal_requests_total{endpoint="auth.login",method="GET",status="200"} 1.0' \
        in text and "mims_portal_directory_seconds_bucket" in text
    assert metrics.get("/login").status_code == 404
    assert metrics.get("/healthz").status_code == 404
    assert metrics.post("/metrics").status_code == 404

