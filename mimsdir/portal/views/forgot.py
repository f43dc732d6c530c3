"""Forgot password (SSPR): login ID -> the student's challenge questions -> a new password.

A login ID with no account (or no usable answers) walks through the same pages, with the
same argon2 work and a back-off that grows the same way: the answer is always "those answers
do not match", so the portal never says who has an account.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from mimsdir.errors import PolicyViolation
from mimsdir.portal import sspr
from mimsdir.portal.directory import now
from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.account import min_length, new_password_problem, policy_message
from mimsdir.portal.views.common import cfg, directory, ghosts, hasher, log, questions
from mimsdir.staff.qna import verify_and_upgrade

bp = Blueprint("forgot", __name__, url_prefix="/forgot")
MAX_LOGIN = 254
MAX_ANSWER = 64
VERIFIED_FOR = 600  # seconds to choose the new password after answering right
ASK_WINDOW_MINUTES = 60


@bp.route("", methods=["GET", "POST"])
def start():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("forgot.html")
    login_id = request.form.get("login_id", "").strip().lower()[:MAX_LOGIN]
    if not login_id:
        return render_template("forgot.html", error=_("Please type your login ID."))
    session["sspr"] = {"login": login_id}
    return redirect(url_for("forgot.answer"))


def _wait_page(until):  # type: ignore[no-untyped-def]
    minutes = max(1, int((until - now()).total_seconds() + 59) // 60)
    text = ngettext("You have tried too many times. Please wait %(num)d minute and try again, "
                    "or ask your form teacher for help.",
                    "You have tried too many times. Please wait %(num)d minutes and try "
                    "again, or ask your form teacher for help.", minutes)
    return render_template("message.html", title=_("Please wait"), text=text,
                           back=url_for("auth.login")), 429


@bp.route("/questions", methods=["GET", "POST"])
def answer():  # type: ignore[no-untyped-def]
    state = session.get("sspr")
    if not state or "login" not in state:
        return redirect(url_for("forgot.start"))
    c = cfg()
    login_id = state["login"]
    ask = c.qna.ask_count
    minutes = c.portal.backoff_minutes
    d = directory()
    at = now()
    record = d.find_student(login_id)
    usable = (record is not None and record.active
              and len(record.challenge_qids) >= ask)
    catalogue = questions()
    if usable:
        assert record is not None
        if record.sspr_locked_now(at):
            return _wait_page(record.sspr_locked_until)
        asked = sspr.Asked.decode(d.asked_value(record.dn))
        window = timedelta(minutes=max(ASK_WINDOW_MINUTES, *minutes))
        if sspr.keep_asking(asked, record.challenge_qids, ask, at, record.sspr_locked_until,
                            window):
            assert asked is not None
            qids = asked.qids
        else:
            qids = sspr.draw(record.challenge_qids, ask)
            d.set_asked(record.dn, sspr.Asked(at, qids).encode())
    else:
        _failures, until = ghosts().get(login_id)
        if until is not None and until > at:
            return _wait_page(until)
        qids = sspr.ghost_questions(current_app.secret_key, login_id,  # type: ignore[arg-type]
                                    list(catalogue), ask)
    shown = [(q, catalogue.get(q, _("Your question"))) for q in qids]
    if request.method == "GET":
        return render_template("forgot_questions.html", questions=shown, login_id=login_id)

    typed = [request.form.get(f"a{i}", "")[:MAX_ANSWER] for i in range(len(qids))]
    h = hasher()
    if usable:
        assert record is not None
        # Every answer is checked (no early exit): the time does not tell which one was wrong.
        results = [verify_and_upgrade(d.svc, record.dn, q, a, h)
                   for q, a in zip(qids, typed, strict=True)]
        ok = all(results)
    else:
        for a in typed:
            h.dummy_verify(a)
        ok = False
    if ok:
        assert record is not None
        session["sspr"] = {"login": login_id, "dn": record.dn, "level": record.level,
                           "ok_at": time.time()}
        return redirect(url_for("forgot.new_password"))
    m = metrics(current_app)
    m.failures.labels("sspr-answers").inc()
    m.backoffs.inc()
    if usable:
        assert record is not None
        failures = record.sspr_failures + 1
        until = at + sspr.backoff(failures, minutes)
        d.record_sspr_failure(record.dn, failures, until)
        log.info("sspr: wrong answers for %s (%d in a row)", record.uid, failures)
    else:
        until = ghosts().fail(login_id, at, minutes)
        log.info("sspr: wrong answers for an unknown or unusable login ID")
    wait = max(1, int((until - at).total_seconds() + 59) // 60)
    error = ngettext("Those answers do not match. Please wait %(num)d minute before you try "
                     "again.",
                     "Those answers do not match. Please wait %(num)d minutes before you try "
                     "again.", wait)
    return render_template("forgot_questions.html", questions=shown, login_id=login_id,
                           error=error, disabled=True), 200


@bp.route("/password", methods=["GET", "POST"])
def new_password():  # type: ignore[no-untyped-def]
    state = session.get("sspr") or {}
    if not state.get("dn") or time.time() - float(state.get("ok_at", 0)) > VERIFIED_FOR:
        session.pop("sspr", None)
        return redirect(url_for("forgot.start"))
    rule = min_length(state["level"])
    if request.method == "GET":
        return render_template("forgot_password.html", min_length=rule)
    new = request.form.get("new", "")[:128]
    again = request.form.get("again", "")[:128]
    error = new_password_problem(new, again, state["level"])
    if error is None:
        try:
            directory().sspr_reset(state["dn"], new)
        except PolicyViolation as exc:
            error = policy_message(exc, state["level"])
    if error:
        return render_template("forgot_password.html", min_length=rule, error=error)
    session.pop("sspr", None)
    metrics(current_app).resets.labels("sspr").inc()
    log.info("sspr: password reset by the student: %s", state["dn"].split(",", 1)[0])
    return render_template("message.html", title=_("Your password is changed"),
                           text=_("Well done! Sign in with your new password."),
                           back=url_for("auth.login"), back_label=_("Sign in"))
