"""Real-browser test harness for the portal: Debian's chromium driven by Playwright, axe-core.

The fixtures `browser` (session) and `page` are registered once, in tests/conftest.py (a
session-scoped Playwright imported into two modules would start twice and collide); their
module-level names are fixture_browser and fixture_page. Test modules import the helpers:

    from tests.browser import assert_accessible, new_page, screenshot, serve_wsgi

    @pytest.fixture(scope="module")
    def base_url():
        with serve_wsgi(create_app(...)) as url:
            yield url

    @pytest.mark.browser
    def test_login_page(page, base_url):
        page.goto(base_url + "/login")
        assert_accessible(page, "login")
        screenshot(page, "login")          # docs/img/portal-login.png with MIMS_SCREENSHOTS=1

    @pytest.mark.browser
    def test_login_tablet(browser, base_url):
        with new_page(browser, viewport=(768, 1024)) as tablet:
            tablet.goto(base_url + "/login")
            assert_accessible(tablet, "login, tablet portrait")

The browser is always /usr/bin/chromium (`apt-get install chromium`); Playwright's own browser
downloads are never used. Without chromium the browser tests are skipped, except under CI
(CI=true), where they fail. axe-core comes from the PyPI package axe-playwright-python, which ships
a pinned axe.min.js; it is evaluated through the DevTools protocol, which the page's
Content-Security-Policy does not govern, so contexts are NOT created with bypass_csp: the pages
are tested under the CSP they really send.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.resources
import os
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_VIEWPORT = (1024, 768)
TABLET_PORTRAIT = (768, 1024)
DEFAULT_LOCALE = "en-SG"
# Playwright's default is 30 s; a page of ours that needs more than this is a failure.
DEFAULT_TIMEOUT_MS = 10_000

# WCAG 2.1 A and AA, plus axe's best-practice rules (those that are serious or critical, such as
# label-title-only, aria-dialog-name and tabindex, do fail assert_accessible).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = ("serious", "critical")

REPO = Path(__file__).resolve().parents[1]
DOCS_IMG = REPO / "docs" / "img"

_state: dict[str, Any] = {"axe_source": None, "shot_dir": None}
_console: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


# --- serving a WSGI app --------------------------------------------------------------------------


@contextlib.contextmanager
def serve_wsgi(app: Any, *, threads: int = 4, startup_timeout: float = 10.0,
               **adjustments: Any) -> Iterator[str]:
    """Serve `app` with waitress on 127.0.0.1 and a free port, in a background thread.

    Yields the base URL without a trailing slash (`http://127.0.0.1:PORT`) once the server has
    answered an HTTP request (any status counts). On exit every socket is closed (the listener
    and any keep-alive connection the browser still holds), the loop thread ends and waitress's
    worker threads are stopped. `adjustments` go to waitress (e.g. `expose_tracebacks=True`).
    """
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=threads, **adjustments)
    port = server.effective_port
    thread = threading.Thread(target=server.run, name=f"waitress-loop-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_answering("127.0.0.1", port, startup_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(server, thread)


def _wait_until_answering(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            conn.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


def _stop(server: Any, thread: threading.Thread) -> None:
    from waitress.channel import HTTPChannel

    socket_map = server._map

    def close_all() -> None:
        for dispatcher in list(socket_map.values()):
            if isinstance(dispatcher, HTTPChannel):
                dispatcher.handle_close()  # also closes its output buffers (maybe temp files)
            else:
                dispatcher.close()  # the listening socket and the trigger pipe
        socket_map.clear()

    # Close every channel from inside the loop thread (wasyncore is not thread-safe): with an
    # empty map the loop returns, and run() with it. Seen once in CI: the trigger's pipe was
    # already closed (EBADF); then close everything from here rather than leak sockets.
    try:
        server.trigger.pull_trigger(close_all)
    except OSError:
        close_all()
    thread.join(10)
    if thread.is_alive():  # pragma: no cover - only if the loop is wedged
        raise RuntimeError("waitress did not stop within 10 s")
    server.task_dispatcher.shutdown(timeout=5)


# --- browser and pages ---------------------------------------------------------------------------


@pytest.fixture(scope="session", name="browser")
def fixture_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's chromium, headless, launched once per test session."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    _state["shot_dir"] = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def new_page(browser: Browser, viewport: tuple[int, int] = DEFAULT_VIEWPORT,
             locale: str = DEFAULT_LOCALE, **context_options: Any) -> Iterator[Page]:
    """A page in a fresh browser context (own cookies and storage), closed on exit.

    `context_options` go to `browser.new_context` (e.g. `has_touch=True`, `reduced_motion=...`).
    """
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                  **context_options)
    try:
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        messages: list[str] = []
        _console[page] = messages
        page.on("console", lambda m: messages.append(f"{m.text} ({m.location.get('url')})")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: messages.append(f"uncaught: {e}"))
        yield page
    finally:
        context.close()


@pytest.fixture(name="page")
def fixture_page(browser: Browser) -> Iterator[Page]:
    """A 1024x768, en-SG page in a fresh context, closed after the test."""
    with new_page(browser) as fresh:
        yield fresh


def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of a page made by new_page/page, in order.

    A CSP violation (an inline script or style attribute the portal's CSP blocks) shows up here
    and nowhere else.
    """
    return list(_console.get(page, []))


# --- accessibility -------------------------------------------------------------------------------


def _axe_source() -> str:
    if _state["axe_source"] is None:
        files = importlib.resources.files("axe_playwright_python")
        _state["axe_source"] = (files / "axe.min.js").read_text(encoding="utf-8")
    return _state["axe_source"]


def axe_version(page: Page) -> str:
    _inject_axe(page)
    return page.evaluate("() => window.axe.version")


def _inject_axe(page: Page) -> None:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated as a function body through the DevTools protocol: no <script> element, so
        # script-src 'self' does not block it, and the context needs no bypass_csp.
        page.evaluate("() => {\n" + _axe_source() + "\n}")


def axe_check(page: Page, context: str = "", *, tags: list[str] | None = None) -> list[dict]:
    """Run axe-core on the page as it is now; returns axe's violations (all impacts).

    `context` is a CSS selector to limit the check to (default: the whole document); `tags`
    defaults to AXE_TAGS (WCAG 2.1 A + AA and best-practice).
    """
    _inject_axe(page)
    options = {
        "runOnly": {"type": "tag", "values": tags or AXE_TAGS},
        "resultTypes": ["violations"],
    }
    return page.evaluate(
        "async ([context, options]) =>"
        " (await window.axe.run(context || document, options)).violations",
        [context, options],
    )


def format_violations(violations: list[dict]) -> str:
    """One line per violation: rule id, impact, help, node count, first target; then its HTML."""
    lines = []
    for v in violations:
        nodes = v["nodes"]
        first = " >> ".join(map(str, nodes[0]["target"])) if nodes else "?"
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} "
                     f"[{len(nodes)} node(s), first: {first}]")
        if nodes:
            lines.append(f"    {nodes[0]['html'][:120]}")
        lines.append(f"    {v.get('helpUrl', '').split('?')[0]}")
    return "\n".join(lines)


def assert_accessible(page: Page, name: str, context: str = "") -> list[dict]:
    """Fail if axe finds any serious or critical violation; returns the lesser ones."""
    violations = axe_check(page, context)
    bad = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if bad:
        pytest.fail(f"{name} ({page.url}): {len(bad)} serious/critical accessibility "
                    f"violation(s):\n{format_violations(bad)}", pytrace=False)
    return violations


# --- screenshots ---------------------------------------------------------------------------------


def screenshot_path(name: str) -> Path:
    """Where screenshot(page, name) writes: docs/img/ with MIMS_SCREENSHOTS=1, else a tmp dir."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"screenshot name must be lower-case letters, digits and '-': {name!r}")
    if os.environ.get("MIMS_SCREENSHOTS") == "1":
        directory = DOCS_IMG
    else:
        if _state["shot_dir"] is None:  # used outside the browser fixture
            _state["shot_dir"] = Path(tempfile.mkdtemp(prefix="mims-screenshots-"))
        directory = _state["shot_dir"]
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"portal-{name}.png"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of the page; see screenshot_path for where. Returns the path."""
    path = screenshot_path(name)
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path
