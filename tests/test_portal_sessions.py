"""Sessions that end: server-side records, a cookie with nothing personal in it, and every
way a session must end (issue 8, item 4). Flask's test client on the session's real slapd."""

from __future__ import annotations

import base64
import json
import time
import zlib
from datetime import UTC, datetime, timedelta

import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.errors import NotFound
from mimsdir.gtime import format_gtime
from mimsdir.ldapio import filter_eq, first
from tests.portal_helpers import Browserish, give_answers, make_app, text


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


def stored_sessions(root, dns, subject: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [dn for dn, _ in root.search(dns.sessions, ldap.SCOPE_ONELEVEL,
                                        filter_eq("mimsSessionSubject", subject), ["1.1"], "t")]


def signed_in(app, person) -> Browserish:  # type: ignore[no-untyped-def]
    web = Browserish(app.test_client())
    r = web.login(person.mail, person.password)
    assert r.status_code == 302, text(r)
    start = web.get("/")
    assert start.status_code == 302
    assert web.get(start.headers["Location"]).status_code == 200  # its page's CSRF token
    return web


def copy_of(app, web: Browserish) -> Browserish:  # type: ignore[no-untyped-def]
    """A classmate's browser holding a copy of the cookie."""
    thief = Browserish(app.test_client())
    thief.c.set_cookie("mims_session", web.c.get_cookie("mims_session").value)
    return thief


def home_status(web: Browserish, path: str = "/home") -> int:
    return web.get(path).status_code


def cookie_payload(value: str) -> dict[str, object]:
    """What the signed cookie says (signed, not encrypted: anyone holding it can read it)."""
    body = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if value.startswith("."):
        raw = zlib.decompress(raw)
    return json.loads(raw)  # type: ignore[no-any-return]


def test_cookie_is_a_browser_session_cookie_with_nothing_personal(app, make) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P4", givenName=[b"Siti"])
    web = Browserish(app.test_client())
    r = web.login(s.mail, s.password)
    (set_cookie,) = [c for c in r.headers.getlist("Set-Cookie")
                     if c.startswith("mims_session=")]
    assert "Expires=" not in set_cookie and "Max-Age=" not in set_cookie
    payload = cookie_payload(web.c.get_cookie("mims_session").value)
    assert set(payload) <= {"sid", "csrf_token", "lang", "notice"}
    dumped = json.dumps(payload)
    for personal in (s.uid, s.mail, s.dn, "Student"):
        assert personal.lower() not in dumped.lower()


def test_sign_out_ends_every_session_of_the_person(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = signed_in(app, s)
    other_browser = signed_in(app, s)
    thief = copy_of(app, web)
    assert home_status(thief) == 200
    assert len(stored_sessions(root, dns, s.dn)) == 2
    web.post("/logout", {})
    assert home_status(thief) == 302 and home_status(other_browser) == 302
    assert stored_sessions(root, dns, s.dn) == []


def test_ict_reset_and_device_change_end_sessions(app, make, root, slapd) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.staff.credentials import reset_batch
    from mimsdir.staff.model import STUDENT_ATTRS, parse_student

    s = make.student(level="P3")
    web = signed_in(app, s)
    record = parse_student(s.dn, root.get(s.dn, list(STUDENT_ATTRS), "t") or {})
    result = reset_batch(root, slapd, [record])  # `mimsdir student reset-password`
    assert result.changed == [record]
    assert home_status(web) == 302
    assert "signed out" in text(web.get("/login"))
    # A change made elsewhere (a school laptop) ends the portal's sessions too: the portal
    # compares pwdChangedTime, which slapd keeps to the second.
    s.password = "Settled-pw-123"
    root.set_password(s.dn, s.password)
    root.modify(s.dn, [(ldap.MOD_DELETE, "pwdReset", None)], "settle")
    web = signed_in(app, s)
    time.sleep(1.05 - (time.time() % 1))  # the next second of pwdChangedTime
    with network_conn(slapd) as device:
        device.bind(s.dn, s.password)
        device.set_password(s.dn, "Changed-at-laptop-9", old=s.password)
    assert home_status(web) == 302


def test_disabled_student_and_staff_lose_their_sessions(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    t = make.teacher("3A")
    web_s, web_t = signed_in(app, s), signed_in(app, t)
    assert home_status(web_t, "/teacher") == 200
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "disable")
    root.modify(t.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "disable")
    assert home_status(web_s) == 302
    assert home_status(web_t, "/teacher") == 302
    # And a disabled teacher cannot sign in again (nor reset anyone).
    again = Browserish(app.test_client())
    assert again.login(t.mail, t.password).status_code == 200
    assert home_status(again, "/teacher") == 302


def test_own_password_change_ends_the_other_sessions_only(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = signed_in(app, s)
    other = signed_in(app, s)
    web.get("/password")
    r = web.post("/password", {"current": s.password, "new": "Brand-new-pw-4",
                               "again": "Brand-new-pw-4"})
    assert r.status_code == 302
    assert home_status(web) == 200
    assert home_status(other) == 302
    assert len(stored_sessions(root, dns, s.dn)) == 1


def test_teacher_reset_and_unlock_end_the_students_sessions(app, make) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher("4A")
    s = make.student(level="P4", class_name="4A", teacher=teacher)
    give_answers(make.root, s.dn)
    kid = signed_in(app, s)
    t = signed_in(app, teacher)
    t.get("/teacher")
    t.post("/teacher/unlock", {"uid": s.uid})
    assert home_status(kid) == 302
    kid = signed_in(app, s)
    t.get("/teacher")
    r = t.post("/teacher/reset", {"uid": s.uid})
    assert r.status_code == 200
    assert home_status(kid) == 302


def test_absolute_lifetime_is_enforced_whatever_the_activity(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = signed_in(app, s)
    (dn,) = stored_sessions(root, dns, s.dn)
    expires = root.get(dn, ["mimsSessionExpires"], "t")
    at = datetime.now(UTC)
    # portal.session_hours after sign-in, not renewed by requests.
    stored_end = first(expires or {}, "mimsSessionExpires")
    assert stored_end and stored_end <= format_gtime(at + timedelta(hours=8, minutes=1))
    assert home_status(web) == 200
    assert first(root.get(dn, ["mimsSessionExpires"], "t") or {}, "mimsSessionExpires") \
        == stored_end
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsSessionExpires",
                      [format_gtime(at - timedelta(seconds=1)).encode()])], "t")
    assert home_status(web) == 302
    assert stored_sessions(root, dns, s.dn) == []


def test_a_planted_session_is_replaced_at_sign_in(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    web = signed_in(app, s)
    before = web.c.get_cookie("mims_session").value
    (old,) = stored_sessions(root, dns, s.dn)
    web.login(s.mail, s.password)  # signing in again, e.g. on a page left open
    assert web.c.get_cookie("mims_session").value != before
    (new,) = stored_sessions(root, dns, s.dn)
    assert new != old
    assert cookie_payload(before)["sid"] != cookie_payload(
        web.c.get_cookie("mims_session").value)["sid"]


def test_session_record_never_holds_the_token(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    """A directory reader (a backup, the replicator) cannot turn a record into a cookie."""
    s = make.student(level="P3")
    web = signed_in(app, s)
    token = cookie_payload(web.c.get_cookie("mims_session").value)["sid"]
    (dn,) = stored_sessions(root, dns, s.dn)
    entry = root.get(dn, ["*"], "t") or {}
    assert str(token) not in dn and all(str(token).encode() not in v
                                         for vs in entry.values() for v in vs)


def test_expired_sessions_are_purged(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.portal.directory import PortalDirectory

    s = make.student(level="P3")
    signed_in(app, s)
    (dn,) = stored_sessions(root, dns, s.dn)
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsSessionExpires", [b"20200101000000Z"])], "t")
    d = PortalDirectory(app.config["MIMS"])
    try:
        assert d.purge_sessions(datetime.now(UTC)) >= 1
    finally:
        d.close()
    assert stored_sessions(root, dns, s.dn) == []


def test_nobody_but_the_portal_reads_sessions(app, make, slapd, dns) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import conn_as, service_conn

    s = make.student(level="P3")
    signed_in(app, s)
    def sees(c) -> list[object]:  # type: ignore[no-untyped-def]
        try:
            return c.search(dns.sessions, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["*"], "t")
        except NotFound:  # not even the container
            return []

    for who in ("device", "sync"):
        with service_conn(slapd, who) as c:
            assert sees(c) == []
    with conn_as(slapd, s.dn, s.password) as c:
        assert sees(c) == []
    with service_conn(slapd, "sspr") as c:
        assert sees(c)
