"""`make demo`'s instructions in a real browser (Debian's chromium): after scripts/demo.sh,
the P2 student signs in at the learning space (OpenID Connect) with the printed password,
opens the media library (SAML) and is signed in there without a password; "Sign out" in the
media library signs the learning space out too (the portal's back-channel logout, no page of
the learning space's on the way) and ends the portal's session. Then the other way round in
a new browser: the media library first, the learning space without a password, and "Sign
out" in the learning space signs the media library out (the portal's LogoutRequest through
the browser). Every page of the media library is checked with axe-core, and, with
MIMS_SCREENSHOTS=1, saved to docs/img/portal-media-library.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import assert_accessible, console_errors, new_page, screenshot
from tests.test_demo import demo

pytestmark = pytest.mark.browser
LS_SIGN_IN = "Sign in with my school account"
ML_SIGN_IN = "Sign in with MIMS"
WHO = "Signed in as Wei Ling Tan (P2, 2A)"


def visits(page: Page) -> list[str]:
    """Every address the page's main frame goes to, from now on."""
    seen: list[str] = []
    page.on("framenavigated", lambda f: seen.append(f.url) if f == page.main_frame else None)
    return seen


def sign_in_at_the_portal(page: Page, mail: str, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Login ID (your school email)").fill(mail)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_the_demo_walkthrough_in_chromium(browser: Browser, tmp_path: Path) -> None:
    with demo(tmp_path) as d:
        out = d.run()
        mail, password = re.search(r"a P2 student \(card\)\s+(\S+)\s+password: (\S+)",
                                   out).groups()  # type: ignore[union-attr]
        assert f"open {d.learning}/" in out and f"open {d.media}/" in out

        with new_page(browser) as page:
            seen = visits(page)
            # 1. The learning space, and the portal's sign-in as the P2 student.
            page.goto(d.learning + "/")
            page.get_by_role("button", name=LS_SIGN_IN).click()
            sign_in_at_the_portal(page, mail, password)
            expect(page.get_by_text(WHO)).to_be_visible()
            # 2. The media library: signed in without the password.
            page.goto(d.media + "/")
            expect(page.get_by_role("heading", name="Media library")).to_be_visible()
            assert_accessible(page, "media library, signed out")
            before = len(seen)
            page.get_by_role("button", name=ML_SIGN_IN).click()
            expect(page.get_by_text(WHO)).to_be_visible()
            assert page.url == d.media + "/"
            assert not any(u.startswith(d.portal + "/login") for u in seen[before:]), \
                seen[before:]
            expect(page.get_by_role("cell", name=mail, exact=True).first).to_be_visible()
            expect(page.get_by_role("row", name=re.compile(r"mimsLevel\s+P2"))).to_be_visible()
            assert_accessible(page, "media library, signed in")
            screenshot(page, "media-library")
            # 3. Sign out in the media library: the portal and the learning space too.
            before = len(seen)
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_contain_text(
                "You are signed out of Media library and of the MIMS portal")
            assert page.url == d.media + "/"
            assert_accessible(page, "media library, signed out here")
            # The learning space was told by the portal, not through this browser.
            assert not any(u.startswith(d.learning) for u in seen[before:]), seen[before:]
            page.goto(d.learning + "/")
            expect(page.get_by_role("status")).to_contain_text("signed out from another")
            page.goto(d.portal + "/home")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            assert page.url.startswith(d.portal + "/login")
            assert console_errors(page) == []

        with new_page(browser) as page:
            seen = visits(page)
            # The other way round: the media library first, with the password ...
            page.goto(d.media + "/")
            page.get_by_role("button", name=ML_SIGN_IN).click()
            sign_in_at_the_portal(page, mail, password)
            expect(page.get_by_text(WHO)).to_be_visible()
            assert page.url == d.media + "/"
            # ... then the learning space, without it.
            page.goto(d.learning + "/")
            before = len(seen)
            page.get_by_role("button", name=LS_SIGN_IN).click()
            expect(page.get_by_text(WHO)).to_be_visible()
            assert not any(u.startswith(d.portal + "/login") for u in seen[before:]), \
                seen[before:]
            # Sign out in the learning space: the portal tells the media library (its
            # LogoutRequest through this browser) before coming back.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_contain_text(
                "You are signed out of Learning space and of the MIMS portal")
            page.goto(d.media + "/")
            expect(page.get_by_role("status")).to_contain_text(
                "You were signed out from another application or from the portal")
            assert_accessible(page, "media library, signed out elsewhere")
            page.goto(d.portal + "/home")
            assert page.url.startswith(d.portal + "/login")
            assert console_errors(page) == []
