"""``mimsdir student show|find|reset-password|unlock|disable|enable``: one student at a time or a
class, as ICT staff (``ldap.admin_dn`` if configured, else the host's root over ldapi)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import (
    LoggedGroup,
    connect,
    dns_of,
    echo_json,
    finish_batch,
)
from mimsdir.ldapio import Conn
from mimsdir.secret_docs import SlipData
from mimsdir.staff import credentials
from mimsdir.staff.lookup import (
    Lockouts,
    find_student,
    iter_students,
    resolve_students,
    teacher_label,
)
from mimsdir.staff.model import (
    LEVELS,
    STATUSES,
    RowError,
    StudentRecord,
    iso,
    policy_name,
    show_time,
    student_filter,
)
from mimsdir.staff.secret_output import StagedSecretFile

LEVEL_CHOICE = click.Choice(LEVELS, case_sensitive=False)


@click.group(cls=LoggedGroup)
def student() -> None:
    """Look up and look after students: show, find, reset a password, unlock, disable, enable.

    Students are named by student ID (S1234567A) or login ID (their email). Commands act as
    ldap.admin_dn when configured, else as the host's root over ldapi.

    \b
    Example:
      mimsdir student show S2614023J
      mimsdir student reset-password S2614023J --show
    """


# -- show ---------------------------------------------------------------------------------------

def _lock_text(s: StudentRecord, lockouts: Lockouts, now: datetime) -> str:
    if s.lock_permanent:
        return "YES, until unlocked (locked by an administrator)"
    if s.waiting_now(now):
        return (f"YES, waiting after wrong passwords until {show_time(s.waiting_until)} "
                f"(ends by itself; unlock ends it now)")
    if s.locked_at is None:
        return "no"
    seconds = lockouts.seconds(s.policy_dn)
    if s.locked_now(now, seconds):
        until = s.locked_until(seconds)
        return f"YES, since {show_time(s.locked_at)}, " + (
            f"ends by itself at {show_time(until)}" if until else "until unlocked")
    return f"no (a lockout from {show_time(s.locked_at)} has expired)"


def _sspr_text(s: StudentRecord, now: datetime) -> str:
    parts = []
    if s.sspr_locked_now(now):
        parts.append(f"BACKED OFF until {show_time(s.sspr_locked_until)}")
    if s.sspr_failures:
        parts.append(f"{s.sspr_failures} failed attempt(s)")
    if s.sspr_asked_at:
        parts.append(f"questions being asked since {show_time(s.sspr_asked_at)}")
    return "; ".join(parts) or "no back-off"


def _answers_text(s: StudentRecord) -> str:
    if not s.challenge_qids:
        text = "none"
    else:
        origin = {"card": "from the card", "student": "set by the student"}.get(
            s.challenge_origin or "", "origin unknown")
        text = f"{s.challenge_count} ({origin})"
    if s.qna_must_change:
        text += "; must register new ones"
    elif s.qna_state == "card-upper":
        text += "; P4+ still on the card: should set their own"
    return text


def show_fields(s: StudentRecord, conn: Conn, lockouts: Lockouts, now: datetime
                ) -> list[tuple[str, str]]:
    return [
        ("student ID", s.uid),
        ("name", s.name or "-"),
        ("display name", s.display_name or "-"),
        ("login ID", s.login_id or "-"),
        ("school", s.school or "-"),
        ("level", s.level or "-"),
        ("class", s.class_name or "-"),
        ("form teacher", teacher_label(conn, s.form_teacher_dn)),
        ("status", s.status or "-"),
        ("left at", show_time(s.left_at)),
        ("locked now", _lock_text(s, lockouts, now)),
        ("failed sign-ins", str(s.failure_count)),
        ("must change", "YES: a reset password must be changed at next sign-in"
         if s.must_change else "no"),
        ("password set", show_time(s.password_changed_at)),
        ("SSPR", _sspr_text(s, now)),
        ("answers", _answers_text(s)),
        ("credential pending", "YES: a password was set that no slip has carried"
         if s.credential_pending else "no"),
        ("policy", policy_name(s.policy_dn)),
        ("created", show_time(s.created_at)),
        ("modified", show_time(s.modified_at)),
    ]


def student_json(s: StudentRecord, lockouts: Lockouts, now: datetime,
                 teacher: str | None = None) -> dict[str, object]:
    seconds = lockouts.seconds(s.policy_dn)
    data: dict[str, object] = {
        "id": s.uid, "dn": s.dn, "login_id": s.login_id, "name": s.name,
        "display_name": s.display_name, "school": s.school, "level": s.level,
        "class": s.class_name, "form_teacher_dn": s.form_teacher_dn, "status": s.status,
        "left_at": iso(s.left_at),
        "locked": s.locked_now(now, seconds),
        "locked_at": iso(s.locked_at), "locked_until": iso(s.locked_until(seconds)),
        "waiting_until": iso(s.waiting_until) if s.waiting_now(now) else None,
        "failed_binds": s.failure_count, "must_change": s.must_change,
        "password_changed_at": iso(s.password_changed_at),
        "sspr_failures": s.sspr_failures, "sspr_locked_until": iso(s.sspr_locked_until),
        "sspr_locked": s.sspr_locked_now(now), "sspr_asked_at": iso(s.sspr_asked_at),
        "answers": s.challenge_count, "answers_origin": s.challenge_origin,
        "qna_must_change": s.qna_must_change, "qna_pending": s.qna_pending,
        "credential_pending": s.credential_pending, "policy": policy_name(s.policy_dn),
        "created_at": iso(s.created_at), "modified_at": iso(s.modified_at),
    }
    if teacher is not None:
        data["form_teacher"] = teacher
    return data


@student.command()
@click.argument("ident", metavar="ID-or-EMAIL")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_ctx
def show(ctx: Ctx, ident: str, as_json: bool) -> None:
    """Everything an ICT officer needs about one student (never a password or an answer).

    Name, login ID, school, level, class, form teacher, status, whether the account is
    locked right now, must change its password, the SSPR back-off, how many challenge
    answers are registered and where they came from, and the password policy.

    \b
    Example:
      mimsdir student show S2614023J
      mimsdir student show wei_ling_tan@students.demo.edu.sg --json
    """
    now = datetime.now(UTC)
    with connect(ctx) as conn:
        s = find_student(conn, dns_of(ctx), ident)
        lockouts = Lockouts.read(conn, dns_of(ctx))
        if as_json:
            echo_json(student_json(s, lockouts, now, teacher_label(conn, s.form_teacher_dn)))
            return
        fields = show_fields(s, conn, lockouts, now)
    width = max(len(k) for k, _ in fields)
    click.echo(f"Student {s.uid}")
    for key, value in fields:
        click.echo(f"  {key.ljust(width)}  {value}")


# -- find ---------------------------------------------------------------------------------------

@student.command()
@click.option("--school", help="School code.")
@click.option("--class", "class_name", help="Class, e.g. 4A.")
@click.option("--level", "levels", multiple=True, type=LEVEL_CHOICE, help="P1-P6; repeatable.")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False))
@click.option("--locked", is_flag=True, help="Only students locked out right now.")
@click.option("--must-change", is_flag=True,
              help="Only students who must change a reset password.")
@click.option("--qna-pending", is_flag=True,
              help="Only P4-P6 without their own answers (none, or still the card's), "
                   "or anyone whose answers must be replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def find(ctx: Ctx, school: str | None, class_name: str | None, levels: tuple[str, ...],
         status: str | None, locked: bool, must_change: bool, qna_pending: bool,
         as_json: bool) -> None:
    """List the students that match every filter given (paged: any size of directory).

    \b
    Example:
      mimsdir student find --school DEMOPS --class 4A
      mimsdir student find --school DEMOPS --locked
      mimsdir student find --school DEMOPS --qna-pending --json
    """
    now = datetime.now(UTC)
    filterstr = student_filter(school=school, class_name=class_name, levels=levels,
                               status=status.lower() if status else None, locked=locked,
                               must_change=must_change, qna_pending=qna_pending)
    rows: list[dict[str, object]] = []
    with connect(ctx) as conn:
        lockouts = Lockouts.read(conn, dns_of(ctx))
        for s in iter_students(conn, dns_of(ctx), filterstr, doing="finding students"):
            if locked and not s.locked_now(now, lockouts.seconds(s.policy_dn)):
                continue
            rows.append(student_json(s, lockouts, now))
    rows.sort(key=lambda r: (str(r["school"]).upper(), str(r["class"]).upper(),
                             str(r["name"]).casefold(), str(r["id"])))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no students match")
        return
    table = [["ID", "login ID", "name", "school", "level", "class", "status", "flags"]]
    for r in rows:
        flags = [name for name, on in (
            ("locked", r["locked"]), ("must-change", r["must_change"]),
            ("qna-pending", r["qna_pending"]), ("credential-pending", r["credential_pending"]),
        ) if on]
        table.append([str(r["id"]), str(r["login_id"]), str(r["name"]), str(r["school"]),
                      str(r["level"]), str(r["class"]), str(r["status"]), ",".join(flags)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} student(s)")


# -- reset-password -----------------------------------------------------------------------------

def select_students(ctx: Ctx, conn: Conn, idents: tuple[str, ...], school: str | None,
                    class_name: str | None) -> tuple[list[StudentRecord], list[RowError]]:
    """IDs named one by one, or every active student of a class (--school with --class)."""
    if idents and (school or class_name):
        raise click.UsageError("give student IDs, or --school with --class, not both")
    if idents:
        return resolve_students(conn, dns_of(ctx), idents)
    if not (school and class_name):
        raise click.UsageError("give student IDs, or --school with --class")
    filterstr = student_filter(school=school, class_name=class_name, status="active")
    found = list(iter_students(conn, dns_of(ctx), filterstr))
    if not found:
        return [], [RowError(f"{school} {class_name}", "no active students in this class")]
    return found, []


@student.command("reset-password")
@click.argument("idents", nargs=-1, metavar="[ID-or-EMAIL]...")
@click.option("--school", help="With --class: reset every active student of the class.")
@click.option("--class", "class_name", help="Class, with --school.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one slip per student into this PDF (mode 0600).")
@click.option("--show", is_flag=True,
              help="Show each new password once on this terminal instead of a PDF.")
@pass_ctx
def reset_password(ctx: Ctx, idents: tuple[str, ...], school: str | None,
                   class_name: str | None, output: Path | None, show: bool) -> None:
    """Give students a new default password that they MUST change at their next sign-in.

    Also clears the directory lockout and the SSPR back-off. Each password goes on a slip in
    the PDF named by -o (one per student, grouped by class, mode 0600), or, with --show, is
    shown once on this terminal; exactly one of the two is required. The password is never
    written anywhere else. Unknown IDs are reported (exit 1); the others are still reset.

    \b
    Example:
      mimsdir student reset-password S2614023J --show
      mimsdir student reset-password --school DEMOPS --class 2A -o /root/slips-2A.pdf
    """
    if bool(output) == bool(show):
        raise click.UsageError("give exactly one of -o FILE.pdf or --show")
    staged = StagedSecretFile(output) if output else None
    if staged is not None:
        staged.check_target()
    with connect(ctx) as conn:
        students, errors = select_students(ctx, conn, idents, school, class_name)
        inactive = [s for s in students if not s.active]
        for s in inactive:
            errors.append(RowError(s.uid, f"account is {s.status}: not reset "
                                          f"(`mimsdir student enable {s.uid}` first)"))
        students = [s for s in students if s.active]

        def shown(s: StudentRecord, slip: SlipData) -> None:
            if show:
                click.echo(f"{s.uid}  {s.display}  class {s.class_name}  login ID {s.login_id}"
                           f"  new password: {slip.password}")
            else:
                click.echo(f"reset {s.uid}  {s.display}  class {s.class_name}")

        result = credentials.reset_batch(conn, ctx.cfg, students, output=staged, on_done=shown)
    errors.extend(result.errors)
    n = len(result.slips)
    if output and n:
        click.echo(f"{n} password(s) reset; {n} slip(s) in {output} (mode 0600): print, hand "
                   "out, then delete the file")
    elif show and n:
        click.echo(f"{n} password(s) reset; each must be changed at the next sign-in")
    else:
        click.echo("no password reset")
    finish_batch(errors, result.interrupted)


# -- unlock, disable, enable ------------------------------------------------------------------

def _apply(ctx: Ctx, idents: tuple[str, ...], plan: Callable[[StudentRecord], credentials.Step],
           doing: str, verb: str) -> None:
    with connect(ctx) as conn:
        students, errors = resolve_students(conn, dns_of(ctx), idents)
        result = credentials.apply_steps(conn, students, plan, doing)
    for s in result.changed:
        click.echo(f"{verb} {s.uid}  {s.display}  class {s.class_name}")
    for s, note in result.unchanged:
        click.echo(f"unchanged {s.uid}: {note}")
    finish_batch(errors + result.errors, result.interrupted)


@student.command()
@click.argument("idents", nargs=-1, required=True, metavar="ID-or-EMAIL...")
@pass_ctx
def unlock(ctx: Ctx, idents: tuple[str, ...]) -> None:
    """Clear the directory lockout (too many wrong passwords) and the SSPR back-off.

    The password is not changed. A lockout also ends by itself after the policy's lockout
    time (5 minutes by default).

    \b
    Example:
      mimsdir student unlock S2614023J S2718752C
    """
    _apply(ctx, idents, credentials.plan_unlock, "unlocking", "unlocked")


@student.command()
@click.argument("idents", nargs=-1, required=True, metavar="ID-or-EMAIL...")
@pass_ctx
def disable(ctx: Ctx, idents: tuple[str, ...]) -> None:
    """Stop students signing in anywhere (mimsAccountStatus: disabled).

    The roster sync never re-enables a disabled student (it only re-activates students
    who left and came back): `mimsdir student enable` is the only way back.

    \b
    Example:
      mimsdir student disable S2614023J
    """
    _apply(ctx, idents, credentials.plan_disable, "disabling", "disabled")


@student.command()
@click.argument("idents", nargs=-1, required=True, metavar="ID-or-EMAIL...")
@pass_ctx
def enable(ctx: Ctx, idents: tuple[str, ...]) -> None:
    """Let disabled students sign in again (mimsAccountStatus: active).

    A student who left (per the roster) is not enabled here: the roster sync re-activates
    a student who comes back.

    \b
    Example:
      mimsdir student enable S2614023J
    """
    _apply(ctx, idents, credentials.plan_enable, "enabling", "enabled")

