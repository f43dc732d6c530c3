"""Challenge answers: normalising, argon2id hashing, the stored form, own-answer rules."""

from __future__ import annotations

import doctest

import argon2
import pytest

from mimsdir import challenge
from mimsdir.challenge import (
    DEFAULT_QUESTIONS,
    ChallengeHasher,
    Question,
    answer_length,
    decode_challenge,
    encode_challenge,
    normalise_answer,
    validate_own_answers,
)

# OWASP's minimum: the cheapest parameters the hasher accepts, so the tests stay fast.
MIN = {"memory_kib": 19456, "time_cost": 2, "parallelism": 1}


@pytest.fixture(scope="module")
def hasher() -> ChallengeHasher:
    return ChallengeHasher(**MIN)


@pytest.fixture(scope="module")
def whale_hash(hasher: ChallengeHasher) -> str:
    return hasher.hash("Blue Whale")


# -- normalise_answer -------------------------------------------------------------------------


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(challenge)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    "typed",
    [
        "Blue Whale!",
        "bluewhale",
        " BLUE-whale ",
        "blue\twhale\n",
        "Blue\u00a0Whale",
        "BLUE. WHALE?",
        "\uff22\uff4c\uff55\uff45\u3000\uff37\uff48\uff41\uff4c\uff45",
        "blue 🐋 whale",
        "'blue' whale",
    ],
)
def test_forgives_case_spaces_punctuation_and_width(typed: str) -> None:
    assert normalise_answer(typed) == "bluewhale"


def test_keeps_digits_and_letters_of_any_script() -> None:
    assert normalise_answer("Room 12B") == "room12b"
    assert normalise_answer("Straße") == "strasse"
    assert normalise_answer("Zoë") == "zoë"
    assert normalise_answer("Zoe\u0308") == "zoë"  # decomposed input composes under NFKC


def test_chinese_answers() -> None:
    assert normalise_answer("小 熊。") == "小熊"
    assert normalise_answer("熊猫\uff01") == normalise_answer(" 熊猫 ") == "熊猫"
    assert normalise_answer("小熊2号") == "小熊2号"


def test_tamil_combining_marks_are_kept() -> None:
    amma = "அம்மா"  # அ ம ் ம ா : the virama (U+0BCD) and the vowel sign aa (U+0BBE) are marks
    result = normalise_answer(f" {amma}! ")
    assert result == amma
    assert "\u0bcd" in result and "\u0bbe" in result
    # words that differ only in a mark stay different
    assert normalise_answer("பல") != normalise_answer("பால்")
    assert normalise_answer("கலை") != normalise_answer("கல")
    # the two-part vowel sign o, typed as its parts, equals the precomposed one (NFKC)
    assert normalise_answer("கொ") == normalise_answer("க\u0bc6\u0bbe")


def test_only_punctuation_normalises_to_nothing() -> None:
    assert normalise_answer(" - !? ") == ""


def test_answer_length_counts_a_chinese_character_as_two() -> None:
    assert answer_length("cat") == 3
    assert answer_length("熊") == 2
    assert answer_length("熊猫") == 4


# -- ChallengeHasher --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"memory_kib": 19455, "time_cost": 2, "parallelism": 1},
        {"memory_kib": 19456, "time_cost": 1, "parallelism": 1},
        {"memory_kib": 19456, "time_cost": 2, "parallelism": 0},
        {"memory_kib": 65536, "time_cost": 0, "parallelism": 1},
    ],
)
def test_refuses_parameters_below_owasp_minimum(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="OWASP"):
        ChallengeHasher(**params)


def test_refuses_non_integer_parameters() -> None:
    with pytest.raises(ValueError):
        ChallengeHasher(memory_kib=19456.5, time_cost=2, parallelism=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChallengeHasher(memory_kib=19456, time_cost=True, parallelism=1)


def test_hash_is_argon2id_with_the_configured_parameters(
    hasher: ChallengeHasher, whale_hash: str
) -> None:
    assert whale_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params = argon2.extract_parameters(whale_hash)
    assert params.type is argon2.Type.ID
    assert "whale" not in whale_hash.lower()
    assert hasher.hash("Blue Whale") != whale_hash  # salted


def test_verify_accepts_the_answer_however_it_is_typed(
    hasher: ChallengeHasher, whale_hash: str
) -> None:
    for typed in ("Blue Whale", "bluewhale", " BLUE-whale! "):
        assert hasher.verify(whale_hash, typed) is True


def test_verify_rejects_a_wrong_answer(hasher: ChallengeHasher, whale_hash: str) -> None:
    for typed in ("blue whales", "whale blue", "", "   ", "grey whale"):
        assert hasher.verify(whale_hash, typed) is False


def test_verify_chinese_and_tamil(hasher: ChallengeHasher) -> None:
    zh = hasher.hash("小熊")
    assert hasher.verify(zh, " 小 熊。")
    assert not hasher.verify(zh, "大熊")
    ta = hasher.hash("பால்")
    assert hasher.verify(ta, "பால்!")
    assert not hasher.verify(ta, "பல")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$???",
        "$2b$12$abcdefghijklmnopqrstuu5Bs1FEaFGi9UA4ZcqjhTy5p4rBDNy.",  # bcrypt
        "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # 4 GiB
        "$argon2id$v=19$m=19456,t=100000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_verify_never_raises_for_a_malformed_hash(hasher: ChallengeHasher, encoded: str) -> None:
    assert hasher.verify(encoded, "blue whale") is False


def test_verify_a_truncated_or_tampered_hash(hasher: ChallengeHasher, whale_hash: str) -> None:
    assert hasher.verify(whale_hash[:-5], "blue whale") is False
    tampered = whale_hash[:-2] + ("AA" if not whale_hash.endswith("AA") else "BB")
    assert hasher.verify(tampered, "blue whale") is False


def test_verify_wrong_types_are_false(hasher: ChallengeHasher, whale_hash: str) -> None:
    assert hasher.verify(None, "blue whale") is False  # type: ignore[arg-type]
    assert hasher.verify(whale_hash, None) is False  # type: ignore[arg-type]
    assert hasher.verify(whale_hash.encode(), "blue whale") is False  # type: ignore[arg-type]


def test_hash_refuses_an_empty_answer(hasher: ChallengeHasher) -> None:
    with pytest.raises(ValueError) as info:
        hasher.hash(" ?! ")
    assert "?!" not in str(info.value)


def test_needs_upgrade(hasher: ChallengeHasher, whale_hash: str) -> None:
    assert hasher.needs_upgrade(whale_hash) is False
    weak = argon2.PasswordHasher(
        memory_cost=8192, time_cost=1, parallelism=1, type=argon2.Type.ID
    ).hash("bluewhale")
    assert hasher.needs_upgrade(weak) is True
    # an old, weaker hash still verifies, so SSPR can re-hash it after a good answer
    assert hasher.verify(weak, "Blue Whale") is True
    argon2i = argon2.PasswordHasher(
        memory_cost=19456, time_cost=2, parallelism=1, type=argon2.Type.I
    ).hash("bluewhale")
    assert hasher.needs_upgrade(argon2i) is True
    assert hasher.needs_upgrade("garbage") is True
    stronger = ChallengeHasher(memory_kib=19456, time_cost=3, parallelism=1)
    assert stronger.needs_upgrade(whale_hash) is True
    # a hash made with higher settings than configured is not an upgrade reason
    assert hasher.needs_upgrade(stronger.hash("blue whale")) is False


def test_dummy_verify_is_always_false(hasher: ChallengeHasher) -> None:
    assert hasher.dummy_verify("blue whale") is False
    assert hasher.dummy_verify("") is False
    assert hasher._dummy_hash is not None
    assert hasher.needs_upgrade(hasher._dummy_hash) is False  # same cost as a real hash


def test_repr_has_no_secrets(hasher: ChallengeHasher) -> None:
    assert repr(hasher) == "ChallengeHasher(memory_kib=19456, time_cost=2, parallelism=1)"


# -- stored form ------------------------------------------------------------------------------


def test_encode_decode_round_trip_splits_on_the_first_dollar(whale_hash: str) -> None:
    value = encode_challenge("first-soft-toy", whale_hash)
    assert value == "first-soft-toy$" + whale_hash
    assert value.count("$") == whale_hash.count("$") + 1
    assert decode_challenge(value) == ("first-soft-toy", whale_hash)


def test_decoded_hash_verifies(hasher: ChallengeHasher, whale_hash: str) -> None:
    _, encoded = decode_challenge(encode_challenge("q1", whale_hash))
    assert hasher.verify(encoded, "blue whale")


@pytest.mark.parametrize(
    "value",
    [
        "no-dollar-sign",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",  # empty question id
        "Pet-Name$$argon2id$v=19",  # upper case
        "pet_name$$argon2id$v=19",  # underscore
        "a" * 33 + "$$argon2id$v=19",  # too long
        "pet\n$$argon2id$v=19",
        "pet name$$argon2id$v=19",
        "pet-name$",  # no hash
    ],
)
def test_decode_refuses_a_bad_value(value: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_challenge(value)
    assert "argon2id$v=19" not in str(info.value)


def test_decode_accepts_the_longest_id() -> None:
    assert decode_challenge("a" * 32 + "$x") == ("a" * 32, "x")


@pytest.mark.parametrize("qid", ["", "Bad", "a" * 33, "with space", "dollar$"])
def test_encode_refuses_a_bad_question_id(qid: str, whale_hash: str) -> None:
    with pytest.raises(ValueError):
        encode_challenge(qid, whale_hash)


def test_encode_refuses_an_empty_or_multiline_hash() -> None:
    with pytest.raises(ValueError):
        encode_challenge("q1", "")
    with pytest.raises(ValueError):
        encode_challenge("q1", "$argon2id$\n$x")


# -- questions --------------------------------------------------------------------------------


def test_default_questions() -> None:
    assert 10 <= len(DEFAULT_QUESTIONS) <= 12
    ids = [q.id for q in DEFAULT_QUESTIONS]
    assert len(set(ids)) == len(ids)
    assert len({q.text for q in DEFAULT_QUESTIONS}) == len(ids)
    for q in DEFAULT_QUESTIONS:
        assert challenge.QUESTION_ID_RE.fullmatch(q.id)
        assert q.text.endswith("?")
        lowered = q.text.lower()
        # things every classmate knows
        for known in ("colour", "color", "form teacher", "your school", "primary school"):
            assert known not in lowered


def test_question_refuses_a_bad_id() -> None:
    with pytest.raises(ValueError):
        Question("Bad Id", "Why?")


LOGIN = "tan_ah_kow@students.edu.sg"


def test_good_answers_have_no_problems() -> None:
    answers = {
        "first-soft-toy": "Mr Snuggles",
        "first-holiday": "Penang",
        "bedtime-story": "The Very Hungry Caterpillar",
    }
    assert validate_own_answers(answers, LOGIN) == []


def test_chinese_and_tamil_answers_are_long_enough() -> None:
    answers = {"first-soft-toy": "熊猫", "baby-nickname": "தங்கம்"}
    assert validate_own_answers(answers, LOGIN) == []


def test_too_short_after_normalising() -> None:
    problems = validate_own_answers({"first-soft-toy": " a-b! ", "first-holiday": "熊"}, LOGIN)
    assert len(problems) == 2
    assert all("too short" in p for p in problems)
    assert validate_own_answers({"first-soft-toy": "abcd"}, LOGIN, min_length=5)


def test_empty_answer_is_too_short() -> None:
    assert "too short" in validate_own_answers({"first-soft-toy": ""}, LOGIN)[0]


def test_repeated_answer() -> None:
    problems = validate_own_answers(
        {"first-soft-toy": "Blue Whale", "first-holiday": "blue-whale!"}, LOGIN
    )
    assert len(problems) == 1
    assert "same as your answer" in problems[0]


@pytest.mark.parametrize("answer", ["tan_ah_kow", "Tan Ah Kow", "TAN-AH-KOW@students.edu.sg"])
def test_answer_equal_to_login_id(answer: str) -> None:
    problems = validate_own_answers({"first-soft-toy": answer}, LOGIN)
    assert len(problems) == 1
    assert "login ID" in problems[0]


def test_unknown_question() -> None:
    problems = validate_own_answers({"favourite-colour": "purple"}, LOGIN)
    assert len(problems) == 1
    assert "not on the list" in problems[0]


def test_duplicate_question_in_pairs() -> None:
    pairs = [("first-soft-toy", "Mr Snuggles"), ("first-soft-toy", "Penguin Pete")]
    problems = validate_own_answers(pairs, LOGIN)
    assert len(problems) == 1
    assert "more than once" in problems[0]


def test_required_count() -> None:
    assert validate_own_answers({"first-soft-toy": "Mr Snuggles"}, LOGIN, required=3) == [
        "Please answer exactly 3 questions."
    ]


def test_custom_question_set() -> None:
    qs = (Question("q1", "One?"), Question("q2", "Two?"))
    assert validate_own_answers({"q1": "apple", "q2": "mango"}, LOGIN, questions=qs) == []
    assert validate_own_answers({"first-soft-toy": "apple"}, LOGIN, questions=qs)


def test_problems_never_contain_the_answer() -> None:
    secret = "Snugglewumps"
    problems = validate_own_answers(
        [
            ("first-soft-toy", secret),
            ("first-holiday", secret),
            ("first-holiday", secret),
            ("bogus", secret),
            ("bedtime-story", "x" * 100),
        ],
        LOGIN,
    )
    assert len(problems) == 4
    assert not any(secret.lower() in p.lower() for p in problems)
