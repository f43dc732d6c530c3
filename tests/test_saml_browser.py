"""SAML in a real browser (Debian's chromium) under the CSP the portal really sends: the
page that posts the assertion goes to the SP by itself (static script, form-action widened
to that SP only), also straight after the sign-in form; the portal's sign-out form leads on
to the SP's single logout. The SP's site is played by Playwright's routing (nothing leaves
the machine) and its response checked by pysaml2."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Page, Route

from tests.browser import console_errors, serve_wsgi
from tests.portal_helpers import give_answers, make_app
from tests.saml_helpers import Form, make_sp, query

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def portal(slapd):  # type: ignore[no-untyped-def]
    app = make_app(slapd)
    with serve_wsgi(app) as url:
        yield url, app.test_client().get("/saml/metadata").data


def test_sign_in_post_and_sign_out_in_chromium(page: Page, portal, make, slapd,  # type: ignore[no-untyped-def]
                                               tmp_path) -> None:
    base_url, idp_md = portal
    s = make.student(level="P4")
    give_answers(make.root, s.dn)
    sp = make_sp(make, slapd, idp_md, tmp_path)
    seen: list[tuple[str, str, str]] = []

    def at_the_sp(route: Route) -> None:
        req = route.request
        seen.append((req.method, req.url, req.post_data or ""))
        route.fulfill(status=200, content_type="text/html", body="<p>the SP</p>")

    page.route("https://sp*.example.sg/**", at_the_sp)
    req_id, path, _ = sp.login()
    page.goto(base_url + path)
    page.get_by_label("Login ID (your school email)").fill(s.mail)
    page.get_by_label("Password").fill(s.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("https://sp*.example.sg/**")
    method, url, body = seen[-1]
    assert (method, url) == ("POST", sp.acs)
    fields = {k: v[0] for k, v in parse_qs(body).items()}
    resp = sp.accept(Form(url, fields))
    assert resp.in_response_to == req_id
    assert resp.session_info()["name_id"].text == s.mail
    assert console_errors(page) == []
    # Signing out on the portal leads on to the SP's single logout.
    page.goto(base_url + "/home")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{sp.slo}**")
    method, url, _ = seen[-1]
    assert method == "GET" and "SAMLRequest" in query(url)
    assert console_errors(page) == []
