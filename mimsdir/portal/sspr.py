"""Self-service password reset rules, pure: which questions to ask, how long to back off.

Why the rules are shaped so:
- The questions asked stay the same for a login ID until a reset succeeds: refreshing the
  page, waiting an hour or switching portal instance must not let anyone shop for easier
  questions. They are kept in the directory (``mimsSsprAsked``).
- Every attempt is counted *before* the answers are checked, with a write that only succeeds
  if nobody else counted in between (an LDAP assertion on the count): 24 attempts sent at
  once get one answer check, not 24.
- Back-off grows (1, 5, 15, 60 minutes by default) rather than locking for a day, and the
  count decays (one failure forgiven per ``decay`` without failures): a classmate must not be
  able to keep a child out of SSPR until a teacher steps in.
- A login ID with no usable account has the same state in the directory (an entry under
  ``ou=sessions`` named by a keyed hash of the login ID), so every instance agrees and the
  pages, writes and waits are the same as for a real student.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mimsdir.gtime import format_gtime, parse_gtime


@dataclass(frozen=True)
class Asked:
    at: datetime
    qids: tuple[str, ...]

    def encode(self) -> str:
        return f"{format_gtime(self.at)}${','.join(self.qids)}"

    @classmethod
    def decode(cls, value: str | None) -> Asked | None:
        if not value or "$" not in value:
            return None
        when, _, ids = value.partition("$")
        at = parse_gtime(when)
        qids = tuple(q for q in ids.split(",") if q)
        return cls(at, qids) if at and qids else None


@dataclass(frozen=True)
class Attempts:
    """The SSPR back-off state of one login ID, as stored (a student's entry, or the state
    entry of a login ID with no usable account)."""

    failures: int = 0
    locked_until: datetime | None = None
    last_failure: datetime | None = None
    asked: Asked | None = None

    def waiting(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class Reservation:
    """What to write before the answers are checked: the attempt already counted as a
    failure. ``expect`` is the stored count the write asserts (None: no count stored)."""

    expect: int | None
    failures: int
    locked_until: datetime
    at: datetime


def backoff(failures: int, minutes: Sequence[int]) -> timedelta:
    """The wait after the ``failures``-th failure in a row (1-based)."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(minutes=minutes[min(failures, len(minutes)) - 1])


def decayed(failures: int, last_failure: datetime | None, now: datetime,
            decay: timedelta) -> int:
    """The count after forgiving one failure per ``decay`` since the last one."""
    if failures <= 0:
        return 0
    if last_failure is None or decay <= timedelta(0):
        return failures
    quiet = now - last_failure
    if quiet <= timedelta(0):
        return failures
    return max(0, failures - int(quiet / decay))


def reserve(state: Attempts, now: datetime, minutes: Sequence[int],
            decay: timedelta) -> Reservation:
    """Count this attempt as a failure up front; a right answer clears it afterwards."""
    count = decayed(state.failures, state.last_failure, now, decay) + 1
    return Reservation(expect=state.failures if state.failures else None, failures=count,
                       locked_until=now + backoff(count, minutes), at=now)


def keep_asking(asked: Asked | None, registered: Sequence[str], ask_count: int) -> bool:
    """Reuse the questions already asked while they are still the student's questions."""
    if asked is None or len(asked.qids) != ask_count:
        return False
    return all(q in registered for q in asked.qids)


def draw(registered: Sequence[str], ask_count: int) -> tuple[str, ...]:
    rng = secrets.SystemRandom()
    return tuple(rng.sample(list(registered), ask_count))


def login_key(key: bytes, login_id: str) -> str:
    """A keyed hash of a login ID: names its state entry without writing the login ID (or
    whether it exists) into the directory."""
    return hmac.new(key, b"sspr\0" + login_id.strip().lower().encode(),
                    hashlib.sha256).hexdigest()[:40]


def ghost_questions(key: bytes, login_id: str, catalogue: Sequence[str],
                    register_count: int) -> tuple[str, ...]:
    """The questions a login ID with no usable account "registered": stable for that login
    ID, unpredictable without the key. The ones asked are drawn from them like a student's."""
    digest = hmac.new(key, login_id.strip().lower().encode(), hashlib.sha256).digest()
    pool = list(catalogue)
    out: list[str] = []
    for i in range(min(register_count, len(pool))):
        out.append(pool.pop(digest[i] % len(pool)))
    return tuple(out)
