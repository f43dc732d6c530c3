"""What every view needs: the request's directory connection, who is signed in, the gates
(forced password change, forced questions), sessions begun and ended, and the argon2 work
that keeps every failure path as slow as a real check."""

from __future__ import annotations

import functools
import logging
import secrets
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, g, redirect, session, url_for

from mimsdir.challenge import ChallengeHasher
from mimsdir.config import Config
from mimsdir.portal import sessions
from mimsdir.portal.directory import BindPool, PortalDirectory, ServicePool, now
from mimsdir.portal.metrics import metrics
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
        binds = current_app.extensions.get("mims_binds")
        if binds is None:
            binds = current_app.extensions["mims_binds"] = BindPool(cfg(), cfg().portal.threads)
        g.directory = PortalDirectory(cfg(), observe=metrics(current_app).directory.observe,
                                      pool=pool, binds=binds)
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


def who() -> dict[str, Any] | None:
    return sessions.who()


def begin_session(person: dict[str, Any], gate: str | None, pw_changed: str | None) -> None:
    """A new session at every sign-in: a new token and a new CSRF token, and the old record
    deleted, so whatever cookie the browser had (or a classmate copied) is worth nothing."""
    d = directory()
    old = sessions.current()
    if old is not None and old.stored:
        d.session_delete(old.key)
    sessions.keep_cookie_only("lang")
    token = sessions.new_token()
    at = now()
    # sid: the single sign-on session's id as applications see it (ID tokens, back-channel
    # logout), never the cookie's token; auth_at: when the password was checked (max_age).
    rec = sessions.Record(key=sessions.token_key(token), subject=person["dn"],
                          expires=at + timedelta(hours=cfg().portal.session_hours), seen=at,
                          data={"who": person, "gate": gate, "pw": pw_changed,
                                "sid": secrets.token_urlsafe(16),
                                "auth_at": int(at.timestamp())})
    d.session_save(rec)
    session["sid"] = token
    g.mims_session = rec


def end_sessions(dn: str, *, here: bool | None = None) -> int:
    """Every session of this person, on every portal instance (this one included), and
    their applications' sessions: each protocol's sign-out listener is called first (OIDC
    tells the applications that asked, back-channel; SAML notes which SPs to tell through
    this browser), then the person's sessions and grants go.

    ``here``: this browser is the person's own (default: the person signed in here is
    ``dn``); only then are applications told through the browser (``leave_signed_out``)."""
    rec = sessions.current()
    if here is None:
        here = rec is not None and rec.subject == dn
    for listener in current_app.extensions.get("mims_sign_out", ()):
        listener(dn, here)
    ended = directory().end_sessions(dn)
    if rec is not None and rec.subject == dn:
        g.mims_session = None
        sessions.keep_cookie_only("lang")
    return ended


def sign_out_detour(url: str) -> Any:
    """After the person signed out here (``end_sessions`` in this request): the response
    that first takes the browser through the applications a protocol must tell by way of
    the browser (SAML single logout), and then to ``url`` (the portal's own, or an address
    the application registered); None when there are none."""
    for way in current_app.extensions.get("mims_sign_out_ways", ()):
        resp = way(url)
        if resp is not None:
            return resp
    return None


def leave_signed_out(url: str) -> Any:
    """``url`` after the applications' detour, if any (``sign_out_detour``)."""
    detour = sign_out_detour(url)
    return detour if detour is not None else redirect(url)


def password_changed_here(dn: str) -> None:
    """The signed-in person changed their own password: every other session ends, this one
    carries on (it knows the new pwdChangedTime)."""
    rec = sessions.current()
    subject = directory().subject(dn)
    if rec is not None:
        directory().end_sessions(dn, keep=rec.key)
        sessions.put("pw", subject.pw_changed if subject else None)


def login_problem(login_id: str) -> bool:
    """A login ID no account can have: control or format characters (a NUL would cut the ID
    short in C), or longer than an email address may be."""
    if not login_id or len(login_id) > 254:
        return True
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in login_id)


def safe_next(target: str | None, default: str) -> str:
    r"""Where a ``next=`` may send the browser: a path on this site, nothing else. Browsers
    drop tabs and newlines inside URLs and read a backslash as a slash, so ``/<TAB>/evil``
    or ``/\evil`` would leave the site: any such character refuses the target."""
    if not target or not target.startswith("/") or len(target) > 512:
        return default
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


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
            gate = sessions.get("gate")
            if gate and gate != allow_gate:
                return redirect(url_for(gate_target(gate)))
            return view(*args, **kwargs)

        return inner

    return wrap
