"""Server-side sessions: the cookie carries a random token and nothing personal; the record
(who is signed in, the gate, the SSPR state) lives in the directory under ``ou=sessions``.

Why the directory: it is the one store every portal instance already shares (replicated by
syncrepl like everything else), so a sign-out, a reset or a disable on one instance ends the
session on all of them, and a copied cookie is worth nothing once its record is gone.

A session ends when
- it is older than ``portal.session_hours`` (absolute, whatever the activity),
- it was idle for ``portal.idle_timeout_minutes``,
- its person signs out (every session of that person ends), changes their password (every
  other session ends), is reset or unlocked by a teacher (every session ends),
- its person's password changed anywhere else (an ICT reset, a device), or the person is no
  longer active (disabled, left): checked on every request against the directory.

The record is keyed by a hash of the token, so a directory reader (a backup, the replicator)
cannot turn a record into a working cookie.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import g, session

# The last-seen time is written at most this often (one write a minute per active session).
TOUCH_EVERY = timedelta(seconds=60)
# A session with nobody signed in (an SSPR in progress) lives this long at most.
ANONYMOUS_LIFETIME = timedelta(minutes=30)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Record:
    """One session as stored. ``data`` is plain JSON: who, gate, sspr, pw (the person's
    pwdChangedTime when the session was made or last changed the password itself)."""

    key: str
    subject: str | None
    expires: datetime
    seen: datetime
    data: dict[str, Any] = field(default_factory=dict)
    stored: bool = False  # already in the directory
    dirty: bool = False
    text: str = ""  # mimsSessionData as last read or written

    def encode_data(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))

    @staticmethod
    def decode_data(text: str | None) -> dict[str, Any]:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Subject:
    """What the directory says of the person now."""

    active: bool
    pw_changed: str | None  # pwdChangedTime, verbatim


def verdict(rec: Record, now: datetime, idle: timedelta,
            subject: Subject | None) -> str | None:
    """Why this session is over, or None while it is valid. ``subject`` is None when the
    person's entry is gone (or the session has no person)."""
    if now >= rec.expires:
        return "expired"
    if rec.subject is None:
        return None
    if now - rec.seen > idle:
        return "idle"
    if subject is None or not subject.active:
        return "revoked"
    if subject.pw_changed != rec.data.get("pw"):
        return "revoked"
    return None


# -- the request's record (Flask glue) -------------------------------------------------------

def current() -> Record | None:
    return getattr(g, "mims_session", None)


def get(key: str, default: Any = None) -> Any:
    rec = current()
    return rec.data.get(key, default) if rec else default


def put(key: str, value: Any) -> None:
    """Set a value, creating an anonymous record if this visitor has none yet (only state
    worth keeping makes a record: a bare page view never writes to the directory)."""
    rec = current()
    if rec is None:
        now = _now()
        rec = Record(key="", subject=None, expires=now + ANONYMOUS_LIFETIME, seen=now)
        g.mims_session = rec
    if rec.data.get(key) != value:
        rec.data[key] = value
        rec.dirty = True


def pop(key: str, default: Any = None) -> Any:
    rec = current()
    if rec is None or key not in rec.data:
        return default
    rec.dirty = True
    return rec.data.pop(key)


def who() -> dict[str, Any] | None:
    person = get("who")
    return person if isinstance(person, dict) else None


def _now() -> datetime:
    from mimsdir.portal.directory import now

    return now()


def keep_cookie_only(*names: str) -> None:
    """Clear the cookie (a new CSRF token follows) but for these harmless keys."""
    kept = {n: session[n] for n in names if n in session}
    session.clear()
    session.update(kept)
