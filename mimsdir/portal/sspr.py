"""Self-service password reset rules, pure: which questions to ask, how long to back off.

Why the rules are shaped so:
- The questions asked stay the same for a student until they succeed or the back-off window
  ends: refreshing the page must not let anyone shop for easier questions. They are kept in
  the directory (``mimsSsprAsked``), so several portal instances agree.
- Back-off grows (1, 5, 15, 60 minutes by default) rather than locking for a day: a
  classmate must not be able to lock a child out of their account on purpose.
- An unknown login ID gets the same pages, the same argon2 work and a back-off that grows
  the same way (kept in memory), so the portal does not tell who has an account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
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


def backoff(failures: int, minutes: Sequence[int]) -> timedelta:
    """The wait after the ``failures``-th failure in a row (1-based)."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(minutes=minutes[min(failures, len(minutes)) - 1])


def keep_asking(asked: Asked | None, registered: Sequence[str], ask_count: int, now: datetime,
                locked_until: datetime | None, window: timedelta) -> bool:
    """Reuse the questions already asked while they are still valid for this student."""
    if asked is None or len(asked.qids) != ask_count:
        return False
    if any(q not in registered for q in asked.qids):
        return False  # the student changed their questions since
    if locked_until is not None and locked_until > now:
        return True
    return now - asked.at < window


def draw(registered: Sequence[str], ask_count: int) -> tuple[str, ...]:
    rng = secrets.SystemRandom()
    return tuple(rng.sample(list(registered), ask_count))


def ghost_questions(key: bytes, login_id: str, catalogue: Sequence[str],
                    ask_count: int) -> tuple[str, ...]:
    """Questions for a login ID with no usable account: stable for that login ID (so a
    refresh shows the same ones, as for a real student) but unpredictable without the key."""
    digest = hmac.new(key, login_id.strip().lower().encode(), hashlib.sha256).digest()
    pool = list(catalogue)
    out: list[str] = []
    for i in range(min(ask_count, len(pool))):
        out.append(pool.pop(digest[i] % len(pool)))
    return tuple(out)


class Ghosts:
    """Back-off state for login IDs that have no account, so their back-off grows like a
    real one. In memory, bounded; an attacker who restarts nothing learns nothing."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()
        self.capacity = capacity

    def get(self, login_id: str) -> tuple[int, datetime | None]:
        with self._lock:
            return self._items.get(login_id.lower(), (0, None))

    def fail(self, login_id: str, now: datetime, minutes: Sequence[int]) -> datetime:
        with self._lock:
            failures, _ = self._items.pop(login_id.lower(), (0, None))
            failures += 1
            until = now + backoff(failures, minutes)
            self._items[login_id.lower()] = (failures, until)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return until
