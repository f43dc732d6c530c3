"""Checking a challenge answer, and re-hashing it when the configured parameters went up.

Why upgrade on verify: argon2id parameters are raised over the years (``qna.time_cost``, more
memory) but a hash can only be recomputed when the answer is known, which is exactly when a
student answers correctly. The SSPR portal calls ``verify_and_upgrade`` for every answer it
checks; the card answers of a P2 child are upgraded the first time they are used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import ldap

from mimsdir.challenge import ChallengeHasher, decode_challenge, encode_challenge
from mimsdir.errors import MimsError
from mimsdir.ldapio import Conn, values
from mimsdir.staff.credentials import Modlist


def find_hash(challenge_values: list[str], qid: str) -> tuple[str, str] | None:
    """The stored value and its hash for question ``qid``; None if the student has none."""
    for value in challenge_values:
        try:
            vqid, encoded = decode_challenge(value)
        except ValueError:
            continue
        if vqid == qid:
            return value, encoded
    return None


def upgrade_plan(challenge_values: list[str], qid: str, answer: str,
                 hasher: ChallengeHasher) -> tuple[bool, Modlist | None]:
    """Verify ``answer`` for ``qid``; return (ok, modlist that swaps in a stronger hash).

    Pure but for the hashing. A question the student has no answer to costs one dummy verify
    (same time as a real one) and is False. The modlist deletes exactly the old value and adds
    the new one in one modify, so a concurrent change of the answers makes it fail rather than
    overwrite the newer answers.
    """
    found = find_hash(challenge_values, qid)
    if found is None:
        return hasher.dummy_verify(answer), None
    old_value, encoded = found
    if not hasher.verify(encoded, answer):
        return False, None
    if not hasher.needs_upgrade(encoded):
        return True, None
    new_value = encode_challenge(qid, hasher.hash(answer))
    return True, [(ldap.MOD_DELETE, "mimsChallenge", [old_value.encode("ascii")]),
                  (ldap.MOD_ADD, "mimsChallenge", [new_value.encode("ascii")])]


def verify_and_upgrade(conn: Conn, dn: str, qid: str, answer: str,
                       hasher: ChallengeHasher) -> bool:
    """True if ``answer`` is right for question ``qid`` of the student at ``dn`` (see
    ``verify_answers``)."""
    return verify_answers(conn, dn, [(qid, answer)], hasher)[0]


def verify_answers(conn: Conn, dn: str, answers: Sequence[tuple[str, str]],
                   hasher: ChallengeHasher) -> list[bool]:
    """For each (question id, answer), whether it is right for the entry at ``dn``; the
    right ones hashed with weaker parameters are re-hashed, in one write.

    One read of ``mimsChallenge`` for all the answers, and every answer costs one argon2
    check whatever the entry holds: the SSPR portal calls this with a login ID's state entry
    (no answers, every check a dummy one) as with a student, so the two take the same
    directory round trips and the same hashing. ``conn`` must be able to read (and, for the
    upgrade, write) ``mimsChallenge``: the SSPR service or an ICT admin. A failed upgrade
    (the answers changed meanwhile, a refusal) does not change the verdict: the old hash
    still verifies next time.
    """
    attrs = conn.get(dn, ["mimsChallenge"], "reading challenge answers")
    stored = values(attrs, "mimsChallenge") if attrs else []
    results: list[bool] = []
    modlist: Modlist = []
    for qid, answer in answers:
        ok, upgrade = upgrade_plan(stored, qid, answer, hasher)
        results.append(ok)
        if ok and upgrade:
            modlist.extend(upgrade)
    if modlist:
        # best effort: a failed upgrade never turns a right answer into a wrong one
        with contextlib.suppress(MimsError):
            conn.modify(dn, modlist, "re-hashing challenge answers with current parameters")
    return results
