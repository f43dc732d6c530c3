"""``mimsdir/challenge.py`` at its edges (the mutants test_challenge.py let through): every
error message word for word (they reach operators and never echo a value), the parameter
limits on both sides, the defaults, the dummy check doing a real check's work, and the
own-answer rules at their lengths. Each hasher is made inside its test (mutmut links a test
to the code it runs; a module-scoped fixture's construction would count for one test only).
Pure: no server."""

from __future__ import annotations

import argon2
import pytest

from mimsdir import challenge
from mimsdir.challenge import (
    ChallengeHasher,
    Question,
    decode_challenge,
    encode_challenge,
    question_by_id,
    validate_own_answers,
)

MIN = {"memory_kib": 19456, "time_cost": 2, "parallelism": 1}


def message(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


# -- messages ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "text"), [
    (lambda: encode_challenge("Bad Id", "$argon2id$x"),
     "question id must be 1-32 characters of a-z, 0-9 and '-'"),
    (lambda: encode_challenge("pet", ""), "challenge hash must be a non-empty string"),
    (lambda: encode_challenge("pet", "$argon2id$x\n"), "challenge hash must be one line"),
    (lambda: decode_challenge(42), "mimsChallenge value must be a string"),
    (lambda: decode_challenge("pet"), "mimsChallenge value has no '$' after its question id"),
    (lambda: decode_challenge("Pet$$argon2id$x"),
     "mimsChallenge value has no valid question id before its first '$'"),
    (lambda: decode_challenge("pet$"), "mimsChallenge value has no hash after its question id"),
    (lambda: Question("pet", "  "), "question text must not be empty"),
    (lambda: ChallengeHasher(**MIN).hash(" !? "),
     "a challenge answer needs at least one letter or digit"),
    (lambda: ChallengeHasher(memory_kib="19456", time_cost=2, parallelism=1),  # type: ignore[arg-type]
     "argon2 memory_kib must be an integer"),
    (lambda: ChallengeHasher(memory_kib=19456, time_cost=2.5, parallelism=1),  # type: ignore[arg-type]
     "argon2 time_cost must be an integer"),
    (lambda: ChallengeHasher(memory_kib=19456, time_cost=2, parallelism=None),  # type: ignore[arg-type]
     "argon2 parallelism must be an integer"),
    (lambda: ChallengeHasher(memory_kib=19456, time_cost=65, parallelism=1),
     "argon2 parameters too large (at most m=1048576 KiB, t=64, p=64)"),
    (lambda: ChallengeHasher(**MIN, hash_len=15),
     "argon2 hash_len and salt_len must be at least 16 bytes"),
])
def test_error_messages(call, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as exc:
        call()
    assert message(exc) == text


def test_question_by_id() -> None:
    assert question_by_id("first-holiday").text == "Where did you go for your first holiday?"
    with pytest.raises(KeyError) as exc:
        question_by_id("no-such-question")
    assert exc.value.args == ("no-such-question",)


# -- the hasher's limits and defaults ---------------------------------------------------------

@pytest.mark.parametrize("too_big", [
    {"memory_kib": 1024 * 1024 + 1, "time_cost": 2, "parallelism": 1},
    {"memory_kib": 19456, "time_cost": 65, "parallelism": 1},
    {"memory_kib": 19456, "time_cost": 2, "parallelism": 65},
])
def test_each_parameter_has_an_upper_limit(too_big: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="too large"):
        ChallengeHasher(**too_big)


def test_the_upper_limits_themselves_are_allowed() -> None:
    # Constructing computes nothing: no gigabyte is allocated here.
    h = ChallengeHasher(memory_kib=1024 * 1024, time_cost=64, parallelism=64)
    assert (h.memory_kib, h.time_cost, h.parallelism) == (1024 * 1024, 64, 64)


@pytest.mark.parametrize(("hash_len", "salt_len"), [(15, 16), (16, 15), (8, 32)])
def test_short_hash_or_salt_refused(hash_len: int, salt_len: int) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ChallengeHasher(**MIN, hash_len=hash_len, salt_len=salt_len)


def test_sixteen_byte_hash_and_salt_allowed() -> None:
    h = ChallengeHasher(**MIN, hash_len=16, salt_len=16)
    params = argon2.extract_parameters(h.hash("blue whale"))
    assert (params.hash_len, params.salt_len) == (16, 16)


def test_configured_hash_and_salt_lengths_are_used() -> None:
    h = ChallengeHasher(**MIN, hash_len=24, salt_len=24)
    params = argon2.extract_parameters(h.hash("blue whale"))
    assert (params.hash_len, params.salt_len) == (24, 24)


def test_encode_accepts_any_base64_hash() -> None:
    value = "$argon2id$v=19$m=19456,t=2,p=1$WFhYWA$WFhYWFhY"
    assert encode_challenge("pet", value) == "pet$" + value


def test_defaults() -> None:
    h = ChallengeHasher()
    assert (h.memory_kib, h.time_cost, h.parallelism, h.hash_len, h.salt_len) == \
        (19456, 3, 1, 32, 16)
    params = argon2.extract_parameters(h.hash("blue whale"))
    assert params.type is argon2.Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 3, 1)
    assert (params.hash_len, params.salt_len) == (32, 16)


def test_sane_limits_are_inclusive() -> None:
    def p(**kw: int) -> argon2.Parameters:
        base = {"type": argon2.Type.ID, "version": 19, "salt_len": 16, "hash_len": 32,
                "time_cost": 2, "memory_cost": 19456, "parallelism": 1}
        return argon2.Parameters(**{**base, **kw})  # type: ignore[arg-type]

    assert challenge._sane(p(memory_cost=1024 * 1024, time_cost=64, parallelism=64))
    assert not challenge._sane(p(memory_cost=1024 * 1024 + 1))
    assert not challenge._sane(p(time_cost=65))
    assert not challenge._sane(p(parallelism=65))


def test_needs_upgrade_for_each_weaker_parameter_alone() -> None:
    stored = ChallengeHasher(**MIN).hash("blue whale")  # m=19456 t=2 p=1, 32-byte hash
    assert ChallengeHasher(**MIN).needs_upgrade(stored) is False
    assert ChallengeHasher(memory_kib=20480, time_cost=2, parallelism=1).needs_upgrade(stored)
    assert ChallengeHasher(memory_kib=19456, time_cost=2, parallelism=2).needs_upgrade(stored)
    assert ChallengeHasher(**MIN, hash_len=33).needs_upgrade(stored)
    assert ChallengeHasher(**MIN, salt_len=17).needs_upgrade(stored)
    # Not a string at all: malformed, so it must be set again (and nothing raises).
    assert ChallengeHasher(**MIN).needs_upgrade(None) is True  # type: ignore[arg-type]


def test_dummy_verify_does_a_real_check_of_the_answer() -> None:
    h = ChallengeHasher(**MIN)
    seen: list[tuple[str, str]] = []
    real = h._ph

    class Spy:
        def hash(self, secret: str) -> str:
            return real.hash(secret)

        def verify(self, encoded: str, password: str) -> bool:
            seen.append((encoded, password))
            return real.verify(encoded, password)

    h._ph = Spy()  # type: ignore[assignment]
    assert h.dummy_verify("Blue Whale!") is False
    assert h.dummy_verify("other") is False
    dummy = h._dummy_hash
    assert dummy is not None and dummy.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # Both calls checked the typed answer (normalised) against the one dummy hash.
    assert seen == [(dummy, "bluewhale"), (dummy, "other")]


# -- own answers ------------------------------------------------------------------------------

LOGIN = "kid@students.x.sg"


def test_default_lengths_are_inclusive() -> None:
    assert validate_own_answers({"first-holiday": "abc"}, LOGIN) == []
    assert validate_own_answers({"first-holiday": "a" * 64}, LOGIN) == []
    assert validate_own_answers({"first-holiday": "ab"}, LOGIN) == [
        'Your answer to "Where did you go for your first holiday?" is too short. '
        "Use at least 3 letters or numbers."]
    assert validate_own_answers({"first-holiday": "a" * 65}, LOGIN) == [
        'Your answer to "Where did you go for your first holiday?" is too long. '
        "Use at most 64 letters or numbers."]


def test_every_answer_is_checked_after_a_bad_one() -> None:
    problems = validate_own_answers(
        [("first-holiday", "ab"), ("first-soft-toy", "b" * 65), ("youngest-cousin", "xy")],
        LOGIN)
    assert [("short" if "too short" in p else "long" if "too long" in p else p)
            for p in problems] == ["short", "long", "short"]


def test_unknown_and_repeated_messages() -> None:
    assert validate_own_answers({"no-such": "Penang"}, LOGIN) == [
        "One of the questions is not on the list. Please choose again."]
    assert validate_own_answers({"first-holiday": "Penang", "first-soft-toy": "penang!"},
                                LOGIN) == [
        'Your answer to "What is the name of your first soft toy?" is the same as your '
        'answer to "Where did you go for your first holiday?". Use a different answer for '
        "each question."]


def test_every_answer_is_checked_after_a_login_id_answer() -> None:
    problems = validate_own_answers([("first-holiday", "kid"), ("first-soft-toy", "ab")], LOGIN)
    assert len(problems) == 2 and "login ID" in problems[0] and "too short" in problems[1]


def test_login_id_part_is_before_the_first_at() -> None:
    problems = validate_own_answers({"first-holiday": "tan"}, "tan@kids@x.sg")
    assert problems == ['Your answer to "Where did you go for your first holiday?" is your '
                        "login ID. Choose something only you know."]


def test_an_answer_that_is_not_text_is_too_short_not_a_crash() -> None:
    problems = validate_own_answers([("first-holiday", None)], LOGIN)  # type: ignore[list-item]
    assert len(problems) == 1 and "too short" in problems[0]
