"""SAML single logout on the session's slapd, with pysaml2 playing the SPs: an SP's signed
LogoutRequest ends the portal's sessions (and every other application's: the other SPs
get the portal's signed LogoutRequest through the browser, OIDC grants go), the SP gets its
LogoutResponse; the portal's own sign-out tells the SPs too; an unsigned or replayed
LogoutRequest signs nobody out."""

from __future__ import annotations

import base64
import re
import warnings
from html import unescape
from urllib.parse import urlsplit

import pytest

from tests.oidc_helpers import register
from tests.portal_helpers import Browserish, give_answers, make_app, text
from tests.saml_helpers import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    IDP,
    SP,
    form_of,
    make_sp,
    query,
)
from tests.test_oidc_flow import exchange, sign_in_to
from tests.test_saml_sso import EMAIL, RSA_SHA256, follow, visit

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from saml2.pack import http_redirect_message
    from saml2.saml import NameID
    from saml2.sigver import verify_redirect_signature

SLO = "http://127.0.0.1:8080/saml/slo"


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


@pytest.fixture
def idp_md(app) -> bytes:  # type: ignore[no-untyped-def]
    return app.test_client().get("/saml/metadata").data  # type: ignore[no-any-return]


def signed_in_child(make, app, sps):  # type: ignore[no-untyped-def]
    """A P4 child signed in to the portal and, through it, to each SP; returns the browser,
    the child, and each SP's session index."""
    s = make.student(level="P4")
    give_answers(make.root, s.dn)
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    indexes = []
    for sp in sps:
        _req, r = visit(web, sp)
        indexes.append(sp.accept(form_of(follow(web, r))).session_info()["session_index"])
    return web, s, indexes


def logout_request(sp: SP, name_id: str, index: str | None, binding: str = BINDING_HTTP_REDIRECT,
                   sign: bool = True, relay_state: str = "sp-state"):  # type: ignore[no-untyped-def]
    """The SP's LogoutRequest to the portal: (its ID, the path or the form)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        req_id, req = sp.client.create_logout_request(
            SLO, IDP, name_id=NameID(format=EMAIL, text=name_id),
            session_indexes=[index] if index else None,
            sign=sign and binding == BINDING_HTTP_POST, sign_alg=RSA_SHA256)
        if binding == BINDING_HTTP_POST:
            return req_id, {"SAMLRequest": base64.b64encode(str(req).encode()).decode(),
                            "RelayState": relay_state}
        info = http_redirect_message(str(req), SLO, relay_state=relay_state, typ="SAMLRequest",
                                     sigalg=RSA_SHA256, sign=sign,
                                     backend=sp.client.sec.sec_backend)
    location = dict(info["headers"])["Location"]
    return req_id, location.replace("http://127.0.0.1:8080", "")


def go_url(resp) -> str:  # type: ignore[no-untyped-def]
    """Where a "please wait" page sends the browser (HTTP-Redirect binding)."""
    body = resp.get_data(as_text=True)
    m = re.search(r'<a id="saml-go" class="button" href="([^"]+)"', body)
    assert m, body[:1500]
    url = unescape(m.group(1))
    assert f'content="0; url={m.group(1)}"' in body
    return url


def idp_signed(sp: SP, url: str) -> bool:
    """Does the query string carry the portal's signature (checked with the IdP
    certificate of its metadata, as the SP knows it)?"""
    q = query(url)
    certs = sp.client.metadata.certs(IDP, "any", "signing")
    return q["SigAlg"] == RSA_SHA256 and any(
        verify_redirect_signature(q, sp.client.sec.sec_backend, cert) for _n, cert in certs)


def answer_logout(sp: SP, url: str, web: Browserish):  # type: ignore[no-untyped-def]
    """The SP receives the portal's LogoutRequest, checks it and answers Success."""
    assert url.startswith(sp.slo or "-") and idp_signed(sp, url)
    q = query(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        req = sp.client.parse_logout_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
        resp = sp.client.create_logout_response(req.message, [BINDING_HTTP_REDIRECT],
                                                sign=False)
        info = http_redirect_message(str(resp), SLO, relay_state=q["RelayState"],
                                     typ="SAMLResponse", sigalg=RSA_SHA256, sign=True,
                                     backend=sp.client.sec.sec_backend)
    location = dict(info["headers"])["Location"]
    return req.message, web.c.get(location.replace("http://127.0.0.1:8080", ""))


def test_an_sp_signs_the_child_out_everywhere(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = make_sp(make, slapd, idp_md, tmp_path)
    second = make_sp(make, slapd, idp_md, tmp_path)
    no_slo = make_sp(make, slapd, idp_md, tmp_path, slo=False)
    web, s, (i1, i2, _i3) = signed_in_child(make, app, [first, second, no_slo])
    rp = register(make.root, slapd)
    make.created.append(make.dns.app(rp.client_id))
    code = query(sign_in_to(web, rp, s).headers["Location"])["code"]
    tokens = exchange(web, rp, code).get_json()
    assert i1 == i2  # one portal session, one SessionIndex
    req_id, path = logout_request(first, s.mail, i1)
    r = web.c.get(path)
    assert r.status_code == 302 and "/saml/slo/next?t=" in r.headers["Location"]
    # Signed out of the portal, and of the OIDC application.
    assert web.get("/home").status_code == 302
    assert web.c.post("/oauth/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                      headers=rp.auth_header()).status_code == 400
    # The other SP (with a SingleLogoutService) is told, signed, through the browser.
    r = web.get(r.headers["Location"].replace("http://localhost", ""))
    told, r = answer_logout(second, go_url(r), web)
    assert told.name_id.text == s.mail and [x.text for x in told.session_index] == [i2]
    # Then the SP that asked gets its LogoutResponse, signed, with its RelayState.
    r = web.get(r.headers["Location"].replace("http://localhost", ""))
    url = go_url(r)
    assert url.startswith(first.slo or "-") and idp_signed(first, url)
    q = query(url)
    assert q["RelayState"] == "sp-state"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        answer = first.client.parse_logout_request_response(q["SAMLResponse"],
                                                           BINDING_HTTP_REDIRECT)
    assert answer.response.in_response_to == req_id and answer.status_ok()


def test_the_portals_sign_out_tells_the_sps(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = make_sp(make, slapd, idp_md, tmp_path)
    second = make_sp(make, slapd, idp_md, tmp_path)
    web, s, (i1, i2) = signed_in_child(make, app, [first, second])
    web.get("/home")
    r = web.post("/logout", {})
    assert r.status_code == 302 and "/saml/slo/next?t=" in r.headers["Location"]
    told = []
    for sp in (first, second):
        page = web.get(r.headers["Location"].replace("http://localhost", ""))
        assert page.status_code == 200  # a page, not a redirect: form-action holds
        message, r = answer_logout(sp, go_url(page), web)
        told.append((message.name_id.text, message.session_index[0].text))
    assert told == [(s.mail, i1), (s.mail, i2)]
    r = web.get(r.headers["Location"].replace("http://localhost", ""))
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert "signed out" in text(web.get("/login")).lower()


def test_a_signed_post_logout_without_the_cookie(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """HTTP-POST arrives cross-site, without the portal's SameSite=Lax cookie: the signed
    NameID and SessionIndex name the session."""
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web, s, (index,) = signed_in_child(make, app, [sp])
    _req, form = logout_request(sp, s.mail, index, BINDING_HTTP_POST)
    r = app.test_client().post("/saml/slo", data=form)
    assert r.status_code == 200, text(r)
    assert web.get("/home").status_code == 302  # the child's browser is signed out
    # A SessionIndex of no session of this child: nobody else is signed out.
    other, s2, _ = signed_in_child(make, app, [sp])
    _req, form = logout_request(sp, s2.mail, "not-a-session", BINDING_HTTP_POST)
    app.test_client().post("/saml/slo", data=form)
    assert other.get("/home").status_code == 200


def test_unsigned_or_replayed_logout_requests_sign_nobody_out(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                              tmp_path) -> None:
    sp = make_sp(make, slapd, idp_md, tmp_path)
    signer = make_sp(make, slapd, idp_md, tmp_path, sign_requests=True)
    web, s, (index, _) = signed_in_child(make, app, [sp, signer])
    # Unsigned: the child is asked first (a link on another site cannot sign a child out).
    _req, path = logout_request(sp, s.mail, index, sign=False)
    r = web.get(path)
    assert r.status_code == 200 and "Sign out?" in text(r)
    assert 'action="/logout"' in r.get_data(as_text=True)
    assert web.get("/home").status_code == 200
    # Unsigned from an SP whose metadata says it signs: refused.
    _req, path = logout_request(signer, s.mail, index, sign=False)
    assert web.get(path).status_code == 400
    # A signed one whose RelayState was changed: refused.
    _req, path = logout_request(sp, s.mail, index, relay_state="mine")
    assert web.get(path.replace("RelayState=mine", "RelayState=yours")).status_code == 400
    assert web.get("/home").status_code == 200
    # The portal's sign-out page URL (Google's "Sign-out page URL") asks too.
    r = web.get("/saml/slo")
    assert r.status_code == 200 and "Sign out?" in text(r)
    # A signed one works once; the same message again is refused.
    _req, path = logout_request(sp, s.mail, index)
    assert web.c.get(path).status_code == 302
    assert web.c.get(path).status_code == 400
    r = Browserish(app.test_client()).get("/saml/slo")
    assert r.status_code == 200 and "You are signed out" in text(r)
    # Not a SAML message at all.
    assert web.get("/saml/slo?SAMLRequest=bm90IHhtbA").status_code == 400
    assert urlsplit(SLO).path == "/saml/slo"
