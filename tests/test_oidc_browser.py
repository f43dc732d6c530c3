"""Single sign-on and single sign-out in a real browser (Debian's chromium via Playwright):
two applications (two instances of the demo learning space, demo/learning_space/, each on
its own port and registered for it) and the real portal, each served by waitress, against
the session's slapd.

application -> the portal's sign-in -> the forced change after an ICT reset -> back to the
application signed in; the second application signs in without a password; signing out of
one ends the portal's session and the other application's (its back-channel endpoint is
called). The portal's pages are checked with axe-core (and the learning space's too), and,
with MIMS_SCREENSHOTS=1, saved to docs/img/.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from demo.learning_space import Settings, create_app
from mimsdir.directory import server
from tests.browser import assert_accessible, console_errors, screenshot, serve_wsgi
from tests.oidc_helpers import register, served_portal
from tests.test_portal_browser import device_bind, named

pytestmark = pytest.mark.browser
SIGN_IN = "Sign in with my school account"


@dataclass
class Space:
    """One served learning space, and its own record of who is signed in to it."""

    url: str
    app: Any

    def sessions(self) -> int:
        return len(self.app.extensions["learning_space"])


@pytest.fixture(scope="module")
def portal(slapd):  # type: ignore[no-untyped-def]
    with served_portal(slapd) as (url, _app):
        yield url


@contextlib.contextmanager
def learning_space(cfg, portal: str, title: str, cookie: str) -> Iterator[Space]:  # type: ignore[no-untyped-def]
    """A learning space on a free port, registered (as `make demo` registers it) for it."""
    settings = Settings(issuer=portal, base_url="", title=title, cookie_name=cookie)
    app = create_app(settings)
    with serve_wsgi(app) as url:
        settings.base_url = url
        with server.root_conn(cfg) as root:
            rp = register(root, cfg, name=title, redirect_uris=(settings.redirect_uri,),
                          post_logout_redirect_uris=(settings.post_logout_uri,),
                          backchannel_logout_uri=settings.backchannel_uri)
        settings.client_id, settings.client_secret = rp.client_id, rp.secret
        yield Space(url, app)


def until(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sso_forced_change_and_single_sign_out(page: Page, slapd, make, root, portal) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3", class_name="3B", **named("Mei Ling Lim", "Mei Ling"))
    root.set_password(s.dn, "Mango4821")  # an ICT reset (`mimsdir student reset-password`)
    assert root.get(s.dn, ["pwdReset"], "t") == {"pwdReset": [b"TRUE"]}
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url)
            if frame == page.main_frame else None)
    with learning_space(slapd, portal, "Learning space", "ls_one") as one, \
            learning_space(slapd, portal, "Reading room", "ls_two") as two:
        # 1. The application sends the child to the portal's sign-in page.
        page.goto(one.url + "/")
        expect(page.get_by_role("heading", name="Learning space")).to_be_visible()
        assert_accessible(page, "learning space, signed out")
        page.get_by_role("button", name=SIGN_IN).click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.url.startswith(portal + "/login?next=")
        assert_accessible(page, "the portal's sign-in, for an application")
        screenshot(page, "oidc-sign-in")
        page.get_by_label("Login ID (your school email)").fill(s.mail)
        page.get_by_label("Password").fill("Mango4821")
        page.get_by_role("button", name="Sign in").click()
        # 2. The reset password must be changed first: no code before that.
        expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
        assert_accessible(page, "forced change, on the way to an application")
        assert one.sessions() == 0 and not any(u.startswith(one.url + "/callback")
                                               for u in visited)
        page.get_by_label("The password on your slip").fill("Mango4821")
        page.get_by_label("New password", exact=True).fill("Rainbow-Fish-7")
        page.get_by_label("New password again").fill("Rainbow-Fish-7")
        page.get_by_role("button", name="Save my new password").click()
        # 3. Back to the application, signed in, with what the portal told it.
        expect(page.get_by_text("Signed in as Mei Ling Lim (P3, 3B)")).to_be_visible()
        assert page.url == one.url + "/" and one.sessions() == 1
        expect(page.get_by_role("cell", name=s.mail)).to_be_visible()
        assert_accessible(page, "learning space, signed in")
        screenshot(page, "learning-space")
        assert device_bind(slapd, s.mail, "Rainbow-Fish-7").ok

        # 4. The second application: straight through, no password asked.
        before = len(visited)
        page.goto(two.url + "/")
        page.get_by_role("button", name=SIGN_IN).click()
        expect(page.get_by_text("Signed in as Mei Ling Lim (P3, 3B)")).to_be_visible()
        assert page.url == two.url + "/" and two.sessions() == 1
        assert not any("/login" in u for u in visited[before:] if u.startswith(portal)), \
            visited[before:]

        # 5. Signing out of the first ends the portal's session and the second's.
        page.goto(one.url + "/")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text(
            "You are signed out of Learning space and of the MIMS portal")
        assert page.url == one.url + "/" and one.sessions() == 0
        assert until(lambda: two.sessions() == 0)  # its back-channel endpoint was called
        page.goto(two.url + "/")
        expect(page.get_by_role("status")).to_contain_text("signed out from another")
        # ... and the portal asks for the password again.
        page.get_by_role("button", name=SIGN_IN).click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.url.startswith(portal + "/login")
        assert console_errors(page) == []
