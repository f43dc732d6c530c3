"""The teacher view: a form teacher's own class, with reset and unlock.

Every read and write here is made as the teacher (proxied authorization from the portal's
service account, ``PortalDirectory.my_class`` / ``teacher_reset``), so slapd's ACLs decide
what a teacher may touch: a student of another class is refused by the directory, not by
this code.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from mimsdir.errors import AccessDenied, NotFound, PolicyViolation
from mimsdir.portal import events
from mimsdir.portal.directory import now
from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.common import cfg, directory, end_sessions, log, signed_in, who
from mimsdir.staff.credentials import new_default_password
from mimsdir.staff.model import StudentRecord, sort_key

bp = Blueprint("teacher", __name__, url_prefix="/teacher")


def _rows(records: list[StudentRecord]) -> list[dict[str, object]]:
    at = now()
    lockouts = directory().lockouts()
    rows = []
    for r in sorted(records, key=sort_key):
        rows.append({
            "uid": r.uid, "name": r.display, "login": r.login_id, "level": r.level,
            "class_name": r.class_name, "active": r.active,
            "locked": r.locked_now(at, lockouts.seconds(r.policy_dn)),
            "backoff": r.sspr_locked_now(at),
            "must_change": r.must_change,
            # A teacher may not read mimsChallenge (the hashes); the origin says whether
            # there are answers, and whose.
            "no_questions": r.qna_must_change or not r.challenge_origin
            or (r.upper_primary and r.challenge_origin == "card"),
        })
    return rows


def _find(uid: str) -> StudentRecord | None:
    person = who()
    assert person is not None
    for r in directory().my_class(person["dn"]):
        if r.uid == uid:
            return r
    return None


@bp.get("")
@signed_in(kind="staff")
def my_class():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    records = list(directory().my_class(person["dn"]))
    return render_template("teacher.html", person=person, rows=_rows(records),
                           notice=session.pop("notice", None))


@bp.post("/reset")
@signed_in(kind="staff")
def reset():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    uid = request.form.get("uid", "")
    student = _find(uid)
    if student is None:
        # Not in this teacher's class (or gone): slapd's ACLs would refuse the write anyway.
        session["notice"] = "not_yours"
        return redirect(url_for("teacher.my_class"))
    password = new_default_password(cfg())
    try:
        directory().teacher_reset(person["dn"], student.dn, password)
    except (AccessDenied, NotFound, PolicyViolation) as exc:
        log.warning("teacher reset refused: %s for %s: %s", person["uid"], student.uid, exc)
        events.security("teacher-refused", uid=person["uid"], student=student.uid,
                        action="reset")
        session["notice"] = "refused"
        return redirect(url_for("teacher.my_class"))
    metrics(current_app).resets.labels("teacher").inc()
    log.info("teacher reset: %s reset %s", person["uid"], student.uid)
    # Whoever was signed in as the student (a classmate with a copied cookie?) is out.
    end_sessions(student.dn)
    events.security("teacher-reset", uid=person["uid"], student=student.uid)
    # Shown once, on this response only (no-store); never stored in the session or a log.
    return render_template("teacher_reset.html", student=student, password=password,
                           school=student.school)


@bp.post("/unlock")
@signed_in(kind="staff")
def unlock():  # type: ignore[no-untyped-def]
    person = who()
    assert person is not None
    student = _find(request.form.get("uid", ""))
    if student is None:
        session["notice"] = "not_yours"
        return redirect(url_for("teacher.my_class"))
    try:
        directory().teacher_unlock(person["dn"], student.dn)
    except (AccessDenied, NotFound) as exc:
        log.warning("teacher unlock refused: %s for %s: %s", person["uid"], student.uid, exc)
        events.security("teacher-refused", uid=person["uid"], student=student.uid,
                        action="unlock")
        session["notice"] = "refused"
        return redirect(url_for("teacher.my_class"))
    log.info("teacher unlock: %s unlocked %s", person["uid"], student.uid)
    # An unlock follows wrong passwords: whoever else may be signed in as the student is out.
    end_sessions(student.dn)
    events.security("teacher-unlock", uid=person["uid"], student=student.uid)
    session["notice"] = "unlocked" if student.active else "unlocked_inactive"
    return redirect(url_for("teacher.my_class"))
