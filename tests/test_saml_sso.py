"""The SAML IdP end to end on the session's slapd, checked by pysaml2 playing the SP:
SP-initiated sign-in over both bindings, IdP-initiated, signatures, audience, times,
InResponseTo, NameID and attributes, and the portal's gates before any assertion."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import warnings
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as ET
import ldap
import pytest
import time_machine

from mimsdir.apps.model import App
from mimsdir.apps.registry import Registry
from tests.oidc_helpers import REDIRECT, register
from tests.portal_helpers import Browserish, give_answers, make_app, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from saml2.response import StatusNoPassive, StatusRequestDenied, UnsolicitedResponse
    from saml2.sigver import SignatureError
    from saml2.validate import ResponseLifetimeExceed

from tests.saml_helpers import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    form_of,
    make_sp,
    xml_of,
)

PORTAL = "http://127.0.0.1:8080"
MIMS = "urn:oid:2.25.255515259974568028293500135569508669165.1"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


@pytest.fixture
def idp_md(app) -> bytes:  # type: ignore[no-untyped-def]
    return app.test_client().get("/saml/metadata").data  # type: ignore[no-any-return]


def _t(value: str | None) -> datetime:
    return datetime.strptime(value or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def sign_in_to(web, rp, person):  # type: ignore[no-untyped-def]
    from tests.test_oidc_flow import sign_in_to as oidc

    return oidc(web, rp, person)


def student(make, level: str = "P4", **attrs):  # type: ignore[no-untyped-def]
    s = make.student(level=level, **attrs)
    if level in ("P4", "P5", "P6"):
        give_answers(make.root, s.dn)
    return s


def visit(web: Browserish, sp, binding: str = BINDING_HTTP_REDIRECT, **kw):  # type: ignore[no-untyped-def]
    """The SP sends the browser to the portal with a new AuthnRequest."""
    req_id, path, fields = sp.login(binding, **kw)
    r = web.c.post(path, data=fields) if binding == BINDING_HTTP_POST else web.c.get(path)
    return req_id, r


def follow(web: Browserish, r, person=None):  # type: ignore[no-untyped-def]
    """Follow the portal's redirects (signing in when asked) to the page that posts to
    the SP, or to whatever stops the way."""
    for _ in range(8):
        if r.status_code not in (302, 303):
            return r
        location = r.headers["Location"].replace("http://localhost", "")
        if location.startswith("/login") and person is not None:
            page = web.get(location)
            nxt = page.get_data(as_text=True).split('name="next" value="')[1].split('"')[0]
            r = web.post("/login", {"login_id": person.mail, "password": person.password,
                                    "next": nxt.replace("&amp;", "&")})
            assert r.status_code == 302, text(r)
            person = None  # once
            continue
        r = web.get(location)
    return r


def sign_in_through(web: Browserish, sp, person, binding=BINDING_HTTP_REDIRECT, **kw):  # type: ignore[no-untyped-def]
    req_id, r = visit(web, sp, binding, **kw)
    return req_id, follow(web, r, person)


def portal_sids(make, dn: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The sids of a person's portal sessions, as the directory keeps them."""
    res = make.root.search(f"ou=sessions,{make.dns.base}", ldap.SCOPE_ONELEVEL,
                           f"(mimsSessionSubject={dn})", ["cn", "mimsSessionData"], "t")
    out = set()
    for _dn, attrs in res:
        data = json.loads(attrs["mimsSessionData"][0])
        if "who" in data:
            out.add(data["sid"])
    return out


def signatures(xml: str) -> tuple[list[str], list[str]]:
    """The SignatureMethod algorithms on the Response and on its Assertion."""
    root = ET.fromstring(xml)
    assertion = root.find(f"{{{SAML}}}Assertion")
    assert assertion is not None

    def algs(el: Element) -> list[str]:
        return [m.get("Algorithm", "") for sig in el.findall(f"{{{DS}}}Signature")
                for m in sig.iter(f"{{{DS}}}SignatureMethod")]

    return algs(root), algs(assertion)


def status_of(form) -> list[str]:  # type: ignore[no-untyped-def]
    root = ET.fromstring(xml_of(form.fields["SAMLResponse"]))
    return [c.get("Value", "") for c in root.iter(f"{{{SAMLP}}}StatusCode")]


# -- SP-initiated, both bindings ---------------------------------------------------------------

def test_sp_initiated_redirect_binding(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P5", class_name="5B", givenName=[b"Wei Ling"], sn=[b"Tan"])
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    req_id, r = sign_in_through(web, sp, s)
    assert r.status_code == 200, text(r)
    form = form_of(r)
    assert form.fields["RelayState"] == "back-to-lesson"
    resp = sp.accept(form)  # signatures, audience, times, InResponseTo, Destination
    assert resp.in_response_to == req_id
    info = resp.session_info()
    assert info["name_id"].text == s.mail  # the login ID, as Google Workspace needs
    assert info["name_id"].format == EMAIL
    ava = info["ava"]
    assert ava["mail"] == [s.mail] and ava["givenName"] == ["Wei Ling"] and ava["sn"] == ["Tan"]
    assert ava["displayName"] == [f"Student {s.uid}"]
    assert ava["eduPersonAffiliation"] == ["student"]
    # The portal's own, named by their LDAP attributes' OIDs (docs/apps.md).
    assert ava[f"{MIMS}.1"] == [make.school]
    assert ava[f"{MIMS}.2"] == ["P5"] and ava[f"{MIMS}.3"] == ["5B"]
    assert set(ava) == {"mail", "givenName", "sn", "displayName", "eduPersonAffiliation",
                        f"{MIMS}.1", f"{MIMS}.2", f"{MIMS}.3"}
    # The SessionIndex is the portal session's sid (single logout names it).
    assert info["session_index"] in portal_sids(make, s.dn)
    xml = xml_of(form.fields["SAMLResponse"])
    # Response and assertion both signed, RSA-SHA256 with SHA-256 digests, nothing weaker.
    assert signatures(xml) == ([RSA_SHA256], [RSA_SHA256])
    assert set(re.findall(r'DigestMethod Algorithm="([^"]+)"', xml)) == {SHA256}
    # Audience, recipient, destination, lifetime of a few minutes.
    root = ET.fromstring(xml)
    assert root.get("Destination") == sp.acs and root.get("InResponseTo") == req_id
    assert [a.text for a in root.iter(f"{{{SAML}}}Audience")] == [sp.entity_id]
    conf = next(root.iter(f"{{{SAML}}}SubjectConfirmationData"))
    assert conf.get("Recipient") == sp.acs and conf.get("InResponseTo") == req_id
    cond = next(root.iter(f"{{{SAML}}}Conditions"))
    lifetime = _t(cond.get("NotOnOrAfter")) - _t(cond.get("NotBefore"))
    assert lifetime == timedelta(minutes=5)
    # The page posts by itself (a static script) and widens form-action to the SP alone.
    csp = r.headers["Content-Security-Policy"]
    assert "form-action 'self' https://sp" in csp and "script-src 'self';" in csp
    assert "<script src=\"/static/saml-post.js\"></script>" in r.get_data(as_text=True)
    assert "form-action 'self';" in web.get("/home").headers["Content-Security-Policy"]
    js = app.test_client().get("/static/saml-post.js")
    assert js.status_code == 200 and b"submit()" in js.data
    js.close()


def test_sp_initiated_post_binding_with_a_signed_request(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                         tmp_path) -> None:
    s = student(make, "P6")
    sp = make_sp(make, slapd, idp_md, tmp_path, sign_requests=True)
    assert 'AuthnRequestsSigned="true"' in (sp.app.saml_metadata or "")
    web = Browserish(app.test_client())
    req_id, r = sign_in_through(web, sp, s, BINDING_HTTP_POST, sign=True)
    resp = sp.accept(form_of(r))
    assert resp.in_response_to == req_id and resp.session_info()["name_id"].text == s.mail
    # Signed over HTTP-Redirect too (the signature in the query string).
    req_id, r = sign_in_through(web, sp, s, BINDING_HTTP_REDIRECT, sign=True)
    assert sp.accept(form_of(r)).in_response_to == req_id


def test_idp_initiated(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher("4A")
    sp = make_sp(make, slapd, idp_md, tmp_path, unsolicited=True)
    web = Browserish(app.test_client())
    r = follow(web, web.get(f"/saml/init/{sp.app.client_id}?RelayState=/lesson/7"), teacher)
    form = form_of(r)
    assert form.fields["RelayState"] == "/lesson/7"
    resp = sp.accept(form)
    assert resp.in_response_to is None
    info = resp.session_info()
    assert info["name_id"].text == teacher.mail
    assert info["ava"]["eduPersonAffiliation"] == ["faculty"]
    assert f"{MIMS}.2" not in info["ava"]  # a teacher has no level
    # Unknown client ids, and OIDC clients, get nothing (not even a sign-in page).
    assert web.get("/saml/init/app-nobody").status_code == 400
    rp = register(make.root, slapd)
    make.created.append(make.dns.app(rp.client_id))
    assert web.get(f"/saml/init/{rp.client_id}").status_code == 400
    assert Browserish(app.test_client()).get(f"/saml/init/{rp.client_id}").status_code == 400


def test_an_sp_that_names_its_attributes_gets_only_those(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                         tmp_path) -> None:
    s = student(make, "P4", givenName=[b"Mei"])
    sp = make_sp(make, slapd, idp_md, tmp_path, requested=("mail", "givenName"))
    assert "RequestedAttribute" in (sp.app.saml_metadata or "")
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, s)
    ava = sp.accept(form_of(r)).session_info()["ava"]
    assert ava == {"mail": [s.mail], "givenName": ["Mei"]}


def test_metadata(app, slapd) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.apps.keys import saml_credentials

    r = app.test_client().get("/saml/metadata")
    assert r.status_code == 200 and r.mimetype == "application/samlmetadata+xml"
    root = ET.fromstring(r.data)
    assert root.get("entityID") == f"{PORTAL}/saml/metadata"
    idp = root.find(f"{{{MD}}}IDPSSODescriptor")
    assert idp is not None and idp.get("WantAuthnRequestsSigned") == "false"
    sso = {(e.get("Binding"), e.get("Location"))
           for e in idp.findall(f"{{{MD}}}SingleSignOnService")}
    assert sso == {(BINDING_HTTP_REDIRECT, f"{PORTAL}/saml/sso"),
                   (BINDING_HTTP_POST, f"{PORTAL}/saml/sso")}
    slo = {(e.get("Binding"), e.get("Location"))
           for e in idp.findall(f"{{{MD}}}SingleLogoutService")}
    assert slo == {(BINDING_HTTP_REDIRECT, f"{PORTAL}/saml/slo"),
                   (BINDING_HTTP_POST, f"{PORTAL}/saml/slo")}
    assert [e.text for e in idp.findall(f"{{{MD}}}NameIDFormat")] == [EMAIL]
    cert = next(root.iter(f"{{{DS}}}X509Certificate")).text or ""
    _key, pem = saml_credentials(slapd.secrets_dir)
    assert "".join(cert.split()) in pem.read_text().replace("\n", "")
    assert b"sha1" not in r.data and b"md5" not in r.data


# -- single sign-on across protocols --------------------------------------------------------

def test_one_sign_in_reaches_oidc_and_saml_apps(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    rp = register(make.root, slapd)
    make.created.append(make.dns.app(rp.client_id))
    # OIDC first, then SAML: no password.
    web = Browserish(app.test_client())
    r = sign_in_to(web, rp, s)
    assert r.headers["Location"].startswith(REDIRECT)
    _req, r = visit(web, sp)
    r = follow(web, r)  # no person given: a sign-in page here would stop the way
    assert sp.accept(form_of(r)).session_info()["name_id"].text == s.mail
    # SAML first, then OIDC: no password.
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, s)
    sp.accept(form_of(r))
    r = web.get(rp.authorize_path())
    assert r.status_code == 302 and "code=" in r.headers["Location"]


# -- the gates before any assertion ----------------------------------------------------------

def test_forced_change_and_questions_come_before_any_assertion(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                               tmp_path) -> None:
    s = make.student(level="P3")
    make.root.set_password(s.dn, "Reset-by-ict-55")  # an ICT reset: must change first
    s.password = "Reset-by-ict-55"
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    req_id, r = sign_in_through(web, sp, s)
    assert r.status_code == 200 and "saml-post" not in r.get_data(as_text=True)
    assert "/password" in r.request.path
    # IsPassive while the change is pending: NoPassive, no assertion.
    _req, r = visit(web, sp, is_passive="true")
    r = follow(web, r)
    assert status_of(form_of(r))[-1] == NO_PASSIVE
    with pytest.raises(StatusNoPassive):
        sp.accept(form_of(r))
    web.get("/password")
    web.post("/password", {"current": "Reset-by-ict-55", "new": "Own-choice-77",
                           "again": "Own-choice-77"})
    r = follow(web, web.get("/"))  # back to the waiting request
    resp = sp.accept(form_of(r))
    assert resp.in_response_to == req_id
    # A P5 child with no questions of her own: the questions page first.
    p5 = make.student(level="P5")
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, p5)
    assert "/questions" in r.request.path and "saml-post" not in r.get_data(as_text=True)


def test_a_disabled_child_gets_no_assertion(app, make, slapd, idp_md, tmp_path, root) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, s)
    sp.accept(form_of(r))
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "noon")
    _req, r = visit(web, sp)
    r = follow(web, r)
    assert "saml-post" not in r.get_data(as_text=True) and r.request.path == "/login"
    # The same child cannot sign in again either: the sign-in page, nothing else.
    web = Browserish(app.test_client())
    _req, r = visit(web, sp)
    assert follow(web, r).request.path == "/login"
    r = web.post("/login", {"login_id": s.mail, "password": s.password,
                            "next": r.headers["Location"].split("next=")[-1]})
    assert r.status_code == 200 and "saml-post" not in r.get_data(as_text=True)


def test_the_gate_refuses_a_person_no_longer_active(app, make, slapd, root) -> None:  # type: ignore[no-untyped-def]
    """Between the session's check and the assertion (another instance disabled the child a
    moment ago): the gate reads the person again and refuses."""
    from datetime import UTC, datetime

    from flask import g

    from mimsdir.portal import gates, sessions
    from mimsdir.portal.gates import Outcome

    s = student(make, "P4")
    sp_app = App(client_id="app-x", name="X", protocol="saml", redirect_uris=("https://x/acs",),
                 scopes=(), saml_entity_id="x", saml_metadata="<x/>")
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"left"])], "left")
    now = datetime.now(UTC)
    with app.test_request_context("/saml/continue?t=t"):
        g.mims_session = sessions.Record(
            key="k", subject=s.dn, expires=now + timedelta(hours=1), seen=now,
            data={"who": {"dn": s.dn, "uid": s.uid, "kind": "student"}, "sid": "x"})
        decision = gates.check(sp_app, back="/saml/continue?t=t")
    assert decision.outcome is Outcome.DENIED and decision.reason == "inactive"


def test_an_sp_not_for_this_child_gets_request_denied(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                      tmp_path) -> None:
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path, allowed_levels=("P6",))
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, s)
    form = form_of(r)
    assert status_of(form) == [RESPONDER, REQUEST_DENIED]
    assert "Assertion" not in xml_of(form.fields["SAMLResponse"])
    with pytest.raises(StatusRequestDenied):
        sp.accept(form)
    # IdP-initiated: a page for the child, no assertion.
    r = web.get(f"/saml/init/{sp.app.client_id}")
    assert r.status_code == 403 and "saml-post" not in r.get_data(as_text=True)


def test_force_authn_and_is_passive(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    # IsPassive with nobody signed in: NoPassive, no sign-in page.
    web = Browserish(app.test_client())
    _req, r = visit(web, sp, is_passive="true")
    assert status_of(form_of(follow(web, r)))[-1] == NO_PASSIVE
    _req, r = sign_in_through(web, sp, s)
    sp.accept(form_of(r))
    # ForceAuthn: the sign-in page even though signed in, then the assertion.
    req_id, r = visit(web, sp, force_authn="true")
    back = r.headers["Location"].replace("http://localhost", "")
    r = follow(web, r)
    assert r.request.path == "/login"
    # Coming back without signing in again is not enough.
    assert follow(web, web.get(back)).request.path == "/login"
    before = portal_sids(make, s.dn)
    req_id, r = sign_in_through(web, sp, s, force_authn="true")
    resp = sp.accept(form_of(r))
    assert resp.in_response_to == req_id
    assert resp.session_info()["session_index"] not in before  # a new sign-in


def test_nameid_policy_other_than_email_is_refused(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    _req, r = sign_in_through(web, sp, s)
    sp.accept(form_of(r))
    _req, r = visit(web, sp, nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    assert status_of(form_of(follow(web, r)))[-1] == INVALID_NAMEID_POLICY


# -- what an SP must refuse, and what the portal refuses -------------------------------------

def test_replayed_wrongly_addressed_and_late_responses_fail_at_the_sp(app, make, slapd, idp_md,  # type: ignore[no-untyped-def]
                                                                      tmp_path) -> None:
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    req_id, r = sign_in_through(web, sp, s)
    form = form_of(r)
    # Another SP behind the same address (a different entity ID) expecting this request:
    # the audience is not its own.
    other = make_sp(make, slapd, idp_md, tmp_path, register=False, acs=sp.acs,
                    entity_id="https://other.example.sg/saml/metadata")
    other.outstanding[req_id] = "/"
    with pytest.raises(Exception, match="AudienceRestrictions conditions not satisfied"):
        other.accept(form)
    # Too late: after NotOnOrAfter (5 minutes) the SP refuses it.
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6), tick=False), \
            pytest.raises(ResponseLifetimeExceed):
        sp.accept(form)
    # Changed on the way (the NameID made another child's): the signature no longer holds.
    xml = xml_of(form.fields["SAMLResponse"]).replace(s.mail, "someone.else@students.test.sg")
    forged = type(form)(form.action, {**form.fields,
                                      "SAMLResponse": base64.b64encode(xml.encode()).decode()})
    with pytest.raises(SignatureError):
        sp.accept(forged)
    # Accepted once; the same response again is a replay.
    sp.accept(form)
    with pytest.raises(UnsolicitedResponse):
        sp.accept(form)


def test_requests_the_portal_refuses(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    # An SP that is not registered.
    stranger = make_sp(make, slapd, idp_md, tmp_path, register=False)
    _req, r = visit(web, stranger)
    assert r.status_code == 400 and "saml-post" not in r.get_data(as_text=True)
    sp = make_sp(make, slapd, idp_md, tmp_path)
    # An AssertionConsumerServiceURL that is not in the SP's metadata.
    _req, r = visit(web, sp, assertion_consumer_service_url="https://evil.example/acs")
    assert r.status_code == 400
    # The same AuthnRequest twice (a replay): the second is refused.
    _req, path, _ = sp.login()
    assert web.c.get(path).status_code == 303
    assert web.c.get(path).status_code == 400
    # A signed request whose RelayState was changed on the way: the signature fails, also
    # from an SP whose metadata does not promise to sign (a signature sent must hold).
    signer = make_sp(make, slapd, idp_md, tmp_path, sign_requests=True)
    for who in (signer, sp):
        _req, path, _ = who.login(sign=True, relay_state="lesson-1")
        assert web.c.get(path.replace("lesson-1", "lesson-2")).status_code == 400
    _req, path, _ = sp.login(sign=True, relay_state="lesson-1")
    assert web.c.get(path).status_code == 303
    # An unsigned request from an SP whose metadata says it signs.
    _req, r = visit(web, signer, sign=False)
    assert r.status_code == 400
    _req, r = visit(web, signer, BINDING_HTTP_POST, sign=False)
    assert r.status_code == 400
    # A signed POST whose XML was changed after signing.
    _req, path, fields = signer.login(BINDING_HTTP_POST, sign=True)
    xml = xml_of(fields["SAMLRequest"]).replace('ForceAuthn="false"', 'ForceAuthn="true"')
    if 'ForceAuthn="true"' not in xml:
        xml = xml.replace("<ns0:AuthnRequest ", '<ns0:AuthnRequest ForceAuthn="true" ', 1)
    fields["SAMLRequest"] = base64.b64encode(xml.encode()).decode()
    assert web.c.post(path, data=fields).status_code == 400
    # A request too old to be taken (its IssueInstant 10 minutes ago).
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=10), tick=False):
        _req, path, _ = sp.login()
    assert web.c.get(path).status_code == 400
    # A token that names no waiting request.
    assert web.get("/saml/continue?t=not-a-token").status_code == 400
    # An SP that was removed after its request arrived gets nothing.
    _req, r = visit(web, sp)
    assert r.status_code == 303
    Registry(make.root, make.dns).remove(sp.app.client_id)
    r = web.get(r.headers["Location"].replace("http://localhost", ""))
    assert r.status_code == 400 and "saml-post" not in r.get_data(as_text=True)


def test_a_waiting_request_is_answered_once(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path)
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    _req, r = visit(web, sp)
    where = r.headers["Location"].replace("http://localhost", "")
    assert "saml-post" in web.get(where).get_data(as_text=True)
    assert web.get(where).status_code == 400


def test_more_requests_the_portal_refuses(app, make, slapd, idp_md, tmp_path, root) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    sp = make_sp(make, slapd, idp_md, tmp_path)
    # A deflated bomb (10 MB of zeros in a few KB) is refused without inflating it all.
    bomb = base64.b64encode(zlib.compress(b"\0" * 10_000_000)[2:-4]).decode()
    assert web.get("/saml/sso?" + urlencode({"SAMLRequest": bomb})).status_code == 400
    # A RelayState longer than the portal carries.
    _req, path, _ = sp.login(relay_state="x" * 1100)
    assert web.c.get(path).status_code == 400
    # A query signed with RSA-SHA1.
    signer = make_sp(make, slapd, idp_md, tmp_path, sign_requests=True)
    _req, path, _ = signer.login(sign=True, sigalg="http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    assert web.c.get(path).status_code == 400
    # An ACS URL registered but not in the SP's metadata (the entry edited in the
    # directory): refused, the metadata must list it too.
    extra = "https://" + urlsplit(sp.acs).netloc + "/other-acs"
    root.modify(make.dns.app(sp.app.client_id),
                [(ldap.MOD_ADD, "mimsAppRedirectUri", [extra.encode()])], "t")
    _req, r = visit(web, sp, assertion_consumer_service_url=extra)
    assert r.status_code == 400
    # An ACS URL in the metadata but no longer registered (the entry edited in the
    # directory): refused, the registration is what counts.
    root.modify(make.dns.app(sp.app.client_id),
                [(ldap.MOD_REPLACE, "mimsAppRedirectUri", [b"https://elsewhere.example/acs"])],
                "t")
    _req, r = visit(web, sp)
    assert r.status_code == 400


def test_only_keys_in_the_sps_metadata_count(app, make, slapd, idp_md, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An SP whose registered metadata has no key cannot sign its requests with a
    certificate it puts in the request itself."""
    s = student(make, "P4")
    sp = make_sp(make, slapd, idp_md, tmp_path, register=False)
    xml = re.sub(r"<ns\d+:KeyDescriptor.*?</ns\d+:KeyDescriptor>", "", sp.app.saml_metadata or "",
                 flags=re.S)
    assert "KeyDescriptor" not in xml
    Registry(make.root, make.dns).add(dataclasses.replace(sp.app, saml_metadata=xml))
    make.created.append(make.dns.app(sp.app.client_id))
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    _req, r = visit(web, sp, BINDING_HTTP_POST, sign=True)
    assert r.status_code == 400
    _req, r = visit(web, sp, BINDING_HTTP_POST, sign=False)
    assert r.status_code == 303  # unsigned, as its metadata allows


def test_form_action_widens_to_origins_only() -> None:
    from mimsdir.portal.security import CSP, csp

    assert csp(["https://sp.example.sg"]).count("form-action 'self' https://sp.example.sg;") == 1
    assert csp(["https://[::1]:8443"]) != CSP
    for bad in ("https://x.example; script-src *", "javascript:alert(1)", "https://x y", "*"):
        assert csp([bad]) == CSP


def test_a_deflated_message_is_inflated_only_so_far() -> None:
    """10 MB of zeros deflate to 10 KB: the IdP stops inflating at 64 KiB."""
    import tracemalloc

    from mimsdir.portal.saml.idp import BINDING_HTTP_REDIRECT as REDIRECT_BINDING
    from mimsdir.portal.saml.idp import Refused, decode

    bomb = base64.b64encode(zlib.compress(b"\0" * 10_000_000)[2:-4]).decode()
    tracemalloc.start()
    try:
        with pytest.raises(Refused, match="too large"):
            decode(bomb, REDIRECT_BINDING)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
