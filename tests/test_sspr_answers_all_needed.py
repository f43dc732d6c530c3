"""SSPR needs every asked answer right (issue 8, item 9): one right answer out of two is
refused like two wrong ones, whichever of the two is the right one."""

from __future__ import annotations

import pytest

from mimsdir.ldapio import values
from tests.portal_helpers import ANSWERS, Browserish, asked_questions, give_answers, make_app, text
from tests.test_portal_flows import BY_TEXT, bind, start_sspr


@pytest.fixture
def web(slapd):  # type: ignore[no-untyped-def]
    return Browserish(make_app(slapd).test_client())


@pytest.mark.parametrize("right_slot", [0, 1], ids=["first-right", "second-right"])
def test_one_right_answer_of_two_is_refused(slapd, web, make, root, right_slot: int) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5", password="Forgotten-pw-1")
    give_answers(root, s.dn)
    page = start_sspr(web, s.mail)
    asked = asked_questions(page)
    assert len(asked) == 2
    data = {f"a{i}": (ANSWERS[BY_TEXT[q]] if i == right_slot else "wrong answer")
            for i, q in enumerate(asked)}
    r = web.post("/forgot/questions", data)
    assert r.status_code == 200 and "Location" not in r.headers
    assert "do not match" in text(r)
    # Counted as a failed attempt, and no verified state to choose a password with.
    e = root.get(s.dn, ["mimsSsprFailures"], "check") or {}
    assert values(e, "mimsSsprFailures") == ["1"]
    r = web.get("/forgot/password")
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot")
    r = web.post("/forgot/password", {"new": "Taken-over-99", "again": "Taken-over-99"})
    assert r.status_code == 302 and "changed" not in text(r)
    # The old password still works; the one a classmate chose does not.
    assert bind(slapd, s.dn, "Forgotten-pw-1").ok
    assert not bind(slapd, s.dn, "Taken-over-99").ok


def test_both_right_is_accepted(web, make, root) -> None:  # type: ignore[no-untyped-def]
    """The control: the same page with both answers right goes on to the new password."""
    s = make.student(level="P5")
    give_answers(root, s.dn)
    page = start_sspr(web, s.mail)
    data = {f"a{i}": ANSWERS[BY_TEXT[q]] for i, q in enumerate(asked_questions(page))}
    r = web.post("/forgot/questions", data)
    assert r.status_code == 302 and r.headers["Location"].endswith("/forgot/password")
