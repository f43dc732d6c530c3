"""What every view needs: the request's directory connection, who is signed in, the gates
(forced password change, forced questions), and the argon2 work that keeps answers for
unknown login IDs as slow as real ones."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from argon2 import low_level
from flask import current_app, g, redirect, session, url_for

from mimsdir.challenge import ChallengeHasher
from mimsdir.config import Config
from mimsdir.portal.directory import PortalDirectory, ServicePool
from mimsdir.portal.metrics import metrics
from mimsdir.portal.sspr import Ghosts
from mimsdir.staff.cards import catalogue, hasher_for

log = logging.getLogger("mimsdir.portal")
UPPER = ("P4", "P5", "P6")


def cfg() -> Config:
    return current_app.config["MIMS"]  # type: ignore[no-any-return]


def directory() -> PortalDirectory:
    if "directory" not in g:
        pool = current_app.extensions.get("mims_pool")
        if pool is None:
            pool = current_app.extensions["mims_pool"] = ServicePool(cfg(),
                                                                     cfg().portal.threads)
        g.directory = PortalDirectory(cfg(), observe=metrics(current_app).directory.observe,
                                      pool=pool)
    return g.directory  # type: ignore[no-any-return]


def close_directory(_exc: BaseException | None = None) -> None:
    d = g.pop("directory", None)
    if d is not None:
        d.close()


def hasher() -> ChallengeHasher:
    h = current_app.extensions.get("mims_hasher")
    if h is None:
        h = current_app.extensions["mims_hasher"] = hasher_for(cfg())
    return h  # type: ignore[no-any-return]


def questions() -> dict[str, str]:
    return {q.id: q.text for q in catalogue(cfg())}


def ghosts() -> Ghosts:
    gh = current_app.extensions.get("mims_ghosts")
    if gh is None:
        gh = current_app.extensions["mims_ghosts"] = Ghosts()
    return gh  # type: ignore[no-any-return]


def password_work(password: str) -> None:
    """What slapd would spend checking a password (argon2i at the directory's parameters):
    a sign-in with an unknown login ID takes as long as one with a known ID."""
    a = cfg().directory.argon2
    low_level.hash_secret_raw(password.encode() or b"-", b"mims-portal-salt", time_cost=a.t,
                              memory_cost=a.m, parallelism=a.p, hash_len=32,
                              type=low_level.Type.I)


def who() -> dict[str, Any] | None:
    return session.get("who")


def sign_in_session(person: dict[str, Any], gate: str | None) -> None:
    """A new session at every sign-in: whatever cookie the browser had is worth nothing."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session["who"] = person
    session["gate"] = gate
    session["at"] = time.time()
    session["seen"] = time.time()


def fresh(seconds: int = 600) -> bool:
    """Signed in moments ago: the forced question setup need not ask for the password again."""
    return time.time() - float(session.get("at", 0)) < seconds


def next_gate(person: dict[str, Any], record: Any) -> str | None:
    """After sign-in or a forced change: upper-primary students with no answers of their
    own (none, or still the P2-P3 card's, or flagged) must set their questions first."""
    if person.get("kind") != "student" or record is None:
        return None
    if record.level in UPPER and (record.qna_must_change or not record.challenge_qids
                                  or record.challenge_origin == "card"):
        return "qna"
    return None


def gate_target(gate: str | None) -> str:
    return {"must_change": "account.password", "qna": "account.questions"}.get(
        gate or "", "account.home")


def signed_in(kind: str | None = None, allow_gate: str | None = None) -> Callable[..., Any]:
    """Views for signed-in people; a pending gate sends them to the page they must finish."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            person = who()
            if person is None:
                return redirect(url_for("auth.login"))
            if kind and person.get("kind") != kind:
                return redirect(url_for("auth.start"))
            gate = session.get("gate")
            if gate and gate != allow_gate:
                return redirect(url_for(gate_target(gate)))
            return view(*args, **kwargs)

        return inner

    return wrap
