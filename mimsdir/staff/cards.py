"""Pre-set challenge cards for Primary 2-3 (issue 4): answers drawn, hashed, stored, printed.

A P2-P3 child cannot be expected to choose and remember good answers, so the school gives each
one a card (in the student handbook) with ``register_count`` questions and a two-word answer
each. The answers exist only on the card: they are hashed (argon2id, ``qna`` parameters) before
anything is written, the hashes go to ``mimsChallenge`` with ``mimsChallengeOrigin: card``, and
the plain answers live only in memory and in the PDF (mode 0600). Re-issuing replaces a
student's answers: the old card stops working.

Ordering against crashes: see ``mimsdir.staff.secret_output`` (render, stage, store, commit).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import ldap

from mimsdir.challenge import DEFAULT_QUESTIONS, ChallengeHasher, Question, encode_challenge
from mimsdir.config import Config
from mimsdir.errors import DirectoryUnavailable, MimsError
from mimsdir.ldapio import Conn
from mimsdir.secret_docs import CardData
from mimsdir.staff.credentials import BatchResult, Modlist
from mimsdir.staff.model import CARD_LEVELS, RowError, StudentRecord, sort_key
from mimsdir.staff.secret_output import StagedSecretFile
from mimsdir.wordlist import generate_card_answer

CARD_TITLE = "My MIMS card"


def render_cards(cards: list[CardData], title: str) -> bytes:
    """``pdfs.render_cards``, imported when a card is drawn (the PDF code is heavy)."""
    from mimsdir import pdfs

    return pdfs.render_cards(cards, title)


def catalogue(cfg: Config) -> tuple[Question, ...]:
    """The configured questions, or the built-in ones when the config lists none."""
    if cfg.qna.questions:
        return tuple(Question(q.id, q.text) for q in cfg.qna.questions)
    return DEFAULT_QUESTIONS


def hasher_for(cfg: Config) -> ChallengeHasher:
    return ChallengeHasher(memory_kib=cfg.qna.memory_kib, time_cost=cfg.qna.time_cost,
                           parallelism=cfg.qna.parallelism)


@dataclass
class CardPlan:
    """One student's new card and the values to store. The repr shows neither answers (the
    CardData hides them) nor hashes."""

    student: StudentRecord
    card: CardData
    challenge_values: list[str] = field(repr=False)

    def modlist(self) -> Modlist:
        return card_modlist(self.challenge_values)


def card_modlist(challenge_values: Sequence[str]) -> Modlist:
    """Replace all answers; the origin is the card; nothing left to change; the questions the
    SSPR portal may have been asking refer to the old answers, so they go too."""
    return [(ldap.MOD_REPLACE, "mimsChallenge", [v.encode("ascii") for v in challenge_values]),
            (ldap.MOD_REPLACE, "mimsChallengeOrigin", [b"card"]),
            (ldap.MOD_REPLACE, "mimsQnaMustChange", []),
            (ldap.MOD_REPLACE, "mimsSsprAsked", [])]


def plan_card(student: StudentRecord, questions: Sequence[Question], count: int,
              hasher: ChallengeHasher, rng: random.Random | None = None) -> CardPlan:
    """Draw ``count`` distinct questions and an answer for each; hash them. Pure but for the
    randomness (``rng`` defaults to the system's CSPRNG)."""
    r = rng if rng is not None else secrets.SystemRandom()
    drawn = r.sample(list(questions), count)
    pairs: list[tuple[str, str]] = []
    stored: list[str] = []
    for question in drawn:
        answer = generate_card_answer(r)
        pairs.append((question.text, answer))
        stored.append(encode_challenge(question.id, hasher.hash(answer)))
    card = CardData(
        name=student.name or student.display_name or student.uid,
        display_name=student.display_name,
        school=student.school,
        class_name=student.class_name,
        login_id=student.login_id,
        questions=pairs,
    )
    return CardPlan(student, card, stored)


def card_refusal(student: StudentRecord) -> str | None:
    """Why a named student gets no card (cards are for active P2-P3 students), or None."""
    if not student.active:
        return f"account is {student.status or 'not active'}: no card for it"
    if student.level not in CARD_LEVELS:
        return (f"is in {student.level or 'no level'}: cards are for P2-P3; "
                "P4-P6 set their own answers (use `mimsdir qna reset` to make them)")
    return None


@dataclass
class CardResult(BatchResult):
    cards: int = 0


def issue_cards(conn: Conn, cfg: Config, students: Sequence[StudentRecord],
                output: StagedSecretFile, rng: random.Random | None = None) -> CardResult:
    """Plan, render, stage, store, commit (``secret_output``). Row errors and an interruption
    are reported in the result; only stored students' cards are ever delivered."""
    result = CardResult()
    questions = catalogue(cfg)
    hasher = hasher_for(cfg)
    plans = [plan_card(s, questions, cfg.qna.register_count, hasher, rng)
             for s in sorted(students, key=sort_key)]
    if not plans:
        return result
    output.stage(render_cards([p.card for p in plans], CARD_TITLE))
    stored: list[CardPlan] = []
    for plan in plans:
        try:
            conn.modify(plan.student.dn, plan.modlist(),
                        f"storing {plan.student.uid}'s card answers")
        except DirectoryUnavailable as exc:
            result.interrupted = exc
            break
        except MimsError as exc:
            result.errors.append(RowError(plan.student.uid, str(exc)))
            continue
        stored.append(plan)
        result.changed.append(plan.student)
    if len(stored) == len(plans):
        output.commit()
    elif stored:
        output.commit(render_cards([p.card for p in stored], CARD_TITLE))
    else:
        output.discard()
    result.cards = len(stored)
    return result
