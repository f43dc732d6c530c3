"""A child-friendly word list, and the pre-set answers and default passwords made from it.

`data/words.txt` holds one word a line, lower-case ASCII, 3-7 letters. It was picked by hand for
8-12-year-olds in Singapore: concrete things (animals, food, toys, places, weather) and a few
friendly describing words, easy to read and spell. Left out on purpose:

- scary, violent or gross words (ghost, knife, blood, spider, ...) and words a child could be
  teased with;
- food some families do not eat for religious reasons (pork, ham, beef, wine, ...) and religious
  words;
- one word of each homophone pair a child knows (bear/bare, sea/see, blue/blew, pear/pair,
  flower/flour, whale/wail, stair/stare, bold/bowled, ...), so a word read aloud by a teacher is
  typed one way;
- words with a British/American spelling split (grey/gray, donut/doughnut, hoodie/hoody) or a
  hard spelling (yacht, sieve, muesli);
- brand names.

The file has more than 1024 words, so one word is worth more than 10 bits; `bits_per_word()`
says exactly how much.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import secrets
from importlib import resources

__all__ = [
    "DIGITS",
    "bits_per_word",
    "card_answer_bits",
    "default_password_bits",
    "generate_card_answer",
    "generate_default_password",
    "is_simple_run",
    "load_words",
    "password_words",
]

#: Digits used in default passwords: no 0 (looks like O) and no 1 (looks like l and I).
DIGITS = "23456789"
_MIN_DIGITS = 4
_MAX_PASSWORD_LENGTH = 64


@functools.cache
def load_words() -> tuple[str, ...]:
    """The word list, sorted and unique. Raises ValueError if the data file is malformed."""
    text = resources.files("mimsdir").joinpath("data/words.txt").read_text(encoding="ascii")
    words = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [
        w for w in words if not (w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 7)
    ]
    if bad:
        raise ValueError(f"mimsdir/data/words.txt: {len(bad)} malformed words, e.g. {bad[0]!r}")
    if len(set(words)) != len(words):
        raise ValueError("mimsdir/data/words.txt: duplicate words")
    if len(words) < 1024:
        raise ValueError("mimsdir/data/words.txt: fewer than 1024 words")
    return tuple(sorted(words))


def bits_per_word() -> float:
    """Entropy of one word drawn uniformly from the list, in bits (> 10)."""
    return math.log2(len(load_words()))


@functools.cache
def password_words() -> tuple[str, ...]:
    """Words used in default passwords: the list less those starting with i or o, whose
    capital (I, O) a child could misread as l, 1 or 0 on a slip."""
    return tuple(w for w in load_words() if w[0] not in "io")


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else secrets.SystemRandom()


def card_answer_bits() -> float:
    """Entropy of `generate_card_answer()` in bits: log2(n * (n - 1)), about 20.3 for n=1124."""
    n = len(load_words())
    return math.log2(n * (n - 1))


def generate_card_answer(rng: random.Random | None = None) -> str:
    """Two different words joined by a space, e.g. "purple tiger": a pre-set challenge answer
    printed on a P2-P3 card. At least 20 bits (see `card_answer_bits`).

    `rng` defaults to `secrets.SystemRandom()`; tests pass a seeded `random.Random`.
    """
    first, second = _rng(rng).sample(load_words(), 2)
    return f"{first} {second}"


def is_simple_run(digits: str) -> bool:
    """A digit run people add to a word: one short unit repeated (2222, 4545, 234234) or a
    step up or down (2345, 8765).

    slapd's password check module (slapd-modules/mims_pwcheck.c) strips such a run, like a
    run of three characters or fewer, before comparing a password with the deny-list
    ("monkey2222" is "monkey"). A default password never ends in one, so every default
    password passes the module even when its word is on the list (Tiger, Monkey).
    """
    n = len(digits)
    for unit in range(1, 5):
        if 2 * unit <= n and n % unit == 0 and digits == digits[:unit] * (n // unit):
            return True
    if n < 3:
        return False
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {-1})


def _simple_runs_bound(n: int) -> int:
    """At most how many runs of ``n`` digits from DIGITS `is_simple_run` refuses."""
    k = len(DIGITS)
    repeats = sum(k**u for u in range(1, 5) if 2 * u <= n and n % u == 0)
    steps = 2 * max(0, k - n + 1)
    return repeats + steps


def default_password_bits(min_length: int = 8) -> float:
    """Lower bound on the entropy of `generate_default_password(min_length)`, in bits."""
    digits = max(_MIN_DIGITS, min_length - max(len(w) for w in password_words()))
    runs = len(DIGITS) ** digits - _simple_runs_bound(digits)
    return math.log2(len(password_words())) + math.log2(runs)


def generate_default_password(min_length: int = 8, rng: random.Random | None = None) -> str:
    """A default password a child can read off a slip and type: Capitalised word + digits.

    E.g. "Mango4821" or, for a short word, "Cat58274". The word is drawn uniformly from
    `password_words()` (1,090 words, ~10.09 bits); then at least 4 digits from 2-9
    (3 bits each) are added, more when needed to reach `min_length`, redrawn while they are a
    simple run (`is_simple_run`: 82 of the 4,096 four-digit runs). Entropy is therefore at
    least ~10.1 + 11.97 = ~22 bits (`default_password_bits()`): enough for a one-time password
    behind slapd's sign-in delays that must be changed at the first sign-in, not for anything
    else.

    Always has an upper-case letter, lower-case letters and a digit. Digits are never 0 or 1 and
    the capital is never I or O.
    `rng` defaults to `secrets.SystemRandom()`.
    """
    if isinstance(min_length, bool) or not isinstance(min_length, int):
        raise ValueError("min_length must be an integer")
    if not 1 <= min_length <= _MAX_PASSWORD_LENGTH:
        raise ValueError(f"min_length must be between 1 and {_MAX_PASSWORD_LENGTH}")
    r = _rng(rng)
    word = r.choice(password_words())
    n_digits = max(_MIN_DIGITS, min_length - len(word))
    while True:
        digits = "".join(r.choice(DIGITS) for _ in range(n_digits))
        if not is_simple_run(digits):
            return word.capitalize() + digits
