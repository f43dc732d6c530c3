"""Forgot password (SSPR): login ID -> the student's challenge questions -> a new password.

A login ID with no account (or no usable answers) walks through the same pages with the same
directory work: one search, its SSPR state read (the student's entry, or the state entry of
that login ID under ``ou=sessions``), the attempt counted there before the answers are
checked, the same argon2 work on the answers. The answer is always "those answers do not
match", so the portal never says who has an account.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from mimsdir.errors import Conflict, PolicyViolation
from mimsdir.portal import events, sessions, sspr
from mimsdir.portal.directory import now
from mimsdir.portal.metrics import metrics
from mimsdir.portal.security import device
from mimsdir.portal.throttle import Throttle
from mimsdir.portal.views.account import min_length, new_password_problem, policy_message
from mimsdir.portal.views.common import (
    cfg,
    directory,
    end_sessions,
    hasher,
    log,
    login_problem,
    questions,
)
from mimsdir.staff.qna import verify_answers

bp = Blueprint("forgot", __name__, url_prefix="/forgot")
MAX_ANSWER = 64
# Minutes to choose the new password after answering right; the state works once.
VERIFIED_FOR = timedelta(minutes=5)


@bp.route("", methods=["GET", "POST"])
def start():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("forgot.html")
    login_id = request.form.get("login_id", "").strip().lower()
    if login_problem(login_id):
        return render_template("forgot.html", error=_("Please type your login ID (your school "
                                                      "email)."))
    sessions.put("sspr", {"login": login_id})
    return redirect(url_for("forgot.answer"))


def _wait_minutes(until: datetime, at: datetime) -> int:
    return max(1, int((until - at).total_seconds() + 59) // 60)


def _wait_page(until: datetime):  # type: ignore[no-untyped-def]
    minutes = _wait_minutes(until, now())
    text = ngettext("You have tried too many times. Please wait %(num)d minute and try again, "
                    "or ask your form teacher for help.",
                    "You have tried too many times. Please wait %(num)d minutes and try "
                    "again, or ask your form teacher for help.", minutes)
    return render_template("message.html", title=_("Please wait"), text=text,
                           back=url_for("auth.login")), 429


def _throttle() -> Throttle:
    return current_app.extensions["mims_throttle"]  # type: ignore[no-any-return]


@bp.route("/questions", methods=["GET", "POST"])
def answer():  # type: ignore[no-untyped-def]
    state = sessions.get("sspr")
    if not isinstance(state, dict) or "login" not in state:
        return redirect(url_for("forgot.start"))
    c = cfg()
    login_id = str(state["login"])
    ask = c.qna.ask_count
    key = cast(bytes, current_app.secret_key)
    d = directory()
    at = now()
    catalogue = questions()
    record = d.find_person(login_id).student
    usable = record is not None and record.active and len(record.challenge_qids) >= ask
    ghost = not usable
    if record is not None and usable:
        target, registered = record.dn, record.challenge_qids
    else:
        target = d.ghost_dn(sspr.login_key(key, login_id))
        registered = sspr.ghost_questions(key, login_id, list(catalogue), c.qna.register_count)
    attempts = d.sspr_state(target)
    if attempts.waiting(at):
        assert attempts.locked_until is not None
        return _wait_page(attempts.locked_until)
    if attempts.asked is not None and sspr.keep_asking(attempts.asked, registered, ask):
        qids = attempts.asked.qids
    else:
        # A login ID with no account always gets the same pair (its state may expire, the
        # pair must not change with it); a student's pair is drawn anew after each reset.
        qids = tuple(registered[:ask]) if ghost else sspr.draw(registered, ask)
        d.set_asked(target, ghost, sspr.Asked(at, qids))
    shown = [(q, catalogue.get(q, _("Your question"))) for q in qids]
    if request.method == "GET":
        return render_template("forgot_questions.html", questions=shown, login_id=login_id)

    dev = device()
    if not _throttle().account_attempt(login_id, dev):
        events.security("sspr-refused", login=login_id, reason="throttled")
        return _wait_page(at + timedelta(seconds=_throttle().account_wait(login_id, dev)))
    typed = [request.form.get(f"a{i}", "")[:MAX_ANSWER] for i in range(len(qids))]
    # Count the attempt first, asserting the count read: of attempts sent at once, one
    # goes on to have its answers checked, the others are told to wait.
    reservation = sspr.reserve(attempts, at, c.portal.backoff_minutes,
                               timedelta(minutes=c.portal.sspr_decay_minutes))
    try:
        d.sspr_reserve(target, ghost, reservation)
    except Conflict:
        events.security("sspr-refused", login=login_id, reason="concurrent")
        return _wait_page(reservation.locked_until)
    # Every answer is checked (no early exit), and a login ID with no usable account goes
    # through the same read and the same checks on its state entry (no answers there, each
    # check a dummy one): the time tells neither which answer was wrong nor whether the
    # account exists.
    results = verify_answers(d.svc, target, list(zip(qids, typed, strict=True)), hasher())
    ok = usable and all(results)
    if ok and record is not None:
        d.sspr_passed(record.dn)
        sessions.put("sspr", {"login": login_id, "dn": record.dn, "level": record.level,
                              "ok_at": at.timestamp()})
        events.security("sspr-answers-right", login=login_id, uid=record.uid)
        return redirect(url_for("forgot.new_password"))
    m = metrics(current_app)
    m.failures.labels("sspr-answers").inc()
    m.backoffs.inc()
    events.security("sspr-answers-wrong", login=login_id, failures=reservation.failures)
    log.info("sspr: wrong answers (%d in a row)", reservation.failures)
    wait = _wait_minutes(reservation.locked_until, at)
    error = ngettext("Those answers do not match. Please wait %(num)d minute before you try "
                     "again.",
                     "Those answers do not match. Please wait %(num)d minutes before you try "
                     "again.", wait)
    return render_template("forgot_questions.html", questions=shown, login_id=login_id,
                           error=error, disabled=True), 200


def _verified() -> dict[str, object] | None:
    state = sessions.get("sspr")
    if not isinstance(state, dict) or not state.get("dn"):
        return None
    ok_at = state.get("ok_at")
    if not isinstance(ok_at, int | float):
        return None
    if now().timestamp() - float(ok_at) > VERIFIED_FOR.total_seconds():
        return None
    return state


@bp.route("/password", methods=["GET", "POST"])
def new_password():  # type: ignore[no-untyped-def]
    state = _verified()
    if state is None:
        sessions.pop("sspr")
        return redirect(url_for("forgot.start"))
    level = str(state.get("level", ""))
    rule = min_length(level)
    if request.method == "GET":
        return render_template("forgot_password.html", min_length=rule)
    new = request.form.get("new", "")
    again = request.form.get("again", "")
    error = new_password_problem(new, again, level)
    if error:
        return render_template("forgot_password.html", min_length=rule, error=error)
    dn = str(state["dn"])
    # The verified state works once: claim it (an assertion on the stored session) before
    # the password is set, so a copied cookie or a second tab cannot set another one.
    if not directory().session_claim(sessions.current(), "sspr"):
        return redirect(url_for("forgot.start"))
    try:
        directory().sspr_reset(dn, new)
    except PolicyViolation as exc:
        sessions.put("sspr", state)  # not used up: choose another password
        return render_template("forgot_password.html", min_length=rule,
                               error=policy_message(exc, level))
    end_sessions(dn)
    metrics(current_app).resets.labels("sspr").inc()
    log.info("sspr: password reset by the student: %s", dn.split(",", 1)[0])
    events.security("sspr-reset", login=str(state.get("login", "")),
                    uid=dn.split(",", 1)[0].partition("=")[2])
    session.pop("notice", None)
    return render_template("message.html", title=_("Your password is changed"),
                           text=_("Well done! Sign in with your new password."),
                           back=url_for("auth.login"), back_label=_("Sign in"))
