"""Rules for the challenge answers a P4-P6 student types, as problem codes the page turns
into words in the student's language. Pure.

Why: the answers are the key to the account when the password is forgotten, so an answer
anyone could guess (``aaa``, ``123``, the login ID or student ID) or the old card's answer
(printed on paper that went home in a handbook) would let a classmate in.
"""

from __future__ import annotations

from collections.abc import Sequence

from mimsdir.challenge import answer_length, normalise_answer

MAX_LENGTH = 64
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl",
              "zxcvbnm")


def trivial(norm: str) -> bool:
    """One character repeated, or a run of a simple sequence (forwards or backwards).

    >>> [trivial(a) for a in ("aaa", "123", "4321", "abcd", "qwerty", "mimi", "1998")]
    [True, True, True, True, True, False, False]
    """
    if len(set(norm)) <= 1:
        return True
    return any(norm in seq or norm in seq[::-1] for seq in _SEQUENCES)


def problems(pairs: Sequence[tuple[str, str]], login_id: str, known: Sequence[str],
             required: int, min_length: int, forbidden: Sequence[str] = ()
             ) -> list[tuple[str, int]]:
    """[(code, slot)]: slot is the 1-based row the problem is on (0: the whole form).

    codes: count, unknown, same-question, empty, short, long, repeated, login, trivial.
    ``forbidden``: more values no answer may be (the student ID, names).
    """
    out: list[tuple[str, int]] = []
    if len(pairs) != required:
        out.append(("count", 0))
    seen_q: set[str] = set()
    seen_a: set[str] = set()
    banned = {normalise_answer(login_id), normalise_answer(login_id.split("@", 1)[0])}
    banned |= {normalise_answer(v) for v in forbidden if v}
    banned.discard("")
    for slot, (qid, answer) in enumerate(pairs, start=1):
        if qid not in known:
            out.append(("unknown", slot))
        elif qid in seen_q:
            out.append(("same-question", slot))
        seen_q.add(qid)
        norm = normalise_answer(answer)
        if not norm:
            out.append(("empty", slot))
            continue
        if len(answer) > MAX_LENGTH:
            out.append(("long", slot))
        elif answer_length(norm) < min_length:
            out.append(("short", slot))
        elif trivial(norm):
            out.append(("trivial", slot))
        if norm in seen_a:
            out.append(("repeated", slot))
        seen_a.add(norm)
        if norm in banned:
            out.append(("login", slot))
    return out
