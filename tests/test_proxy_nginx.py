"""The real arrangement of docs/deploy.md: Debian's nginx terminating TLS (a test CA made
here) in front of the real waitress with `mimsdir sspr serve`'s own settings
(mimsdir/portal/serving.py), on loopback, with the project's nginx site template
(scripts/nginx/mims-portal.conf.in) rendered as the docs render it.

- chromium signs in, changes a reset password and resets a forgotten one through it (every
  form post over HTTPS passes the CSRF origin check: the portal sees https and the browser's
  Origin);
- clients behind the proxy are counted apart (source addresses 127.0.0.2, 127.0.0.3, ...);
- a cross-site post is refused; a large body is refused by nginx at once; /metrics is not
  there; plain http redirects;
- 120 slow clients do not shut a normal client out (they do, without nginx).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Request, expect

from mimsdir.config import Config
from mimsdir.portal import create_app, serving
from tests.browser import CHROMIUM, CHROMIUM_ARGS, new_page, serve_wsgi
from tests.nginx import Proxy, TlsFiles, make_ca, require_nginx, run_nginx
from tests.portal_helpers import give_answers, portal_config
from tests.test_portal_browser import answer_questions, device_bind, sign_in
from tests.web_client import WebClient

pytestmark = pytest.mark.nginx
NOBODY = {"login_id": "nobody@students.test.sg", "password": "wrong"}
SLOW_CLIENTS = 120


@dataclass(frozen=True)
class Proxied:
    proxy: Proxy
    upstream: str  # the waitress behind it, http://127.0.0.1:PORT

    @property
    def https(self) -> str:
        return self.proxy.https

    def client(self, source: str) -> WebClient:
        return WebClient(self.https, source=source, ca=str(self.proxy.ca.ca_pem))


@contextlib.contextmanager
def proxied_portal(slapd: Config, ca: TlsFiles, directory: Path,
                   **portal: object) -> Iterator[Proxied]:
    """The portal as docs/deploy.md configures it behind nginx, and nginx in front."""
    cfg = portal_config(slapd, secure_cookies=True, trusted_proxies=1,
                        trusted_proxy_address="127.0.0.1", **portal)
    with serve_wsgi(create_app(cfg), **serving.adjustments(cfg.portal)) as upstream, \
            run_nginx(directory, ca, upstream.removeprefix("http://")) as proxy:
        yield Proxied(proxy, upstream)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    require_nginx()
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def site(slapd, ca, tmp_path_factory):  # type: ignore[no-untyped-def]
    with proxied_portal(slapd, ca, tmp_path_factory.mktemp("nginx")) as proxied:
        yield proxied


@pytest.fixture(scope="module")
def tls_browser(browser: Browser, ca: TlsFiles) -> Iterator[Browser]:
    """chromium trusting the test CA's key, and nothing else it would not trust anyway:
    --ignore-certificate-errors-spki-list accepts a chain holding that public key only (a
    certificate from any other key still fails)."""
    trusting = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={ca.spki_sha256}"])
    try:
        yield trusting
    finally:
        trusting.close()


# --- chromium through nginx -----------------------------------------------------------------


@pytest.mark.browser
def test_sign_in_over_https(tls_browser, site, make) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    with new_page(tls_browser) as page:
        posts: list[Request] = []
        page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
        first = page.goto(site.https + "/login")
        assert first is not None and first.ok
        assert first.headers["strict-transport-security"].startswith("max-age=")
        assert first.headers["referrer-policy"] == "same-origin"
        sign_in(page, site.https, s.mail, s.password)
        expect(page.get_by_role("heading", name=re.compile("Hello"))).to_be_visible()
        assert page.url == site.https + "/home"
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "mims_session"]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        # The browser's own word on where the post came from, which the portal checked.
        assert posts and posts[-1].all_headers()["origin"] == site.https


@pytest.mark.browser
def test_forced_change_over_https(tls_browser, site, slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    root.set_password(s.dn, "Mango4821")  # an ICT reset: pwdReset TRUE
    with new_page(tls_browser) as page:
        sign_in(page, site.https, s.mail, "Mango4821")
        expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
        page.get_by_label("The password on your slip").fill("Mango4821")
        page.get_by_label("New password", exact=True).fill("Rainbow-Fish-7")
        page.get_by_label("New password again").fill("Rainbow-Fish-7")
        page.get_by_role("button", name="Save my new password").click()
        expect(page.get_by_role("heading", name=re.compile("Hello"))).to_be_visible()
    out = device_bind(slapd, s.mail, "Rainbow-Fish-7")
    assert out.ok and not out.must_change


@pytest.mark.browser
def test_forgot_password_over_https(tls_browser, site, slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5", password="Old-forgotten-1")
    give_answers(root, s.dn)
    with new_page(tls_browser) as page:
        page.goto(site.https + "/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Login ID (your school email)").fill(s.mail)
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name="Answer your questions")).to_be_visible()
        answer_questions(page)
        expect(page.get_by_role("heading", name="Make a new password")).to_be_visible()
        page.get_by_label("New password", exact=True).fill("Sunny-Day-42")
        page.get_by_label("New password again").fill("Sunny-Day-42")
        page.get_by_role("button", name="Save my new password").click()
        expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    assert device_bind(slapd, s.mail, "Sunny-Day-42").ok


# --- clients behind the proxy ---------------------------------------------------------------


def test_clients_behind_the_proxy_are_counted_apart(slapd, ca, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Before: waitress deleted X-Forwarded-For and the whole school shared nginx's address,
    so one client's posts blocked sign-in for everyone."""
    with proxied_portal(slapd, ca, tmp_path, address_limit="3 per minute") as site:
        first, second = site.client("127.0.0.2"), site.client("127.0.0.3")
        codes = [first.login(**NOBODY).status for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert "Too many tries" in first.login(**NOBODY).body
        reply = second.login(**NOBODY)
        assert reply.status == 200 and "That did not work" in reply.body
        # Its own X-Forwarded-For line buys the first client nothing: nginx appends the
        # address it sees, and the portal takes the last entry.
        forged = first.login(**NOBODY, headers={"X-Forwarded-For": "10.1.2.3"})
        assert forged.status == 429
        # Straight at waitress (not the trusted proxy's address), the header is deleted:
        # the client is its own address, whatever it claims.
        direct = WebClient(site.upstream, source="127.0.0.4")
        codes = [direct.login(**NOBODY, headers={"X-Forwarded-For": f"10.9.9.{i}"}).status
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]


def test_a_cross_site_post_is_refused_over_https(site) -> None:  # type: ignore[no-untyped-def]
    """Each post has the page's token and session cookie: only the origin check refuses."""
    client = site.client("127.0.0.5")
    assert "Secure" in client.get("/login").headers["Set-Cookie"]
    for origin, referer in (("https://evil.example", None), ("null", None),
                            (None, "https://evil.example/login"), (None, None),
                            (site.https.replace("https:", "http:"), None)):
        reply = client.post("/login", NOBODY, {"Referer": referer} if referer else None,
                            origin=origin)
        assert reply.status == 400 and "This page has expired" in reply.body, (origin, referer)
    reply = client.post("/login", NOBODY)  # Origin: the portal's own
    assert reply.status == 200 and "That did not work" in reply.body


@pytest.mark.parametrize("size", [100 * 1024, 10 * 1024 * 1024])
def test_a_large_body_is_refused_by_nginx_at_once(site, size) -> None:  # type: ignore[no-untyped-def]
    """From the Content-Length alone, before any of the body is sent. 100 KiB is under
    nginx's default limit (1 MiB): only the site's client_max_body_size refuses it here."""
    ctx = ssl.create_default_context(cafile=str(site.proxy.ca.ca_pem))
    with socket.create_connection(("127.0.0.1", site.proxy.port), timeout=3) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        t0 = time.monotonic()
        s.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 413"), head[:80]
        assert time.monotonic() - t0 < 2


def test_metrics_are_not_behind_the_proxy_and_http_redirects(site) -> None:  # type: ignore[no-untyped-def]
    client = site.client("127.0.0.6")
    assert client.get("/healthz").status == 200
    assert client.get("/metrics").status == 404
    plain = WebClient(site.proxy.http)
    reply = plain.get("/login")
    assert reply.status == 301 and reply.headers["Location"] == "https://127.0.0.1/login"


# --- slow clients ---------------------------------------------------------------------------


def _slow_clients(connect: object, count: int) -> list[socket.socket]:
    """``count`` connections that each sent part of a request line and then wait, as a
    slowloris client does between two bytes."""
    held = []
    for _ in range(count):
        s = connect()  # type: ignore[operator]
        s.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(s)
    return held


def _answers_within(client: WebClient, seconds: float) -> bool:
    client.timeout = seconds
    try:
        return client.get("/healthz").status == 200
    except OSError:  # socket.timeout included
        return False


def test_slow_clients_do_not_shut_out_the_portal_behind_nginx(site) -> None:  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(cafile=str(site.proxy.ca.ca_pem))

    def connect() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", site.proxy.port), timeout=5)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    held = _slow_clients(connect, SLOW_CLIENTS)
    try:
        t0 = time.monotonic()
        assert _answers_within(site.client("127.0.0.7"), 3)
        assert time.monotonic() - t0 < 1
    finally:
        for s in held:
            s.close()


def test_slow_clients_do_shut_out_a_bare_waitress(site) -> None:  # type: ignore[no-untyped-def]
    """Why nginx is in front: the same slow clients straight at waitress (its connection limit
    is 100) leave a normal client waiting, until they go."""
    host, port = site.upstream.removeprefix("http://").split(":")
    held = _slow_clients(lambda: socket.create_connection((host, int(port)), timeout=5),
                         SLOW_CLIENTS)
    try:
        assert not _answers_within(WebClient(site.upstream, source="127.0.0.8"), 1)
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while not _answers_within(WebClient(site.upstream, source="127.0.0.8"), 2):
        assert time.monotonic() < deadline, "waitress did not recover after the slow clients"
