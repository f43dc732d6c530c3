"""Self-test of tests/browser.py: a tiny Flask app sending the portal's strict CSP, in chromium."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape

import pytest
from flask import Flask, Response, request
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser import (
    DOCS_IMG,
    TABLET_PORTRAIT,
    assert_accessible,
    axe_check,
    axe_version,
    console_errors,
    new_page,
    screenshot,
    screenshot_path,
    serve_wsgi,
)

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"

CSS = """
body { font-family: sans-serif; color: #1a1a1a; background: #fff; margin: 2rem; }
label { display: block; margin-bottom: .25rem; }
.faint { color: #c8c8c8; }
"""


def _doc(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<link rel="stylesheet" href="/site.css"></head><body>{body}</body></html>')


GOOD = _doc("Say hello - harness", """
<main>
  <h1>Say hello</h1>
  <form method="post" action="/greet">
    <label for="name">Your name</label>
    <input id="name" name="name" autocomplete="given-name" required>
    <button type="submit">Say hello</button>
  </form>
</main>""")

BROKEN = _doc("Broken - harness", """
<main>
  <h1>Broken</h1>
  <script>document.title = "inline script ran";</script>
  <p class="faint">This grey text is far too faint to read.</p>
  <input id="nameless" name="nameless">
</main>""")


@dataclass
class Site:
    url: str
    posts: list[str] = field(default_factory=list)


def make_app(posts: list[str]) -> Flask:
    app = Flask(__name__)

    @app.after_request
    def add_csp(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        return response

    @app.get("/")
    def good() -> str:
        return GOOD

    @app.get("/broken")
    def broken() -> str:
        return BROKEN

    @app.get("/site.css")
    def css() -> Response:
        return Response(CSS, mimetype="text/css")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @app.post("/greet")
    def greet() -> str:
        name = request.form["name"]
        posts.append(name)
        return _doc("Hello - harness", f"<main><h1>Hello, {escape(name)}</h1></main>")

    return app


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    posts: list[str] = []
    with serve_wsgi(make_app(posts)) as url:
        yield Site(url, posts)


@pytest.mark.browser
def test_accessible_page_passes_under_strict_csp(page: Page, site: Site) -> None:
    response = page.goto(site.url + "/")
    assert response is not None
    assert response.headers["content-security-policy"] == CSP
    assert axe_version(page).startswith("4.")
    assert assert_accessible(page, "good page") == []  # not even a minor violation
    assert console_errors(page) == []


@pytest.mark.browser
def test_broken_page_is_reported(page: Page, site: Site) -> None:
    page.goto(site.url + "/broken")
    # The CSP is really in force (the inline script was blocked), and axe ran regardless.
    assert page.title() == "Broken - harness"
    assert any("Content Security Policy" in e for e in console_errors(page))

    found = {v["id"]: v for v in axe_check(page)}
    assert found["label"]["impact"] == "critical"
    assert found["label"]["nodes"][0]["target"] == ["#nameless"]
    assert found["color-contrast"]["impact"] == "serious"
    assert found["color-contrast"]["nodes"][0]["target"] == ["p"]
    assert axe_check(page, "h1") == []  # a context limits the check

    with pytest.raises(pytest.fail.Exception) as failed:
        assert_accessible(page, "broken page")
    message = str(failed.value)
    assert "broken page" in message
    assert "- label (critical): Form elements must have labels" in message
    assert "[1 node(s), first: #nameless]" in message
    assert "- color-contrast (serious):" in message


@pytest.mark.browser
def test_form_round_trip(page: Page, site: Site) -> None:
    page.goto(site.url + "/")
    assert page.evaluate("() => [navigator.language, innerWidth, innerHeight]") == [
        "en-SG", 1024, 768]
    page.get_by_label("Your name").fill("Mei Ling")
    page.get_by_role("button", name="Say hello").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Mei Ling")
    assert page.url == site.url + "/greet"
    assert site.posts[-1] == "Mei Ling"
    assert_accessible(page, "greeting")


@pytest.mark.browser
def test_tablet_screenshot_is_a_png(browser: Browser, site: Site,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIMS_SCREENSHOTS", raising=False)
    with new_page(browser, viewport=TABLET_PORTRAIT) as tablet:
        tablet.goto(site.url + "/")
        assert tablet.evaluate("() => [innerWidth, innerHeight]") == [768, 1024]
        path = screenshot(tablet, "harness-selftest")
    assert DOCS_IMG not in path.parents  # normal runs never rewrite committed images
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (768, 1024)
        img.verify()


def test_screenshot_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMS_SCREENSHOTS", "1")
    assert screenshot_path("login") == DOCS_IMG / "portal-login.png"
    with pytest.raises(ValueError):
        screenshot_path("../escape")


def test_serve_wsgi_stops_cleanly() -> None:
    def app(environ: dict, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    threads_before = set(threading.enumerate())
    with serve_wsgi(app) as url:
        port = int(url.rsplit(":", 1)[1])
        kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        kept_alive.request("GET", "/")  # HTTP/1.1: the server keeps this connection open
        assert kept_alive.getresponse().read() == b"ok"
    kept_alive.close()
    assert set(threading.enumerate()) - threads_before == set()  # loop and worker threads ended
    refused = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises(ConnectionRefusedError):
        refused.request("GET", "/")
    refused.close()
