"""A signed-in person's own account: home, change password (forced after an ICT reset), and
challenge questions (forced for P4-P6 until they have answers of their own)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from mimsdir.challenge import encode_challenge
from mimsdir.errors import AccessDenied, PolicyViolation
from mimsdir.ldapio import PP_IN_HISTORY, PP_INSUFFICIENT_QUALITY, PP_TOO_SHORT
from mimsdir.portal import answers
from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.common import (
    UPPER,
    cfg,
    directory,
    fresh,
    hasher,
    log,
    next_gate,
    questions,
    signed_in,
    who,
)

bp = Blueprint("account", __name__)
MAX_PASSWORD = 128


def min_length(level: str) -> int:
    p = cfg().policies
    if not level:
        return p.staff.min_length
    return (p.upper_primary if level in UPPER else p.lower_primary).min_length


def policy_message(exc: PolicyViolation, level: str) -> str:
    code = getattr(exc, "ppolicy_error", None)
    if code in (PP_TOO_SHORT, PP_INSUFFICIENT_QUALITY):
        return _("Your new password is too short. Use at least %(n)d letters and numbers.",
                 n=min_length(level))
    if code == PP_IN_HISTORY or "not being changed" in str(exc):
        return _("You have used this password before. Please choose a new one.")
    return _("That password cannot be used. Please choose another one.")


def new_password_problem(new: str, again: str, level: str) -> str | None:
    if new != again:
        return _("The two new passwords are not the same. Please type them again.")
    if len(new) < min_length(level):
        return _("Your new password is too short. Use at least %(n)d letters and numbers.",
                 n=min_length(level))
    return None


@bp.get("/home")
@signed_in(kind="student")
def home():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    return render_template("home.html", person=person, upper=person["level"] in UPPER,
                           notice=session.pop("notice", None))


@bp.route("/password", methods=["GET", "POST"])
@signed_in(allow_gate="must_change")
def password():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    forced = session.get("gate") == "must_change"
    rule = min_length(person["level"])
    if request.method == "GET":
        return render_template("password.html", forced=forced, min_length=rule)
    current = request.form.get("current", "")[:MAX_PASSWORD]
    new = request.form.get("new", "")[:MAX_PASSWORD]
    again = request.form.get("again", "")[:MAX_PASSWORD]
    error = new_password_problem(new, again, person["level"])
    if error is None:
        try:
            directory().change_own_password(person["dn"], current, new)
        except AccessDenied:
            error = (_("The default password is not right. Look at your slip again.") if forced
                     else _("Your current password is not right."))
        except PolicyViolation as exc:
            error = policy_message(exc, person["level"])
    if error:
        return render_template("password.html", forced=forced, min_length=rule, error=error)
    metrics(current_app).changes.inc()
    log.info("password changed: %s%s", person["uid"], " (after reset)" if forced else "")
    record = directory().reload(person["dn"]) if person["kind"] == "student" else None
    session["gate"] = next_gate(person, record)
    session["notice"] = "password_changed"
    if person["kind"] == "staff":
        return redirect(url_for("teacher.my_class"))
    return redirect(url_for("account.questions" if session["gate"] else "account.home"))


@bp.route("/questions", methods=["GET", "POST"], endpoint="questions")
@signed_in(kind="student", allow_gate="qna")
def questions_page():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    c = cfg()
    catalogue = questions()
    if person["level"] not in UPPER:
        return render_template("questions_card.html")
    forced = session.get("gate") == "qna"
    ask_password = not (forced and fresh())
    count = c.qna.register_count
    if request.method == "GET":
        return render_template("questions.html", catalogue=catalogue, count=count,
                               forced=forced, ask_password=ask_password, chosen=[""] * count,
                               min_length=c.qna.min_answer_length)
    chosen = [request.form.get(f"q{i}", "") for i in range(count)]
    typed = [request.form.get(f"a{i}", "")[:answers.MAX_LENGTH + 1] for i in range(count)]
    errors: list[str] = []
    if ask_password:
        out = directory().sign_in(person["dn"], request.form.get("current", "")[:MAX_PASSWORD])
        if not out.ok:
            errors.append(_("Your password is not right."))
    found = answers.problems(list(zip(chosen, typed, strict=True)), person["login"],
                             list(catalogue), count, c.qna.min_answer_length)
    errors += [_answer_message(code, slot) for code, slot in found]
    if errors:
        # The answers typed are not sent back: a shared screen should not show them.
        return render_template("questions.html", catalogue=catalogue, count=count,
                               forced=forced, ask_password=ask_password, chosen=chosen,
                               errors=errors, min_length=c.qna.min_answer_length)
    h = hasher()
    values = [encode_challenge(q, h.hash(a)) for q, a in zip(chosen, typed, strict=True)]
    directory().set_challenges(person["dn"], values)
    log.info("challenge questions set: %s", person["uid"])
    session["gate"] = None
    session["notice"] = "questions_saved"
    return redirect(url_for("account.home"))


def _answer_message(code: str, slot: int) -> str:
    n = cfg().qna.min_answer_length
    messages = {
        "count": _("Please answer every question."),
        "unknown": _("Question %(slot)d: please choose a question from the list.", slot=slot),
        "same-question": _("Question %(slot)d: you chose the same question twice.", slot=slot),
        "empty": _("Question %(slot)d: please type an answer.", slot=slot),
        "short": _("Question %(slot)d: the answer is too short. Use at least %(n)d letters.",
                   slot=slot, n=n),
        "long": _("Question %(slot)d: the answer is too long.", slot=slot),
        "repeated": _("Question %(slot)d: use a different answer for each question.",
                      slot=slot),
        "login": _("Question %(slot)d: your answer cannot be your login ID.", slot=slot),
    }
    return messages[code]
