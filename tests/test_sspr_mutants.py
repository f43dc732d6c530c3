"""The SSPR rules of ``mimsdir/portal/sspr.py`` as pure functions (the portal tests exercise
them through slapd, which a mutation run cannot afford): the asked questions' stored form,
waiting, back-off, decay, the up-front reservation, keeping the questions, and the keyed
names and questions of login IDs with no account. Pure: no server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from mimsdir.challenge import DEFAULT_QUESTIONS
from mimsdir.portal import sspr
from mimsdir.portal.sspr import Asked, Attempts

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
MINUTES = (1, 5, 15, 60)
HOUR = timedelta(hours=1)
CATALOGUE = [q.id for q in DEFAULT_QUESTIONS]
KEY = b"k" * 32


# -- the asked questions, as stored (mimsSsprAsked) -------------------------------------------

def test_asked_encodes_and_decodes() -> None:
    asked = Asked(T0, ("first-holiday", "youngest-cousin"))
    assert asked.encode() == "20261128020000Z$first-holiday,youngest-cousin"
    assert Asked.decode(asked.encode()) == asked
    assert Asked.decode("20261128020000Z$first-holiday,,") == Asked(T0, ("first-holiday",))


@pytest.mark.parametrize("value", [None, "", "20261128020000Z", "20261128020000Z$",
                                   "20261128020000Z$,", "yesterday$first-holiday",
                                   "$first-holiday"])
def test_asked_decode_refuses_what_it_cannot_use(value: str | None) -> None:
    assert Asked.decode(value) is None


# -- waiting and back-off ---------------------------------------------------------------------

def test_waiting_ends_at_the_locked_until_time() -> None:
    a = Attempts(failures=1, locked_until=T0)
    assert a.waiting(T0 - timedelta(seconds=1))
    assert not a.waiting(T0)
    assert not Attempts().waiting(T0)


@pytest.mark.parametrize(("failures", "minutes"), [(-1, 0), (0, 0), (1, 1), (2, 5), (3, 15),
                                                   (4, 60), (5, 60), (50, 60)])
def test_backoff_grows_then_stays_at_the_last_step(failures: int, minutes: int) -> None:
    assert sspr.backoff(failures, MINUTES) == timedelta(minutes=minutes)


@pytest.mark.parametrize(("failures", "quiet", "left"), [
    (0, 10 * HOUR, 0), (-2, 0 * HOUR, 0),
    (4, 0.5 * HOUR, 4), (4, 1 * HOUR, 3), (4, 2.5 * HOUR, 2), (4, 4 * HOUR, 0),
    (4, 10 * HOUR, 0), (3, -1 * HOUR, 3), (3, 0 * HOUR, 3), (1, 0.5 * HOUR, 1),
    (1, 1 * HOUR, 0),
])
def test_decay_forgives_one_failure_per_quiet_period(failures: int, quiet: timedelta,
                                                    left: int) -> None:
    assert sspr.decayed(failures, T0, T0 + quiet, HOUR) == left


def test_no_decay_without_a_last_failure_or_a_period() -> None:
    assert sspr.decayed(3, None, T0, HOUR) == 3
    assert sspr.decayed(3, T0 - 5 * HOUR, T0, timedelta(0)) == 3
    assert sspr.decayed(3, T0 - 5 * HOUR, T0, -HOUR) == 3


def test_reserve_counts_the_attempt_before_the_check() -> None:
    first = sspr.reserve(Attempts(), T0, MINUTES, HOUR)
    assert first == sspr.Reservation(expect=None, failures=1,
                                     locked_until=T0 + timedelta(minutes=1), at=T0)
    # Three failures, the last two hours ago: two forgiven, this one makes two.
    state = Attempts(failures=3, last_failure=T0 - 2 * HOUR, locked_until=T0 - HOUR)
    again = sspr.reserve(state, T0, MINUTES, HOUR)
    assert again == sspr.Reservation(expect=3, failures=2,
                                     locked_until=T0 + timedelta(minutes=5), at=T0)


# -- which questions ---------------------------------------------------------------------------

def test_keep_asking_only_the_students_current_questions() -> None:
    registered = ["first-holiday", "youngest-cousin", "first-soft-toy"]
    asked = Asked(T0, ("first-holiday", "youngest-cousin"))
    assert sspr.keep_asking(asked, registered, 2)
    assert not sspr.keep_asking(None, registered, 2)
    assert not sspr.keep_asking(asked, registered, 3)                       # rule changed
    assert not sspr.keep_asking(asked, ["first-holiday", "first-soft-toy"], 2)  # answers reset


def test_draw_takes_distinct_registered_questions() -> None:
    registered = ["first-holiday", "youngest-cousin", "first-soft-toy"]
    for _ in range(20):
        got = sspr.draw(registered, 2)
        assert isinstance(got, tuple) and len(got) == len(set(got)) == 2
        assert set(got) <= set(registered)
    assert sorted(sspr.draw(registered, 3)) == sorted(registered)


# -- login IDs with no account ----------------------------------------------------------------

def test_login_key_is_a_keyed_hash_of_the_folded_login_id() -> None:
    want = hmac.new(KEY, b"sspr\0kid@students.x.sg", hashlib.sha256).hexdigest()[:40]
    # Pinned: these name state entries already in the directory; a change orphans them.
    assert want == "de93d670f51c4cb9aed165c78c9657c8c36ade6e"
    assert sspr.login_key(KEY, " Kid@Students.X.SG ") == want
    assert sspr.login_key(b"j" * 32, "kid@students.x.sg") != want


def test_ghost_questions_are_stable_keyed_and_distinct() -> None:
    # Pinned: a login ID with no account must be asked the same questions after an upgrade.
    got = sspr.ghost_questions(KEY, " KID@students.x.sg", CATALOGUE, 3)
    assert got == ("favourite-relative", "special-day-food", "kindergarten-friend")
    assert sspr.ghost_questions(b"j" * 32, "kid@students.x.sg", CATALOGUE, 3) == \
        ("favourite-relative", "youngest-cousin", "first-soft-toy")
    assert sspr.ghost_questions(KEY, "other@students.x.sg", CATALOGUE, 3) != got
    # Never more than the catalogue holds, never one twice.
    small = sspr.ghost_questions(KEY, "kid@students.x.sg", CATALOGUE[:2], 3)
    assert sorted(small) == sorted(CATALOGUE[:2])
    for n in range(len(CATALOGUE) + 1):
        qs = sspr.ghost_questions(KEY, f"kid{n}@students.x.sg", CATALOGUE, n)
        assert len(qs) == len(set(qs)) == n and set(qs) <= set(CATALOGUE)
