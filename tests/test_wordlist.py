"""The child-friendly word list, card answers and default passwords."""

from __future__ import annotations

import random
import re
import secrets
from importlib import resources

import pytest

from mimsdir import wordlist
from mimsdir.wordlist import (
    DIGITS,
    bits_per_word,
    card_answer_bits,
    default_password_bits,
    generate_card_answer,
    generate_default_password,
    load_words,
    password_words,
)


def test_word_file_is_clean() -> None:
    text = resources.files("mimsdir").joinpath("data/words.txt").read_text(encoding="ascii")
    lines = text.splitlines()
    assert text.endswith("\n")
    assert all(re.fullmatch(r"[a-z]{3,7}", line) for line in lines)
    assert len(set(lines)) == len(lines)
    assert len(lines) >= 1024


def test_load_words() -> None:
    words = load_words()
    assert isinstance(words, tuple)
    assert len(words) >= 1024
    assert list(words) == sorted(set(words))
    assert load_words() is words  # cached


def test_bits_per_word() -> None:
    assert bits_per_word() > 10


# A sample of what the list must not hold: scary, violent, religiously restricted food, and one
# word of each common homophone pair. (The full curation rules are in mimsdir/wordlist.py.)
_NOT_WANTED_TEXT = """
    ghost skull knife gun sword blood bomb kill dead zombie witch spider pork ham bacon beef
    wine beer pig sexy butt bear bare sea see blue blew pear pair flower flour whale deer
    dear sun son rain rose knight night plane plain tea berry bee stair stare red grey gray
    donut hoodie
"""
NOT_WANTED = set(_NOT_WANTED_TEXT.split())


def test_no_unwanted_words() -> None:
    assert NOT_WANTED.isdisjoint(load_words())


def test_card_answer_is_two_different_words_from_the_list() -> None:
    words = set(load_words())
    rng = random.Random(1234)
    for _ in range(2000):
        answer = generate_card_answer(rng)
        first, second = answer.split(" ")
        assert first in words and second in words
        assert first != second


def test_card_answer_default_rng_and_strength() -> None:
    answers = {generate_card_answer() for _ in range(50)}
    assert len(answers) > 45
    assert card_answer_bits() >= 20


def test_card_answer_is_reproducible_with_a_seed() -> None:
    assert generate_card_answer(random.Random(7)) == generate_card_answer(random.Random(7))


def test_card_answer_accepts_system_random() -> None:
    assert len(generate_card_answer(secrets.SystemRandom()).split()) == 2


PASSWORD_RE = re.compile(r"[A-Z][a-z]{2,6}[2-9]{4,}")


@pytest.mark.parametrize("min_length", [1, 4, 8, 10, 12, 16, 24])
def test_default_passwords_meet_the_rules(min_length: int) -> None:
    words = set(password_words())
    rng = random.Random(min_length)
    for _ in range(1000):
        pw = generate_default_password(min_length, rng)
        assert len(pw) >= max(min_length, 7)
        assert PASSWORD_RE.fullmatch(pw), pw
        assert any(c.isupper() for c in pw)
        assert any(c.islower() for c in pw)
        assert any(c.isdigit() for c in pw)
        assert not set(pw) & set("01IO")
        word = pw.rstrip(DIGITS)
        assert word.lower() in words
        # digits are only added beyond 4 to reach the minimum length
        assert len(pw) - len(word) == max(4, min_length - len(word))


def test_default_password_default_arguments() -> None:
    pw = generate_default_password()
    assert len(pw) >= 8
    assert PASSWORD_RE.fullmatch(pw)
    assert len({generate_default_password() for _ in range(50)}) > 45


def test_password_words_avoid_confusable_capitals() -> None:
    assert not any(w[0] in "io" for w in password_words())
    assert len(password_words()) > 1000


def test_default_password_entropy() -> None:
    assert default_password_bits(8) >= 22
    assert default_password_bits(16) > default_password_bits(8)
    assert "bits" in (wordlist.generate_default_password.__doc__ or "")


@pytest.mark.parametrize("bad", [0, -1, 65, True, 8.0])
def test_default_password_refuses_a_bad_min_length(bad: object) -> None:
    with pytest.raises(ValueError):
        generate_default_password(bad)  # type: ignore[arg-type]
