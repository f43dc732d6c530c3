"""Sign in and sign out. The portal binds as the person with the ppolicy control: slapd says
whether the password is right, the account locked, or a reset password must be changed."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.common import (
    close_directory,
    directory,
    gate_target,
    log,
    next_gate,
    password_work,
    sign_in_session,
    who,
)

bp = Blueprint("auth", __name__)
bp.teardown_app_request(close_directory)

MAX_LOGIN = 254
MAX_PASSWORD = 128


@bp.get("/")
def start():  # type: ignore[no-untyped-def]
    person = who()
    if person is None:
        return redirect(url_for("auth.login"))
    if person.get("kind") == "staff":
        return redirect(url_for("teacher.my_class"))
    return redirect(url_for(gate_target(session.get("gate"))))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    notice = session.pop("notice", None)
    if request.method == "GET":
        return render_template("login.html", notice=notice, login_id="")
    login_id = request.form.get("login_id", "").strip().lower()[:MAX_LOGIN]
    password = request.form.get("password", "")[:MAX_PASSWORD]
    d = directory()
    record = d.find_student(login_id) if login_id else None
    staff = None if record or not login_id else d.find_staff(login_id)
    dn = record.dn if record else staff.dn if staff else None
    if dn is None or not password:
        password_work(password)  # as long as a real check: existence is not revealed
        return _failed(login_id, _("That login ID or password is not right. Please try again."))
    out = d.sign_in(dn, password)
    if not out.ok:
        if out.locked:
            return _failed(login_id, _("Too many wrong passwords. Please wait 5 minutes, or ask "
                                       "your teacher to unlock your account."))
        return _failed(login_id, _("That login ID or password is not right. Please try again."))
    if record is not None:
        person = {"dn": record.dn, "uid": record.uid, "kind": "student", "name": record.name,
                  "login": record.login_id, "level": record.level}
    else:
        assert staff is not None
        person = {"dn": staff.dn, "uid": staff.uid, "kind": "staff", "name": staff.name,
                  "login": staff.login_id, "level": ""}
    gate = "must_change" if out.must_change else next_gate(person, record)
    sign_in_session(person, gate)
    log.info("sign-in: %s (%s)%s", person["uid"], person["kind"],
             " must change" if out.must_change else "")
    return redirect(url_for("auth.start"))


def _failed(login_id: str, message: str):  # type: ignore[no-untyped-def]
    metrics(current_app).failures.labels("sign-in").inc()
    log.info("sign-in failed")
    return render_template("login.html", error=message, login_id=login_id), 200


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session["notice"] = "signed_out"
    return redirect(url_for("auth.login"))
