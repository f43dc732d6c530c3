"""SSPR rules of issue 8 (items 3, 4 and 8): attempts counted atomically before the answers
are checked, a count that decays, questions kept until a reset succeeds, a verified state
that expires and works once, the same state for unknown login IDs on every instance."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.gtime import format_gtime
from mimsdir.ldapio import first, values
from mimsdir.portal import sspr
from tests.portal_helpers import ANSWERS, Browserish, asked_questions, give_answers, make_app, text
from tests.test_portal_flows import BY_TEXT, answer, start_sspr


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


def ago(**delta: float) -> bytes:
    return format_gtime(datetime.now(UTC) - timedelta(**delta)).encode()


def test_concurrent_wrong_answers_are_checked_once(slapd, make, root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.portal.directory import PortalDirectory
    from mimsdir.portal.views import forgot

    # The portal's own budget per login ID would stop some of them earlier: this is about
    # the directory's count.
    app = make_app(slapd, account_limit="1000 per minute")

    s = make.student(level="P5")
    give_answers(root, s.dn)
    checks: list[str] = []
    real_check = forgot.verify_answers
    real_reserve = PortalDirectory.sspr_reserve
    n = 12
    # Every attempt has read the state and computed its count before any of them writes:
    # the worst interleaving, every time.
    barrier = threading.Barrier(n)

    def counted(*args, **kw):  # type: ignore[no-untyped-def]
        checks.extend(q for q, _a in args[2])
        return real_check(*args, **kw)

    def in_step(self, *args, **kw):  # type: ignore[no-untyped-def]
        barrier.wait(20)
        return real_reserve(self, *args, **kw)

    monkeypatch.setattr(forgot, "verify_answers", counted)
    monkeypatch.setattr(PortalDirectory, "sspr_reserve", in_step)
    clients = [Browserish(app.test_client()) for _ in range(n)]
    pages = [start_sspr(c, s.mail) for c in clients]
    results: list[int] = []

    def attack(c: Browserish, page) -> None:  # type: ignore[no-untyped-def]
        data = {f"a{i}": "wrong" for i in range(len(asked_questions(page)))}
        results.append(c.post("/forgot/questions", data).status_code)

    threads = [threading.Thread(target=attack, args=(c, p)) for c, p in zip(clients, pages,
                                                                           strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    e = root.get(s.dn, ["mimsSsprFailures"], "t") or {}
    assert values(e, "mimsSsprFailures") == ["1"]
    # One attempt had its two answers checked; every other one was told to wait.
    assert len(checks) == 2
    assert sorted(results) == [200] + [429] * (n - 1)


def test_failures_decay(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    give_answers(root, s.dn)
    # Four failures, the last 150 minutes ago, the wait over: two are forgiven (one an hour).
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprFailures", [b"4"]),
                       (ldap.MOD_REPLACE, "mimsSsprLastFailure", [ago(minutes=150)]),
                       (ldap.MOD_REPLACE, "mimsSsprLockedUntil", [ago(minutes=90)])], "t")
    web = Browserish(app.test_client())
    r = answer(web, start_sspr(web, s.mail), right=False)
    assert "15 minutes" in text(r)  # the 3rd failure in a row, not the 5th
    assert values(root.get(s.dn, ["mimsSsprFailures"], "t") or {}, "mimsSsprFailures") == ["3"]


def test_one_wrong_answer_an_hour_does_not_keep_a_child_out(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    for hours in range(1, 8):  # a classmate tries once an hour, all day
        root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprLastFailure", [ago(minutes=61)]),
                           (ldap.MOD_REPLACE, "mimsSsprLockedUntil", [ago(minutes=1)])], "t")
        r = answer(web, start_sspr(web, s.mail), right=False)
        assert "do not match" in text(r), hours
    waits = values(root.get(s.dn, ["mimsSsprFailures"], "t") or {}, "mimsSsprFailures")
    assert waits == ["1"]  # the wait stays at its first step: 1 minute


def test_questions_stay_until_a_reset_succeeds(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    asked = asked_questions(start_sspr(web, s.mail))
    stored = first(root.get(s.dn, ["mimsSsprAsked"], "t") or {}, "mimsSsprAsked")
    assert stored
    # A day later, with no attempt in between: still the same two questions.
    old = sspr.Asked.decode(stored)
    assert old is not None
    day_old = sspr.Asked(old.at - timedelta(days=1), old.qids).encode()
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprAsked", [day_old.encode()])], "t")
    assert asked_questions(start_sspr(Browserish(app.test_client()), s.mail)) == asked
    # Answering right is not yet a reset: they stay. The reset clears them.
    r = answer(web, start_sspr(web, s.mail))
    assert r.status_code == 302
    assert first(root.get(s.dn, ["mimsSsprAsked"], "t") or {}, "mimsSsprAsked") == day_old
    web.get("/forgot/password")
    r = web.post("/forgot/password", {"new": "Fresh-start-42", "again": "Fresh-start-42"})
    assert "Your password is changed" in text(r)
    assert first(root.get(s.dn, ["mimsSsprAsked"], "t") or {}, "mimsSsprAsked") is None


def right_answers(web: Browserish, mail: str):  # type: ignore[no-untyped-def]
    r = answer(web, start_sspr(web, mail))
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot/password")
    return r


def test_verified_state_works_once(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    right_answers(web, s.mail)
    copy = Browserish(app.test_client())
    copy.c.set_cookie("mims_session", web.c.get_cookie("mims_session").value)
    copy.get("/forgot/password")
    web.get("/forgot/password")
    r = web.post("/forgot/password", {"new": "First-choice-81", "again": "First-choice-81"})
    assert "Your password is changed" in text(r)
    r = copy.post("/forgot/password", {"new": "Second-choice-82", "again": "Second-choice-82"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot")

    with network_conn(app.config["MIMS"]) as c:
        assert c.bind_ppolicy(s.dn, "First-choice-81").ok
        assert not c.bind_ppolicy(s.dn, "Second-choice-82").ok


def test_verified_state_works_once_even_at_the_same_moment(app, make, root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two requests that both loaded the verified state: only one may use it."""
    from mimsdir.portal.directory import PortalDirectory

    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    right_answers(web, s.mail)
    copy = Browserish(app.test_client())
    copy.c.set_cookie("mims_session", web.c.get_cookie("mims_session").value)
    web.get("/forgot/password")
    copy.get("/forgot/password")
    barrier = threading.Barrier(2)
    real = PortalDirectory.session_claim

    def in_step(self, rec, name):  # type: ignore[no-untyped-def]
        barrier.wait(10)  # both have read the state before either claims it
        return real(self, rec, name)

    monkeypatch.setattr(PortalDirectory, "session_claim", in_step)
    out: dict[str, str] = {}

    def post(name: str, c: Browserish, pw: str) -> None:
        out[name] = text(c.post("/forgot/password", {"new": pw, "again": pw}))

    threads = [threading.Thread(target=post, args=("a", web, "Racing-pw-0001")),
               threading.Thread(target=post, args=("b", copy, "Racing-pw-0002"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum("Your password is changed" in v for v in out.values()) == 1


def test_verified_state_expires(app, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    import json

    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    right_answers(web, s.mail)
    (dn, attrs), = [(d, a) for d, a in root.search(dns.sessions, ldap.SCOPE_ONELEVEL,
                                                   "(mimsSessionData=*)", ["mimsSessionData"],
                                                   "t")
                    if s.dn in first(a, "mimsSessionData") or ""]
    data = json.loads(first(attrs, "mimsSessionData") or "{}")
    data["sspr"]["ok_at"] -= 6 * 60  # answered right six minutes ago (the limit is five)
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsSessionData", [json.dumps(data).encode()])], "t")
    r = web.get("/forgot/password")
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot")


def test_unknown_login_state_lives_in_the_directory(slapd, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    """Two portal instances (two apps) agree on the wait of an unknown login ID."""
    mail = "nobody.here@students.test.sg"
    one = Browserish(make_app(slapd).test_client())
    page = start_sspr(one, mail)
    r = one.post("/forgot/questions", {f"a{i}": "x" for i in range(len(asked_questions(page)))})
    assert "1 minute" in text(r)
    two = Browserish(make_app(slapd).test_client())
    assert start_sspr(two, mail).status_code == 429
    states = root.search(dns.sessions, ldap.SCOPE_ONELEVEL, "(cn=sspr-*)",
                         ["mimsSsprFailures", "cn"], "t")
    assert any(values(a, "mimsSsprFailures") == ["1"] for _, a in states)
    assert all(mail not in str(a) and mail not in d for d, a in states)


def test_answer_form_is_disabled_during_the_back_off(app, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    r = answer(web, start_sspr(web, s.mail), right=False)
    body = r.get_data(as_text=True)
    assert "<fieldset" in body and " disabled>" in body
    right = {f"a{i}": ANSWERS[BY_TEXT[q]] for i, q in enumerate(asked_questions(r))}
    # Posting anyway (the form is only disabled in the browser): the directory says wait.
    assert web.post("/forgot/questions", right).status_code == 429


def test_unknown_login_id_keeps_its_questions_after_its_state_expires(slapd, root, dns) -> None:  # type: ignore[no-untyped-def]
    """Its state entry expires (2 days), a student's questions stay until a reset: the pair
    shown for an unknown ID must not change when its entry goes, or waiting would tell."""
    import uuid

    mail = f"ghost-{uuid.uuid4().hex[:10]}@students.test.sg"
    web = Browserish(make_app(slapd).test_client())
    first_pair = asked_questions(start_sspr(web, mail))
    for _ in range(6):  # a random redraw would repeat the pair 6 times with p = 1/729
        for dn, _a in root.search(dns.sessions, ldap.SCOPE_ONELEVEL, "(cn=sspr-*)", ["1.1"],
                                  "t"):
            root.delete(dn, "t")  # every state entry expired and purged
        again = Browserish(make_app(slapd).test_client())
        assert asked_questions(start_sspr(again, mail)) == first_pair
