"""A signed-in person's own account: home, change password (forced after an ICT reset), and
challenge questions (forced for P4-P6 until they have answers of their own)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from mimsdir.challenge import decode_challenge, encode_challenge
from mimsdir.errors import AccessDenied, PolicyViolation
from mimsdir.ldapio import PP_IN_HISTORY, PP_INSUFFICIENT_QUALITY, PP_TOO_SHORT
from mimsdir.portal import answers, events, sessions
from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.common import (
    UPPER,
    cfg,
    directory,
    hasher,
    log,
    next_gate,
    password_changed_here,
    questions,
    signed_in,
    who,
)

bp = Blueprint("account", __name__)
# Longer is refused, never cut (slapd's check module refuses it too).
MAX_NEW_PASSWORD = 64
# What a current password field reads at most (no real password is longer).
MAX_PASSWORD = 4096


def min_length(level: str) -> int:
    p = cfg().policies
    if not level:
        return p.staff.min_length
    return (p.upper_primary if level in UPPER else p.lower_primary).min_length


def quality_message(rule: str | None) -> str | None:
    """What slapd's check module refused (``mims:<rule>`` leads its message), in words a
    child understands, in the page's language."""
    messages = {
        "common": _("That password is too easy to guess: many people use it. Please make up "
                    "your own, for example two words you like and a number."),
        "login": _("Your password cannot have your login ID or student ID in it."),
        "name": _("Your password cannot have your name in it."),
        "school": _("Your password cannot have your school's code in it."),
        "repeat": _("Your password cannot be the same letter or number again and again."),
        "sequence": _("Your password cannot be a row of letters or numbers, like 12345678 or "
                      "abcdefgh."),
        "space": _("Your password needs letters or numbers, not only spaces."),
        "long": _("Your new password is too long. Use at most %(n)d letters and numbers.",
                  n=MAX_NEW_PASSWORD),
    }
    return messages.get(rule or "")


def policy_message(exc: PolicyViolation, level: str) -> str:
    known = quality_message(exc.check_code)
    if known:
        return known
    code = exc.ppolicy_error
    if code == PP_TOO_SHORT:
        return _("Your new password is too short. Use at least %(n)d letters and numbers.",
                 n=min_length(level))
    if code == PP_IN_HISTORY or "not being changed" in str(exc):
        return _("You have used this password before. Please choose a new one.")
    if code == PP_INSUFFICIENT_QUALITY:
        return _("That password is too easy to guess. Please choose another one.")
    return _("That password cannot be used. Please choose another one.")


def new_password_problem(new: str, again: str, level: str) -> str | None:
    if new != again:
        return _("The two new passwords are not the same. Please type them again.")
    if len(new) > MAX_NEW_PASSWORD:
        return quality_message("long")
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
    forced = sessions.get("gate") == "must_change"
    rule = min_length(person["level"])
    if request.method == "GET":
        return render_template("password.html", forced=forced, min_length=rule)
    current = request.form.get("current", "")[:MAX_PASSWORD]
    new = request.form.get("new", "")
    again = request.form.get("again", "")
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
    events.security("password-changed", uid=person["uid"], forced=forced or None)
    password_changed_here(person["dn"])
    record = directory().reload(person["dn"]) if person["kind"] == "student" else None
    gate = next_gate(person, record)
    sessions.put("gate", gate)
    session["notice"] = "password_changed"
    if not gate and sessions.get("resume"):  # back on the way to an application
        return redirect(url_for("auth.start"))
    if person["kind"] == "staff":
        return redirect(url_for("teacher.my_class"))
    return redirect(url_for("account.questions" if gate else "account.home"))


@bp.route("/questions", methods=["GET", "POST"], endpoint="questions")
@signed_in(kind="student", allow_gate="qna")
def questions_page():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    c = cfg()
    catalogue = questions()
    if person["level"] not in UPPER:
        return render_template("questions_card.html")
    forced = sessions.get("gate") == "qna"
    # Always: on a shared computer, whoever sits down after the child must not be able to
    # set questions (and then reset the password with them) without the password.
    ask_password = True
    count = c.qna.register_count
    if request.method == "GET":
        return render_template("questions.html", catalogue=catalogue, count=count,
                               forced=forced, ask_password=ask_password, chosen=[""] * count,
                               min_length=c.qna.min_answer_length)
    chosen = [request.form.get(f"q{i}", "") for i in range(count)]
    typed = [request.form.get(f"a{i}", "")[:answers.MAX_LENGTH + 1] for i in range(count)]
    errors: list[str] = []
    out = directory().sign_in(person["dn"], request.form.get("current", "")[:MAX_PASSWORD])
    if not out.ok:
        errors.append(_("Your password is not right."))
        events.security("questions-refused", uid=person["uid"], reason="password")
    found = answers.problems(list(zip(chosen, typed, strict=True)), person["login"],
                             list(catalogue), count, c.qna.min_answer_length,
                             forbidden=(person["uid"], person["name"]))
    if out.ok and not found:
        found = _card_answers(person["dn"], typed)
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
    events.security("questions-changed", uid=person["uid"])
    sessions.put("gate", None)
    session["notice"] = "questions_saved"
    return redirect(url_for("auth.start" if sessions.get("resume") else "account.home"))


def _card_answers(dn: str, typed: list[str]) -> list[tuple[str, int]]:
    """Answers that are the old card's (printed on paper that went home): not one may come
    back as the student's own. Checked against every card answer, whatever the question."""
    record = directory().reload(dn)
    if record is None or record.challenge_origin != "card":
        return []
    h = hasher()
    stored = [decode_challenge(v)[1] for v in directory().challenge_values(dn)]
    return [("card", slot) for slot, answer in enumerate(typed, start=1)
            if any(h.verify(encoded, answer) for encoded in stored)]


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
        "login": _("Question %(slot)d: your answer cannot be your login ID, student ID or "
                   "name.", slot=slot),
        "trivial": _("Question %(slot)d: that answer is too easy to guess. Please type the "
                     "real answer.", slot=slot),
        "card": _("Question %(slot)d: that answer was on your old card. Please use a new "
                  "answer that only you know.", slot=slot),
    }
    return messages[code]
