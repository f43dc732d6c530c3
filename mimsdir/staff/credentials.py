"""Default-password resets, unlocks, disable/enable, and clearing challenge answers.

What each operation writes is a modify list built by a pure ``*_modlist``/``plan_*`` function,
so it can be read and tested without a server; ``reset_batch`` and ``apply_steps`` do the
writes, one student at a time, and turn a refusal for one student into a row error (exit 1)
while a directory outage stops the batch (exit 4, a rerun converges).

A reset, in order, and why:

1. ``mimsCredentialPending: TRUE``: written first, so a crash at any later point never hides a
   password that nobody knows (the report counts these; design-notes §3).
2. The password, by the Password Modify extended operation without the old password: slapd
   hashes it, checks the policy (length, quality, history) and sets ``pwdReset: TRUE`` itself.
3. ``pwdReset: TRUE`` again (explicitly, whatever the policy says), and the lockouts cleared:
   the directory's (``pwdAccountLockedTime``; slapd itself drops ``pwdFailureTime`` when it
   sets the password) and the SSPR's back-off.
4. Once the slip PDF is written (or the password shown on the terminal), the pending flag is
   removed: the password has reached a person.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap

from mimsdir.config import Config
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, DirectoryUnavailable, MimsError, NotFound
from mimsdir.ldapio import Conn
from mimsdir.secret_docs import SlipData
from mimsdir.session_records import end_sessions
from mimsdir.staff.model import RowError, StudentRecord, sort_key
from mimsdir.staff.secret_output import StagedSecretFile
from mimsdir.wordlist import generate_default_password

Modlist = list[tuple[int, str, Any]]

SLIP_TITLE = "Your MIMS password"


def render_slips(slips: list[SlipData], title: str) -> bytes:
    """``pdfs.render_slips``, imported when a slip is drawn (the PDF code is heavy)."""
    from mimsdir import pdfs

    return pdfs.render_slips(slips, title)


# -- pure: what to write ------------------------------------------------------------------

def default_password_length(cfg: Config) -> int:
    """Long enough for the configured length and for every student policy's minimum."""
    return max(cfg.credentials.default_password_length,
               cfg.policies.lower_primary.min_length,
               cfg.policies.upper_primary.min_length)


def new_default_password(cfg: Config, rng: random.Random | None = None) -> str:
    return generate_default_password(default_password_length(cfg), rng=rng)


def sspr_clear_modlist() -> Modlist:
    """The SSPR portal's back-off: failures, the lock, and the questions being asked."""
    return [(ldap.MOD_REPLACE, "mimsSsprFailures", []),
            (ldap.MOD_REPLACE, "mimsSsprLockedUntil", []),
            (ldap.MOD_REPLACE, "mimsSsprLastFailure", []),
            (ldap.MOD_REPLACE, "mimsSsprAsked", [])]


def unlock_modlist() -> Modlist:
    """Directory lockout, sign-in delay, recorded failures and SSPR back-off. A replace with
    no values deletes the attribute when present and is no error when absent, so unlocking
    is idempotent. ``pwdFailureTime`` and ``pwdAccountTmpLockoutEnd`` are
    NO-USER-MODIFICATION in slapd: ``Conn.modify`` sends the Relax Rules control for them,
    which resetters may use (``manage`` in schema/acl.in). Without clearing the failures,
    the next wrong password would start the delay at its longest again.
    """
    return [(ldap.MOD_REPLACE, "pwdAccountLockedTime", []),
            (ldap.MOD_REPLACE, "pwdAccountTmpLockoutEnd", []),
            (ldap.MOD_REPLACE, "pwdFailureTime", []), *sspr_clear_modlist()]


def after_reset_modlist() -> Modlist:
    """Step 3 of a reset: must change at next sign-in, and no lockout in the way."""
    return [(ldap.MOD_REPLACE, "pwdReset", [b"TRUE"]), *unlock_modlist()]


def pending_modlist(pending: bool) -> Modlist:
    return [(ldap.MOD_REPLACE, "mimsCredentialPending", [b"TRUE"] if pending else [])]


def qna_reset_modlist() -> Modlist:
    """No answers, and the student must register new ones (P4+ on the portal; P2-P3 get a new
    card from `mimsdir qna cards`)."""
    return [(ldap.MOD_REPLACE, "mimsChallenge", []),
            (ldap.MOD_REPLACE, "mimsChallengeOrigin", []),
            (ldap.MOD_REPLACE, "mimsQnaMustChange", [b"TRUE"]),
            (ldap.MOD_REPLACE, "mimsSsprAsked", [])]


@dataclass(frozen=True)
class Step:
    """What to do to one student: a modify list, or nothing (with a note), or a row error."""

    modlist: Modlist | None = None
    note: str = ""
    error: str | None = None


def plan_unlock(student: StudentRecord) -> Step:
    return Step(unlock_modlist())


def plan_disable(student: StudentRecord) -> Step:
    if student.status == "disabled":
        return Step(note="already disabled")
    if student.status == "left":
        return Step(note="left the school: already cannot sign in")
    return Step([(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])])


def plan_enable(student: StudentRecord) -> Step:
    if student.status == "active":
        return Step(note="already active")
    if student.status == "left":
        return Step(error="left the school (per the roster): the roster sync re-activates "
                          "a student who comes back; `student enable` only undoes a disable")
    return Step([(ldap.MOD_REPLACE, "mimsAccountStatus", [b"active"])])


def plan_qna_reset(student: StudentRecord) -> Step:
    return Step(qna_reset_modlist())


def slip_for(student: StudentRecord, password: str) -> SlipData:
    return SlipData(
        name=student.name or student.display_name or student.uid,
        display_name=student.display_name,
        class_name=student.class_name,
        login_id=student.login_id,
        password=password,
        school=student.school,
    )


# -- I/O ------------------------------------------------------------------------------------

@dataclass
class BatchResult:
    """What a batch did. ``interrupted`` is set when the directory went away mid-batch."""

    changed: list[StudentRecord] = field(default_factory=list)
    unchanged: list[tuple[StudentRecord, str]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    interrupted: MimsError | None = None


def apply_steps(conn: Conn, students: Sequence[StudentRecord],
                plan: Callable[[StudentRecord], Step], doing: str) -> BatchResult:
    """Plan and write each student's change; a refusal is a row error, an outage stops."""
    result = BatchResult()
    for student in students:
        step = plan(student)
        if step.error:
            result.errors.append(RowError(student.uid, step.error))
            continue
        if step.modlist is None:
            result.unchanged.append((student, step.note))
            continue
        try:
            conn.modify(student.dn, step.modlist, f"{doing} {student.uid}")
        except DirectoryUnavailable as exc:
            result.interrupted = exc
            break
        except MimsError as exc:
            result.errors.append(RowError(student.uid, str(exc)))
            continue
        result.changed.append(student)
    return result


def reset_one(conn: Conn, student: StudentRecord, password: str,
              sessions_dn: str | None = None) -> bool:
    """Steps 1-3 of a reset (module docstring). Raises MimsError; the message names the
    student, never the password. With ``sessions_dn``, the student's portal sessions end
    too (whoever was signed in as them, perhaps with a copied cookie, is out).

    Returns whether the pending flag is tracked: a form teacher may reset their own
    students but not write ``mimsCredentialPending`` (design-notes §4), and the password
    is on their screen anyway, so for them the flag is skipped rather than the reset.
    """
    dn, uid = student.dn, student.uid
    try:
        conn.modify(dn, pending_modlist(True), f"marking {uid}'s new password as pending")
        tracked = True
    except AccessDenied:
        tracked = False
    try:
        conn.set_password(dn, password, doing=f"setting {uid}'s default password")
    except MimsError:
        if tracked and not student.credential_pending:
            # The old password still works: do not claim an undelivered one.
            with contextlib.suppress(MimsError):
                conn.modify(dn, pending_modlist(False), f"restoring {uid}'s pending flag")
        raise
    try:
        conn.modify(dn, after_reset_modlist(), f"setting must-change and unlocking {uid}")
    except DirectoryUnavailable:
        raise
    except MimsError as exc:
        # The password is set: it must still reach the student (slip or screen); the
        # caller reports this as a row error.
        raise PartialReset(str(exc), tracked) from None
    if sessions_dn:
        # Best effort: the portal also ends them when it sees the new pwdChangedTime.
        with contextlib.suppress(DirectoryUnavailable, AccessDenied, NotFound):
            end_sessions(conn, sessions_dn, dn)
    return tracked


class PartialReset(MimsError):
    """The password was set but the must-change flag or the unlock was refused."""

    def __init__(self, message: str, tracked: bool) -> None:
        super().__init__(message)
        self.tracked = tracked


@dataclass
class ResetResult(BatchResult):
    """A reset batch; ``slips`` pairs each reset student with the slip that carries it."""

    slips: list[tuple[StudentRecord, SlipData]] = field(default_factory=list)
    untracked: set[str] = field(default_factory=set)  # DNs whose pending flag was not set


def reset_batch(
    conn: Conn,
    cfg: Config,
    students: Sequence[StudentRecord],
    *,
    output: StagedSecretFile | None = None,
    on_done: Callable[[StudentRecord, SlipData], None] | None = None,
    rng: random.Random | None = None,
) -> ResetResult:
    """Reset every student to a new default password (must change at next sign-in).

    With ``output``, the slips are rendered and staged before the first write and committed
    after the last (see ``secret_output``), grouped by class, then by name. ``on_done`` is
    called right after each student's reset (the ``--show`` path prints there). Students
    whose password reached a slip or the screen lose their pending flag at the end.
    """
    result = ResetResult()
    ordered = sorted(students, key=sort_key)
    plans = [(s, slip_for(s, new_default_password(cfg, rng))) for s in ordered]
    if not plans:
        return result
    if output is not None:
        output.stage(render_slips([slip for _, slip in plans], SLIP_TITLE))
    for student, slip in plans:
        try:
            if not reset_one(conn, student, slip.password,
                             sessions_dn=Dns(cfg.ldap.base_dn).sessions):
                result.untracked.add(student.dn)
        except PartialReset as exc:
            result.errors.append(RowError(student.uid, f"password reset, but {exc}"))
            if not exc.tracked:
                result.untracked.add(student.dn)
        except DirectoryUnavailable as exc:
            result.interrupted = exc
            break
        except MimsError as exc:
            result.errors.append(RowError(student.uid, str(exc)))
            continue
        result.changed.append(student)
        result.slips.append((student, slip))
        if on_done is not None:
            on_done(student, slip)
    if output is not None:
        if len(result.slips) == len(plans):
            output.commit()
        elif result.slips:
            output.commit(render_slips([slip for _, slip in result.slips], SLIP_TITLE))
        else:
            output.discard()
    if result.interrupted is None:
        for student, _slip in result.slips:
            if student.dn in result.untracked:
                continue
            try:
                conn.modify(student.dn, pending_modlist(False),
                            f"marking {student.uid}'s password as delivered")
            except MimsError as exc:
                result.errors.append(RowError(student.uid, f"reset done, but {exc}"))
    return result
