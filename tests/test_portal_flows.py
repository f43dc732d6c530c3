"""The portal's flows end to end with Flask's test client and the session's real slapd."""

from __future__ import annotations

import ldap
import pytest

from mimsdir.challenge import ChallengeHasher, decode_challenge
from mimsdir.connect import network_conn
from mimsdir.ldapio import first, values
from tests.portal_helpers import ANSWERS, Browserish, asked_questions, give_answers, make_app, text

QUESTION_TEXT = {
    "first-soft-toy": "What is the name of your first soft toy?",
    "first-holiday": "Where did you go for your first holiday?",
    "youngest-cousin": "What is the name of your youngest cousin?",
}
BY_TEXT = {v: k for k, v in QUESTION_TEXT.items()}


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


@pytest.fixture
def web(app):  # type: ignore[no-untyped-def]
    return Browserish(app.test_client())


def bind(cfg, dn, pw):  # type: ignore[no-untyped-def]
    with network_conn(cfg) as c:
        return c.bind_ppolicy(dn, pw)


def start_sspr(web, mail):  # type: ignore[no-untyped-def]
    web.get("/forgot")
    web.post("/forgot", {"login_id": mail})
    return web.get("/forgot/questions")


def answer(web, page, right=True):  # type: ignore[no-untyped-def]
    asked = asked_questions(page)
    data = {f"a{i}": (ANSWERS[BY_TEXT[q]] if right else "wrong answer")
            for i, q in enumerate(asked)}
    return web.post("/forgot/questions", data)


def test_sspr_reset_then_device_bind(slapd, make, root, web) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5", password="Forgotten-pw-1")
    give_answers(root, s.dn)
    # Locked in the directory too: SSPR clears it.
    for _ in range(3):
        bind(slapd, s.dn, "nope")
    page = start_sspr(web, s.mail)
    assert len(asked_questions(page)) == 2
    r = answer(web, page)
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot/password")
    web.get("/forgot/password")
    r = web.post("/forgot/password", {"new": "Short", "again": "Short"})
    assert "too short" in text(r)
    r = web.post("/forgot/password", {"new": "My-new-pass-9", "again": "My-new-pass-9"})
    assert "Your password is changed" in text(r)
    # A device-style bind with the new password: accepted, no must-change, not locked.
    out = bind(slapd, s.dn, "My-new-pass-9")
    assert out.ok and not out.must_change
    e = root.get(s.dn, ["pwdReset", "pwdAccountLockedTime", "pwdFailureTime",
                        "mimsSsprFailures", "mimsSsprAsked"], "check")
    assert e == {}
    # The audit trail has the reset, by the portal's service account.
    res = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL, f"(reqDN={s.dn})",
                      ["reqAuthzID", "reqType"], "audit")
    assert any("cn=sspr" in first(a, "reqAuthzID") for _, a in res)


def test_sspr_questions_stay_the_same_and_back_off_grows(slapd, make, root, web) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P4")
    give_answers(root, s.dn)
    first_page = start_sspr(web, s.mail)
    asked = asked_questions(first_page)
    for _ in range(3):  # refreshing does not shop for other questions
        assert asked_questions(web.get("/forgot/questions")) == asked
    r = answer(web, first_page, right=False)
    assert "do not match" in text(r) and "1 minute" in text(r)
    e = root.get(s.dn, ["mimsSsprFailures", "mimsSsprLockedUntil"], "check")
    assert values(e, "mimsSsprFailures") == ["1"]
    r = web.get("/forgot/questions")
    assert r.status_code == 429 and "wait" in text(r)
    # The back-off window ends (simulated): the same questions, and a longer back-off next.
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprLockedUntil", [b"20200101000000Z"])], "t")
    page = web.get("/forgot/questions")
    assert asked_questions(page) == asked
    r = answer(web, page, right=False)
    assert "5 minutes" in text(r)
    # A second portal instance sees the same state: it lives in the directory.
    other = Browserish(make_app(slapd).test_client())
    assert start_sspr(other, s.mail).status_code == 429


def test_sspr_unknown_login_walks_the_same_pages(web) -> None:  # type: ignore[no-untyped-def]
    page = start_sspr(web, "nobody.at.all@students.test.sg")
    asked = asked_questions(page)
    assert len(asked) == 2
    assert asked_questions(web.get("/forgot/questions")) == asked
    r = web.post("/forgot/questions", {"a0": "x", "a1": "y"})
    assert "do not match" in text(r) and "1 minute" in text(r)
    assert web.get("/forgot/questions").status_code == 429


def test_teacher_clears_back_off(slapd, make, root, web, app) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher("5A")
    s = make.student(level="P5", class_name="5A", teacher=teacher)
    give_answers(root, s.dn)
    answer(web, start_sspr(web, s.mail), right=False)
    assert start_sspr(web, s.mail).status_code == 429
    t = Browserish(app.test_client())
    t.login(teacher.mail, teacher.password)
    page = t.get("/teacher")
    assert "Too many wrong answers" in text(page)
    r = t.post("/teacher/unlock", {"uid": s.uid})
    assert r.status_code == 302
    assert "Unlocked" in text(t.get("/teacher"))
    assert start_sspr(Browserish(app.test_client()), s.mail).status_code == 200


def test_ict_reset_forces_a_change(slapd, make, root, web) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    root.set_password(s.dn, "Default-4821")  # what `mimsdir student reset-password` does
    r = web.login(s.mail, "Default-4821")
    assert r.status_code == 302
    r = web.get("/")
    assert r.headers["Location"].endswith("/password")
    assert web.get("/home").headers["Location"].endswith("/password")  # nothing else first
    page = web.get("/password")
    assert "Choose your own password" in text(page)
    r = web.post("/password", {"current": "Default-4821", "new": "Mine-only-77",
                               "again": "Mine-only-77x"})
    assert "not the same" in text(r)
    r = web.post("/password", {"current": "Wrong-default", "new": "Mine-only-77",
                               "again": "Mine-only-77"})
    assert "slip" in text(r)
    r = web.post("/password", {"current": "Default-4821", "new": "Default-4821",
                               "again": "Default-4821"})
    assert "used this password before" in text(r)
    r = web.post("/password", {"current": "Default-4821", "new": "Mine-only-77",
                               "again": "Mine-only-77"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/home")
    assert web.get("/home").status_code == 200
    out = bind(slapd, s.dn, "Mine-only-77")
    assert out.ok and not out.must_change


def test_p4_with_card_answers_must_set_own(slapd, make, root, web) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P4", mimsQnaMustChange=[b"TRUE"])
    give_answers(root, s.dn, origin="card")
    web.login(s.mail, s.password)
    assert web.get("/").headers["Location"].endswith("/questions")
    assert web.get("/home").headers["Location"].endswith("/questions")
    page = web.get("/questions")
    # Even moments after sign-in, the password is asked: on a shared computer the next
    # child must not set questions (and then reset the password with them) without it.
    assert "Set your own questions" in text(page) and 'name="current"' in \
        page.get_data(as_text=True)
    login_local = s.mail.split("@")[0]
    bad = {"q0": "first-soft-toy", "a0": "ab", "q1": "first-soft-toy", "a1": "Same one",
           "q2": "youngest-cousin", "a2": login_local, "current": s.password}
    r = web.post("/questions", {**bad, "a1": "Same answer", "a0": "Same answer"})
    t = text(r)
    assert "same question twice" in t and "different answer" in t and "login ID" in t
    assert "Same answer" not in r.get_data(as_text=True)  # typed answers are not echoed
    good = {"q0": "first-soft-toy", "a0": "Ollie the Owl", "q1": "baby-nickname",
            "a1": "Little Star", "q2": "bedtime-story", "a2": "Goodnight Moon"}
    r = web.post("/questions", good)
    assert "password is not right" in text(r)
    # The card's answers (paper that went home) cannot come back as the child's own.
    r = web.post("/questions", {**good, "a1": "blue whale", "current": s.password})
    assert "old card" in text(r) and r.status_code == 200
    r = web.post("/questions", {**good, "current": s.password})
    assert r.status_code == 302 and r.headers["Location"].endswith("/home")
    e = root.get(s.dn, ["mimsChallenge", "mimsChallengeOrigin", "mimsQnaMustChange"], "check")
    assert values(e, "mimsChallengeOrigin") == ["student"]
    assert "mimsQnaMustChange" not in e
    stored = dict(decode_challenge(v) for v in values(e, "mimsChallenge"))
    h = ChallengeHasher(memory_kib=19456, time_cost=2, parallelism=1)
    assert h.verify(stored["baby-nickname"], "little star!")
    # Changing them later asks for the password again.
    page = web.get("/questions")
    assert "Change your questions" in text(page) and 'name="current"' in \
        page.get_data(as_text=True)
    r = web.post("/questions", {**good, "current": "wrong"})
    assert "password is not right" in text(r)


def test_p2_sees_card_note_not_a_form(slapd, make, web) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P2")
    web.login(s.mail, s.password)
    assert web.get("/").headers["Location"].endswith("/home")
    assert "card" in text(web.get("/questions"))


def test_teacher_view_reset_and_refusals(slapd, make, root, app) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher("4A")
    other_teacher = make.teacher("4B")
    mine = make.student(level="P4", class_name="4A", teacher=teacher)
    theirs = make.student(level="P4", class_name="4B", teacher=other_teacher)
    t = Browserish(app.test_client())
    r = t.login(teacher.mail, teacher.password)
    assert t.get("/").headers["Location"].endswith("/teacher")
    page = text(t.get("/teacher"))
    assert mine.mail in page and theirs.mail not in page
    r = t.post("/teacher/reset", {"uid": mine.uid})
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    import re

    password = re.search(r'id="pw">([^<]+)<', body).group(1)
    assert "print.js" in body
    out = bind(slapd, mine.dn, password)
    assert out.ok and out.must_change
    # Shown once: the class page afterwards does not carry it.
    assert password not in t.get("/teacher").get_data(as_text=True)
    # The other class's student: refused, and nothing changed.
    before = root.get(theirs.dn, ["userPassword"], "hash")
    r = t.post("/teacher/reset", {"uid": theirs.uid})
    assert r.status_code == 302 and "not in your class" in text(t.get("/teacher"))
    assert root.get(theirs.dn, ["userPassword"], "hash") == before
    # A student cannot open the teacher view.
    s = Browserish(app.test_client())
    s.login(theirs.mail, theirs.password)
    assert s.get("/teacher").status_code == 302


def test_teacher_write_is_checked_by_slapd_not_the_web_code(slapd, make, app) -> None:  # type: ignore[no-untyped-def]
    """Even if the page let it through, the directory refuses: the write is made as the
    teacher (proxied authorization), and the ACLs are the teacher's."""
    from mimsdir.errors import AccessDenied, PolicyViolation
    from mimsdir.portal.directory import PortalDirectory

    teacher = make.teacher("4A")
    other = make.teacher("4B")
    theirs = make.student(level="P4", class_name="4B", teacher=other)
    d = PortalDirectory(app.config["MIMS"])
    try:
        with pytest.raises((AccessDenied, PolicyViolation)):
            d.teacher_reset(teacher.dn, theirs.dn, "Sneaky-reset-1")
    finally:
        d.close()
    assert bind(slapd, theirs.dn, theirs.password).ok


def test_every_notice_code_has_its_words(app) -> None:  # type: ignore[no-untyped-def]
    """A page with no notice translates nothing for it; every code that has words is one
    ``CODES`` knows, so none is dropped before its words are looked up."""
    import inspect
    import re

    from mimsdir.portal.views import notices

    worded = set(re.findall(r'^\s+"(\w+)": _\(', inspect.getsource(notices), re.M))
    assert worded == notices.CODES
    with app.test_request_context("/"):
        assert all(notices.notice_message(code) for code in notices.CODES)
        assert notices.notice_message(None) is None
        assert notices.notice_message("nonsense") is None
