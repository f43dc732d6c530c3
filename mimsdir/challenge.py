"""Challenge questions and answers: normalising, hashing, storing, checking a student's own set.

Pure functions on plain values: no LDAP, no files, no logging. Nothing here puts an answer into an
error message, a repr or a return value other than the hash.

Stored form (design-notes §3): each `mimsChallenge` value is ``<question-id>$<argon2id hash>``.
An argon2 encoded hash starts with ``$`` and contains more of them, so a value splits on its
FIRST ``$`` only::

    pet-toy$$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA
    ^^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
    qid     argon2 encoded hash
"""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "DEFAULT_QUESTIONS",
    "MIN_MEMORY_KIB",
    "MIN_PARALLELISM",
    "MIN_TIME_COST",
    "QUESTION_ID_RE",
    "ChallengeHasher",
    "Question",
    "answer_length",
    "decode_challenge",
    "encode_challenge",
    "normalise_answer",
    "question_by_id",
    "validate_own_answers",
]

# ---------------------------------------------------------------------------------------------
# Normalising


def normalise_answer(text: str) -> str:
    r"""Return the form of an answer that is hashed and compared.

    Forgiving to an 8-year-old: Unicode NFKC (full-width letters and digits become plain ones),
    case-folded, and every character that is not a letter, a digit or a combining mark removed:
    spaces, hyphens, apostrophes, full stops, emoji and other symbols all go. Letters of any
    script stay, and so do combining marks, which Tamil (and other Indic scripts) need for their
    vowel signs and viramas: dropping them would turn different words into one.

    Accents are not stripped ("Zoë" stays "zoë"): the answer is typed by the same child, usually
    on the same keyboard, and stripping would also damage scripts where the mark is the letter.

    >>> normalise_answer("Blue Whale!")
    'bluewhale'
    >>> normalise_answer(" BLUE-whale ") == normalise_answer("bluewhale") == "bluewhale"
    True
    >>> normalise_answer("\uff2d\uff49\uff4d\uff49 \uff12")  # full-width: "Mimi 2" from an IME
    'mimi2'
    >>> normalise_answer("小 熊。")
    '小熊'
    >>> normalise_answer("அம்மா!") == "அம்மா"   # the virama and the vowel sign are kept
    True
    >>> normalise_answer("Straße")
    'strasse'
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    # casefold() can produce sequences that are no longer NFKC (e.g. some Greek); normalise again.
    folded = unicodedata.normalize("NFKC", folded)
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LNM")


def answer_length(normalised: str) -> int:
    """Length of a normalised answer for the "too short" rule.

    A wide (CJK) character counts as two: one Chinese character carries about as much as two
    Latin letters, and a two-character Chinese name is a fair answer.

    >>> answer_length("cat"), answer_length("熊猫")
    (3, 4)
    """
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in normalised)


# ---------------------------------------------------------------------------------------------
# Hashing

#: OWASP's minimum argon2id configuration (Password Storage Cheat Sheet): m=19 MiB, t=2, p=1.
MIN_MEMORY_KIB = 19456
MIN_TIME_COST = 2
MIN_PARALLELISM = 1

# Parameters in a stored hash above these are treated as malformed rather than computed: a
# tampered value must not make the SSPR service allocate gigabytes or spin for minutes.
_MAX_MEMORY_KIB = 1024 * 1024
_MAX_TIME_COST = 64
_MAX_PARALLELISM = 64


class ChallengeHasher:
    """argon2id hashing of normalised challenge answers (argon2-cffi).

    >>> h = ChallengeHasher(memory_kib=19456, time_cost=2, parallelism=1)
    >>> encoded = h.hash("Purple Tiger")
    >>> h.verify(encoded, "purple-tiger!"), h.verify(encoded, "green tiger")
    (True, False)

    Every public method normalises the answer itself; callers pass what the child typed.
    """

    def __init__(
        self,
        memory_kib: int = MIN_MEMORY_KIB,
        time_cost: int = 3,
        parallelism: int = MIN_PARALLELISM,
        *,
        hash_len: int = 32,
        salt_len: int = 16,
    ) -> None:
        for name, value, minimum in (
            ("memory_kib", memory_kib, MIN_MEMORY_KIB),
            ("time_cost", time_cost, MIN_TIME_COST),
            ("parallelism", parallelism, MIN_PARALLELISM),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"argon2 {name} must be an integer")
            if value < minimum:
                raise ValueError(
                    f"argon2 {name}={value} is below OWASP's minimum of {minimum} "
                    f"(m>={MIN_MEMORY_KIB} KiB, t>={MIN_TIME_COST}, p>={MIN_PARALLELISM})"
                )
        if (
            memory_kib > _MAX_MEMORY_KIB
            or time_cost > _MAX_TIME_COST
            or (parallelism > _MAX_PARALLELISM)
        ):
            raise ValueError(
                f"argon2 parameters too large (at most m={_MAX_MEMORY_KIB} KiB, "
                f"t={_MAX_TIME_COST}, p={_MAX_PARALLELISM})"
            )
        if memory_kib < 8 * parallelism:
            raise ValueError("argon2 memory_kib must be at least 8 x parallelism")
        if hash_len < 16 or salt_len < 16:
            raise ValueError("argon2 hash_len and salt_len must be at least 16 bytes")
        self.memory_kib = memory_kib
        self.time_cost = time_cost
        self.parallelism = parallelism
        self.hash_len = hash_len
        self.salt_len = salt_len
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ChallengeHasher(memory_kib={self.memory_kib}, time_cost={self.time_cost}, "
            f"parallelism={self.parallelism})"
        )

    def hash(self, answer: str) -> str:
        """Hash the normalised answer; return the argon2 encoded string (``$argon2id$...``).

        Raises ValueError for an answer that normalises to nothing (only spaces or punctuation).
        """
        normalised = normalise_answer(answer)
        if not normalised:
            raise ValueError("a challenge answer needs at least one letter or digit")
        return self._ph.hash(normalised)

    def verify(self, encoded: str, answer: str) -> bool:
        """True if `answer` matches `encoded`. Never raises for a wrong answer or a bad hash.

        A malformed hash, a hash of another argon2 type or with absurd parameters, and a non-str
        argument all give False.
        """
        if not isinstance(encoded, str) or not isinstance(answer, str):
            return False
        params = _parameters(encoded)
        if params is None or not _sane(params):
            return False
        try:
            return self._ph.verify(encoded, normalise_answer(answer))
        except (VerificationError, InvalidHashError, ValueError, TypeError):
            return False

    def needs_upgrade(self, encoded: str) -> bool:
        """True if `encoded` was made with weaker settings than this hasher's.

        Weaker means: not argon2id, an older argon2 version, or a memory, time, parallelism,
        hash or salt length below the configured one. Higher stored parameters are not an
        upgrade reason. A malformed hash is reported as needing an upgrade (it can never verify,
        so the answer must be set again).
        """
        params = _parameters(encoded)
        if params is None:
            return True
        return (
            params.type is not argon2.Type.ID
            or params.version < argon2.low_level.ARGON2_VERSION
            or params.memory_cost < self.memory_kib
            or params.time_cost < self.time_cost
            or params.parallelism < self.parallelism
            or params.hash_len < self.hash_len
            or params.salt_len < self.salt_len
        )

    def dummy_verify(self, answer: str) -> bool:
        """Do the work of one real `verify` and return False.

        For an unknown account or a question the student has no answer to, so that the reply
        takes as long as for a real account. The dummy hash (of a random secret, with this
        hasher's parameters) is made once, on first use.
        """
        dummy = self._dummy_hash
        if dummy is None:
            with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self._ph.hash(secrets.token_hex(16))
                dummy = self._dummy_hash
        self.verify(dummy, answer)
        return False


def _parameters(encoded: object) -> argon2.Parameters | None:
    if not isinstance(encoded, str) or not encoded.startswith("$argon2"):
        return None
    try:
        return argon2.extract_parameters(encoded)
    except (InvalidHashError, ValueError, TypeError, IndexError):
        return None


def _sane(params: argon2.Parameters) -> bool:
    return (
        params.memory_cost <= _MAX_MEMORY_KIB
        and params.time_cost <= _MAX_TIME_COST
        and params.parallelism <= _MAX_PARALLELISM
    )


# ---------------------------------------------------------------------------------------------
# Stored form

#: A question id: lower-case ASCII letters, digits and hyphens, 1 to 32 of them.
QUESTION_ID_RE = re.compile(r"[a-z0-9-]{1,32}")


def _check_qid(qid: object) -> str:
    if not isinstance(qid, str) or not QUESTION_ID_RE.fullmatch(qid):
        raise ValueError("question id must be 1-32 characters of a-z, 0-9 and '-'")
    return qid


def encode_challenge(qid: str, encoded_hash: str) -> str:
    """Return the `mimsChallenge` value ``<qid>$<hash>``.

    >>> encode_challenge("first-soft-toy", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    'first-soft-toy$$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'
    """
    _check_qid(qid)
    if not isinstance(encoded_hash, str) or not encoded_hash:
        raise ValueError("challenge hash must be a non-empty string")
    if any(ch in encoded_hash for ch in "\r\n\0"):
        raise ValueError("challenge hash must be one line")
    return f"{qid}${encoded_hash}"


def decode_challenge(value: str) -> tuple[str, str]:
    """Split a `mimsChallenge` value on its first ``$`` into (question id, argon2 hash).

    Raises ValueError (without echoing the value) if there is no ``$``, the question id is not
    ``[a-z0-9-]{1,32}``, or the hash part is empty. The hash itself is checked by `verify`.

    >>> decode_challenge("first-soft-toy$$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    ('first-soft-toy', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA')
    """
    if not isinstance(value, str):
        raise ValueError("mimsChallenge value must be a string")
    qid, sep, encoded_hash = value.partition("$")
    if not sep:
        raise ValueError("mimsChallenge value has no '$' after its question id")
    try:
        _check_qid(qid)
    except ValueError:
        raise ValueError(
            "mimsChallenge value has no valid question id before its first '$'"
        ) from None
    if not encoded_hash:
        raise ValueError("mimsChallenge value has no hash after its question id")
    return qid, encoded_hash


# ---------------------------------------------------------------------------------------------
# Questions


@dataclass(frozen=True)
class Question:
    id: str
    text: str

    def __post_init__(self) -> None:
        _check_qid(self.id)
        if not self.text.strip():
            raise ValueError("question text must not be empty")


#: Questions whose answers a classmate cannot easily see or guess (no favourite colour, school,
#: form teacher, pet everybody has met), that a child can remember, and that do not assume a
#: particular family, religion or home language. Ids are stored in the directory: never rename
#: one; retire it by removing it here only once no student's answers use it.
DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question("first-soft-toy", "What is the name of your first soft toy?"),
    Question("kindergarten-teacher", "What is the name of your kindergarten teacher?"),
    Question("kindergarten-friend", "What is the name of your best friend in kindergarten?"),
    Question("first-holiday", "Where did you go for your first holiday?"),
    Question("youngest-cousin", "What is the name of your youngest cousin?"),
    Question("favourite-relative", "What is the name of your favourite uncle or aunt?"),
    Question("special-day-food", "What food does your family cook on special days?"),
    Question("bedtime-story", "What is the name of your favourite bedtime story?"),
    Question("baby-nickname", "What did your family call you when you were a baby?"),
    Question("grandparents-snack", "What snack do you like to eat at your grandparents' home?"),
    Question("first-cinema-film", "What was the first film you watched at the cinema?"),
    Question("family-game", "What game does your family like to play together?"),
)


def question_by_id(qid: str, questions: Iterable[Question] = DEFAULT_QUESTIONS) -> Question:
    """Return the question with id `qid`; KeyError if there is none."""
    for question in questions:
        if question.id == qid:
            return question
    raise KeyError(qid)


def validate_own_answers(
    answers: Mapping[str, str] | Iterable[tuple[str, str]],
    login_id: str,
    min_length: int = 3,
    *,
    questions: Sequence[Question] = DEFAULT_QUESTIONS,
    required: int | None = None,
    max_length: int = 64,
) -> list[str]:
    """Check the answers a P4-P6 student chose; return a list of problems (empty if all fine).

    `answers` maps question id to the typed answer; a sequence of (id, answer) pairs is also
    accepted, as a web form may send the same question twice. Problems are plain sentences for
    the student's screen. They name the question, never the answer.

    Rules, on the normalised answer (see `normalise_answer`):
      - the question id is known and chosen only once;
      - at least `min_length` letters or digits (a Chinese character counts as two), at most
        `max_length`;
      - not the same answer as another question's;
      - not the login ID, nor its part before the "@";
      - exactly `required` answers, if `required` is given.
    """
    pairs = list(answers.items()) if isinstance(answers, Mapping) else list(answers)
    known = {q.id: q for q in questions}
    login = login_id.strip()
    forbidden = {normalise_answer(login), normalise_answer(login.partition("@")[0])} - {""}

    problems: list[str] = []
    if required is not None and len(pairs) != required:
        problems.append(f"Please answer exactly {required} questions.")

    seen_qids: set[str] = set()
    seen_answers: dict[str, str] = {}
    for qid, answer in pairs:
        question = known.get(qid)
        if question is None:
            problems.append("One of the questions is not on the list. Please choose again.")
            continue
        label = f'"{question.text}"'
        if qid in seen_qids:
            problems.append(f"You chose {label} more than once. Please choose another question.")
            continue
        seen_qids.add(qid)

        normalised = normalise_answer(answer if isinstance(answer, str) else "")
        size = answer_length(normalised)
        if size < min_length:
            problems.append(
                f"Your answer to {label} is too short. "
                f"Use at least {min_length} letters or numbers."
            )
            continue
        if size > max_length:
            problems.append(
                f"Your answer to {label} is too long. Use at most {max_length} letters or numbers."
            )
            continue
        if normalised in forbidden:
            problems.append(
                f"Your answer to {label} is your login ID. Choose something only you know."
            )
            continue
        if normalised in seen_answers:
            problems.append(
                f"Your answer to {label} is the same as your answer to "
                f'"{seen_answers[normalised]}". Use a different answer for each question.'
            )
            continue
        seen_answers[normalised] = question.text
    return problems
