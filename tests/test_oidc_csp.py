"""``form-action`` on the pages whose form posts end at an application. Chrome and Safari
check it against every redirect after a form post, so with ``'self'`` alone a sign-in on its
way to an application never got there (tests/test_oidc_browser.py, in chromium). Such a page
names that one application's origin beside 'self'; every other page keeps 'self' alone."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from mimsdir.portal.security import CSP
from tests.oidc_helpers import REDIRECT, register
from tests.portal_helpers import Browserish, make_app

APP = "form-action 'self' https://learning.example.sg:443;"


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


def csp(resp) -> str:  # type: ignore[no-untyped-def]
    return str(resp.headers["Content-Security-Policy"])


def test_sign_in_page_on_the_way_to_an_application(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    r = web.get(rp.authorize_path())  # not signed in: to the sign-in page, with next
    login = web.get(r.headers["Location"])
    assert login.status_code == 200 and APP in csp(login)
    assert csp(login) == CSP.replace("form-action 'self'", APP.rstrip(";"))
    # Only there: a plain sign-in page, or one whose next is anything else, keeps 'self'.
    assert csp(web.get("/login")) == CSP
    assert csp(web.get("/login?next=/home")) == CSP
    # A redirect URI that is not a plain origin is never written into the header.
    for bad in ("https://a;b.example/cb", "https://x.example cb/", "javascript:alert(1)",
                "https://a'b.example/"):
        path = "/oauth/authorize?" + urlencode({"redirect_uri": bad})
        assert csp(web.get("/login?" + urlencode({"next": path}))) == CSP, bad


def test_forced_change_on_the_way_keeps_the_application(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    make.root.set_password(s.dn, "Reset-by-ict-55")
    rp = register(make.root, slapd, redirect_uris=("http://127.0.0.1:8081/callback",))
    rp.redirect_uri = "http://127.0.0.1:8081/callback"
    web = Browserish(app.test_client())
    r = web.get(rp.authorize_path())
    login = web.get(r.headers["Location"])
    nxt = login.get_data(as_text=True).split('name="next" value="')[1].split('"')[0]
    web.post("/login", {"login_id": s.mail, "password": "Reset-by-ict-55",
                        "next": nxt.replace("&amp;", "&")})
    assert web.get("/").headers["Location"].endswith("/password")
    page = web.get("/password")
    assert "form-action 'self' http://127.0.0.1:8081;" in csp(page)


def test_consent_and_sign_out_question(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P2")
    rp = register(make.root, slapd, consent=True,
                  post_logout_redirect_uris=("https://learning.example.sg/bye",))
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    consent = web.get(rp.authorize_path())
    assert consent.status_code == 200 and "Share your details?" in consent.get_data(as_text=True)
    assert APP in csp(consent)
    ask = web.get("/oauth/logout?" + urlencode({"post_logout_redirect_uri":
                                                "https://learning.example.sg/bye"}))
    assert ask.status_code == 200 and APP in csp(ask)
    assert csp(web.get("/home")) == CSP
    assert REDIRECT.startswith("https://learning.example.sg/")
