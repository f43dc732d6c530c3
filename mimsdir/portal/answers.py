"""Rules for the challenge answers a P4-P6 student types, as problem codes the page turns
into words in the student's language. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from mimsdir.challenge import answer_length, normalise_answer

MAX_LENGTH = 64


def problems(pairs: Sequence[tuple[str, str]], login_id: str, known: Sequence[str],
             required: int, min_length: int) -> list[tuple[str, int]]:
    """[(code, slot)]: slot is the 1-based row the problem is on (0: the whole form).

    codes: count, unknown, same-question, empty, short, long, repeated, login.
    """
    out: list[tuple[str, int]] = []
    if len(pairs) != required:
        out.append(("count", 0))
    seen_q: set[str] = set()
    seen_a: set[str] = set()
    login = normalise_answer(login_id)
    local = normalise_answer(login_id.split("@", 1)[0])
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
        if norm in seen_a:
            out.append(("repeated", slot))
        seen_a.add(norm)
        if norm in (login, local):
            out.append(("login", slot))
    return out
