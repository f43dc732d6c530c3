"""Sign in and sign out. The portal binds as the person with the ppolicy control: slapd says
whether the password is right, the account waiting after failures, or a reset password must
be changed.

Every failure path does the same work and gives the same answer: one directory search, one
bind that costs one argon2 check and one failure record (a login ID with no usable account
binds to the decoy account; a bind slapd refused without checking is followed by a bind to
the decoy), and one message. The page never says whether a login ID exists, is disabled,
or is waiting.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext

from mimsdir.portal import events, sessions
from mimsdir.portal.metrics import metrics
from mimsdir.portal.security import device, remember_device
from mimsdir.portal.throttle import Throttle
from mimsdir.portal.views.common import (
    begin_session,
    cfg,
    close_directory,
    directory,
    end_sessions,
    gate_target,
    leave_signed_out,
    log,
    login_problem,
    next_gate,
    safe_next,
    who,
)

bp = Blueprint("auth", __name__)
bp.teardown_app_request(close_directory)

MAX_LOGIN = 254
# The body limit (64 KiB) bounds what arrives; slapd's check module refuses more than 64
# characters in a new password, so a longer one can never be right.
MAX_PASSWORD = 4096


@bp.get("/")
def start():  # type: ignore[no-untyped-def]
    person = who()
    if person is None:
        return redirect(url_for("auth.login"))
    gate = sessions.get("gate")
    if gate:
        return redirect(url_for(gate_target(gate)))
    # Signed in on the way somewhere (an application's sign-in request): carry on there.
    resume = sessions.pop("resume")
    if isinstance(resume, str) and resume:
        return redirect(safe_next(resume, url_for("auth.start")))
    if person.get("kind") == "staff":
        return redirect(url_for("teacher.my_class"))
    return redirect(url_for(gate_target(None)))


def _throttle() -> Throttle:
    return current_app.extensions["mims_throttle"]  # type: ignore[no-any-return]


def wait_text(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return ngettext("Too many tries for this login ID. Please wait %(num)d minute and try "
                    "again, or ask your teacher for help.",
                    "Too many tries for this login ID. Please wait %(num)d minutes and try "
                    "again, or ask your teacher for help.", minutes)


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    notice = session.pop("notice", None)
    if request.method == "GET":
        hint = request.args.get("login_hint", "")
        return render_template("login.html", notice=notice, next=_next(request.args),
                               login_id="" if login_problem(hint) else hint.strip().lower())
    typed = request.form.get("login_id", "")
    login_id = typed.strip().lower()
    password = request.form.get("password", "")
    if login_problem(login_id):
        events.security("sign-in-failed", login=typed[:MAX_LOGIN], reason="malformed")
        return _failed("", _("That is not a login ID. Your login ID is your school email, "
                             "like name@school.edu.sg."))
    going = _next(request.form)
    if len(password) > MAX_PASSWORD:
        password = password[:MAX_PASSWORD]  # still refused below: no account has such a one
    dev = device()
    if not _throttle().account_attempt(login_id, dev):
        events.security("sign-in-failed", login=login_id, reason="throttled")
        return _failed(login_id, wait_text(_throttle().account_wait(login_id, dev)))
    d = directory()
    found = d.find_person(login_id)
    usable = found.dn is not None and found.active
    out = d.sign_in(found.dn if usable and found.dn else d.decoy_dn, password)
    if out.locked:
        # slapd answered at once, without checking: the decoy's bind does what a wrong
        # password does (slapd's argon2 check and a failure record), so the answer takes as
        # long. Python's own argon2 was 10 ms quicker on a slow VM: it wrote nothing.
        d.sign_in(d.decoy_dn, password)
    if not (usable and out.ok):
        reason = ("unknown" if found.dn is None else "inactive" if not found.active
                  else "waiting" if out.locked else "wrong")
        events.security("sign-in-failed", login=login_id, reason=reason)
        return _failed(login_id, _("That did not work. Check your login ID and password and "
                                   "try again. If you are sure they are right, wait one "
                                   "minute and try again."))
    if found.student is not None:
        r = found.student
        person = {"dn": r.dn, "uid": r.uid, "kind": "student", "name": r.name,
                  "login": r.login_id, "level": r.level}
    else:
        assert found.staff is not None
        st = found.staff
        person = {"dn": st.dn, "uid": st.uid, "kind": "staff", "name": st.name,
                  "login": st.login_id, "level": ""}
    gate = "must_change" if out.must_change else next_gate(person, found.student)
    begin_session(person, gate, found.pw_changed)
    if going:
        sessions.put("resume", going)
    log.info("sign-in: %s (%s)%s", person["uid"], person["kind"],
             " must change" if out.must_change else "")
    events.security("sign-in", login=login_id, uid=person["uid"], kind=person["kind"],
                    must_change=out.must_change or None)
    resp = make_response(redirect(url_for("auth.start")))
    remember_device(resp, login_id, cfg())
    return resp


def _next(values: Mapping[str, str]) -> str:
    """Where to go after signing in (a path on this site, else nowhere in particular)."""
    return safe_next(values.get("next"), "")


def _failed(login_id: str, message: str):  # type: ignore[no-untyped-def]
    metrics(current_app).failures.labels("sign-in").inc()
    return render_template("login.html", error=message, login_id=login_id,
                           next=_next(request.form)), 200


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    person = who()
    if person is not None:
        ended = end_sessions(person["dn"])
        events.security("sign-out", uid=person["uid"], sessions=ended)
    else:
        sessions.keep_cookie_only("lang")
    session["notice"] = "signed_out"
    return leave_signed_out(url_for("auth.login"))
