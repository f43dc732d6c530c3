"""The portal's security list, each item tested with Flask's test client on a real slapd."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.gtime import format_gtime
from mimsdir.ldapio import filter_eq
from tests.portal_helpers import WRONG, Browserish, make_app, text


def session_dns(root, dns, subject: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The stored sessions of a person."""
    return [dn for dn, _ in root.search(dns.sessions, ldap.SCOPE_ONELEVEL,
                                        filter_eq("mimsSessionSubject", subject), ["1.1"], "t")]


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


@pytest.fixture
def web(app):  # type: ignore[no-untyped-def]
    return Browserish(app.test_client())


def test_headers_on_every_page(web) -> None:  # type: ignore[no-untyped-def]
    for path in ("/login", "/forgot", "/nowhere"):
        r = web.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["Cache-Control"] == "no-store"
    body = web.get("/login").get_data(as_text=True)
    assert "<script>" not in body and " style=" not in body and "onclick" not in body


def test_session_cookie_flags(slapd, make) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    for secure in (False, True):
        web = Browserish(make_app(slapd, secure_cookies=secure).test_client())
        r = web.login(s.mail, s.password)
        cookies = {c.split("=", 1)[0]: c for c in r.headers.getlist("Set-Cookie")}
        # Lax: an application's top-level link to /oauth/authorize must carry the session
        # (single sign-on); the device cookie is only ever needed on the portal's own posts.
        assert "HttpOnly" in cookies["mims_session"]
        assert "SameSite=Lax" in cookies["mims_session"]
        assert "HttpOnly" in cookies["mims_device"]
        assert "SameSite=Strict" in cookies["mims_device"]
        for cookie in cookies.values():
            assert ("Secure" in cookie) is secure


def test_csrf_token_required(web) -> None:  # type: ignore[no-untyped-def]
    web.get("/login")
    r = web.c.post("/login", data={"login_id": "x@y.sg", "password": "whatever"})
    assert r.status_code == 400 and "expired" in text(r)
    r = web.c.post("/login", data={"login_id": "x@y.sg", "password": "x", "csrf_token": "bad"})
    assert r.status_code == 400


def test_session_rotated_at_sign_in_and_old_cookie_is_worthless(app, make) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = Browserish(app.test_client())
    web.get("/login")
    before = web.c.get_cookie("mims_session").value
    r = web.login(s.mail, s.password)
    assert r.status_code == 302
    after = web.c.get_cookie("mims_session").value
    assert after != before
    assert web.get("/home").status_code == 200
    attacker = Browserish(app.test_client())
    attacker.c.set_cookie("mims_session", before)
    r = attacker.get("/home")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_idle_timeout(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = Browserish(app.test_client())
    web.login(s.mail, s.password)
    assert web.get("/home").status_code == 200
    (dn,) = session_dns(root, dns, s.dn)
    # Last seen 16 minutes ago (timeout: 15): the server's record says so, not the cookie.
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsSessionSeen",
                      [format_gtime(datetime.now(UTC) - timedelta(minutes=16)).encode()])], "t")
    r = web.get("/home")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert "away for a while" in text(web.get("/login"))
    assert web.get("/home").status_code == 302
    assert session_dns(root, dns, s.dn) == []


@pytest.mark.parametrize("evil", ["*", "*)(mail=*", "*)(|(objectClass=*", "\\2a", "a*@x",
                                  "(uid=*)"])
def test_filter_injection_finds_nobody(web, make, evil) -> None:  # type: ignore[no-untyped-def]
    make.student(level="P3")
    r = web.login(evil, "whatever")
    assert r.status_code == 200 and WRONG in text(r)
    web.get("/forgot")
    # Unique per test: a login ID's SSPR state outlives the test in the session's slapd.
    web.post("/forgot", {"login_id": f"{evil}{make.school}"})
    r = web.get("/forgot/questions")
    assert r.status_code == 200  # the same pages as for anyone: nothing found, nothing said


def test_unknown_login_looks_like_a_wrong_password(web, make) -> None:  # type: ignore[no-untyped-def]
    """The same words (the time taken: tests/test_portal_timing.py)."""
    s = make.student(level="P3")
    known = web.login(s.mail, "wrong-password")
    unknown = web.login("nobody@students.test.sg", "wrong-password")
    assert text(known).replace(s.mail, "X") == text(unknown).replace(
        "nobody@students.test.sg", "X")


def test_rate_limit_per_address(slapd) -> None:  # type: ignore[no-untyped-def]
    web = Browserish(make_app(slapd, address_limit="3 per minute").test_client())
    codes = [web.login("someone@x.sg", "x").status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    other = make_app(slapd, address_limit="3 per minute").test_client()
    assert other.get("/login", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_no_secret_in_logs_or_later_pages(app, make, root, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    s = make.student(level="P4")
    root.set_password(s.dn, "Reset-by-ict-77")
    web = Browserish(app.test_client())
    web.login(s.mail, "Reset-by-ict-77")
    web.get("/password")
    r = web.post("/password", {"current": "Reset-by-ict-77", "new": "Kid-chosen-555",
                               "again": "Kid-chosen-555"})
    assert r.status_code == 302
    web.get("/questions")
    r = web.post("/questions", {"q0": "first-soft-toy", "a0": "Purple Elephant",
                                "q1": "first-holiday", "a1": "Sentosa Island",
                                "q2": "youngest-cousin", "a2": "Baby Ahmad",
                                "current": "Kid-chosen-555"})
    assert r.status_code == 302
    pages = text(web.get("/home")) + text(web.get("/questions"))
    logs = caplog.text
    for secret in ("Reset-by-ict-77", "Kid-chosen-555", "Purple Elephant", "Sentosa Island",
                   "Baby Ahmad"):
        assert secret not in logs and secret not in pages


def test_error_page_has_a_reference_and_the_log_the_detail(app, web, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.portal import directory as portal_directory

    def boom(self, login_id):  # type: ignore[no-untyped-def]
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(portal_directory.PortalDirectory, "find_person", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.testing = False
    r = web.login("a@b.sg", "Secret-typed-1")
    assert r.status_code == 500
    ref = re.search(r"Reference number: ([0-9A-F]{8})", text(r))
    assert ref and "synthetic" not in text(r) and "Traceback" not in text(r)
    assert ref.group(1) in caplog.text and "synthetic failure" in caplog.text
    assert "Secret-typed-1" not in caplog.text


def test_healthz_and_metrics(slapd, app, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = web.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    web.login("nobody@x.sg", "x")
    assert web.get("/metrics").status_code == 404  # its own listener: test_portal_proxy.py
    from werkzeug.test import Client

    from mimsdir.portal.serving import metrics_wsgi

    m = Client(metrics_wsgi(app)).get("/metrics").get_data(as_text=True)
    assert "mims_portal_requests_total" in m and "mims_portal_failures_total" in m
    assert "mims_portal_directory_seconds_bucket" in m
    import dataclasses

    broken = dataclasses.replace(slapd, ldap=dataclasses.replace(slapd.ldap,
                                                                 uri="ldap://127.0.0.1:1"))
    from mimsdir.portal import create_app

    r = create_app(broken, testing=True).test_client().get("/healthz")
    assert r.status_code == 503


def test_directory_down_is_a_friendly_503(slapd) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from mimsdir.portal import create_app

    broken = dataclasses.replace(slapd, ldap=dataclasses.replace(slapd.ldap,
                                                                 uri="ldap://127.0.0.1:1"))
    web = Browserish(create_app(broken, testing=True).test_client())
    r = web.login("someone@x.sg", "x")
    assert r.status_code == 503 and "try again" in text(r)


def test_open_redirect_refused(web) -> None:  # type: ignore[no-untyped-def]
    for target in ("//evil.example/x", "https://evil.example", "/\\evil"):
        r = web.get(f"/lang/ms?next={target}")
        assert r.status_code == 302 and r.headers["Location"] in ("/", "http://localhost/")
    r = web.get("/lang/ms?next=/forgot")
    assert r.headers["Location"].endswith("/forgot")


def test_disabled_student_cannot_sign_in(web, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"left"])], "left")
    assert WRONG in text(web.login(s.mail, s.password))
    with network_conn(web.c.application.config["MIMS"]) as c:
        assert not c.bind_ppolicy(s.dn, s.password).ok
