"""A student's entry as the ICT staff commands see it: a typed record, parsed by pure functions.

Why a record and not the raw attribute dict: every command (show, find, reset, report) asks the
same questions of an entry: is it locked *now* (ppolicy leaves ``pwdAccountLockedTime`` in place
after the lockout has expired, until the next bind), must the password be changed, are the
challenge answers still the card's at P4+. Answering them once, here, keeps the commands
consistent. The record never holds a password or a challenge hash: only question ids and counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mimsdir.gtime import parse_gtime
from mimsdir.ldapio import Attrs, escape_filter, filter_any, first, values

# What the staff commands read of a student. No userPassword: nobody needs the hash.
STUDENT_ATTRS: tuple[str, ...] = (
    "uid", "mail", "cn", "givenName", "sn", "displayName",
    "mimsSchoolCode", "mimsLevel", "mimsClass", "mimsFormTeacher", "mimsAccountStatus",
    "mimsLeftAt", "mimsChallenge", "mimsChallengeOrigin", "mimsQnaMustChange",
    "mimsSsprFailures", "mimsSsprLockedUntil", "mimsSsprAsked", "mimsCredentialPending",
    "pwdPolicySubentry", "pwdAccountLockedTime", "pwdAccountTmpLockoutEnd", "pwdFailureTime",
    "pwdReset", "pwdChangedTime",
    "createTimestamp", "modifyTimestamp",
)

LEVELS: tuple[str, ...] = ("P1", "P2", "P3", "P4", "P5", "P6")
UPPER_LEVELS: tuple[str, ...] = ("P4", "P5", "P6")
CARD_LEVELS: tuple[str, ...] = ("P2", "P3")
STATUSES: tuple[str, ...] = ("active", "disabled", "left")

#: ppolicy's value of pwdAccountLockedTime for "locked by an administrator until unlocked".
PERMANENT_LOCK = "000001010000Z"



def show_time(dt: datetime | None) -> str:
    """A time for a person: local time with its offset, to the second; '-' for none."""
    if dt is None:
        return "-"
    return dt.astimezone().replace(microsecond=0).isoformat(sep=" ")


def iso(dt: datetime | None) -> str | None:
    """A time for JSON: ISO 8601 with offset (local), or None."""
    return None if dt is None else dt.astimezone().isoformat()


def _bool(attrs: Attrs, name: str) -> bool:
    return (first(attrs, name) or "").upper() == "TRUE"


def _int(attrs: Attrs, name: str) -> int:
    try:
        return int(first(attrs, name) or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class StudentRecord:
    """One student, parsed. Question ids only: never a hash, never a password."""

    dn: str
    uid: str
    login_id: str
    name: str
    given_name: str
    surname: str
    display_name: str
    school: str
    level: str
    class_name: str
    form_teacher_dn: str | None
    status: str
    left_at: datetime | None
    locked_at: datetime | None
    lock_permanent: bool
    # ppolicy's sign-in delay after wrong passwords (pwdAccountTmpLockoutEnd): binds are
    # refused until then. Left in place once passed, like pwdAccountLockedTime.
    waiting_until: datetime | None
    failure_count: int
    must_change: bool
    password_changed_at: datetime | None
    sspr_failures: int
    sspr_locked_until: datetime | None
    sspr_asked_at: datetime | None
    challenge_qids: tuple[str, ...]
    challenge_origin: str | None
    qna_must_change: bool
    credential_pending: bool
    policy_dn: str | None
    created_at: datetime | None
    modified_at: datetime | None

    # -- derived answers ------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def upper_primary(self) -> bool:
        return self.level in UPPER_LEVELS

    @property
    def challenge_count(self) -> int:
        return len(self.challenge_qids)

    @property
    def has_lock_record(self) -> bool:
        return self.lock_permanent or self.locked_at is not None or self.waiting_until is not None

    def waiting_now(self, now: datetime) -> bool:
        """Is the student in a sign-in delay after wrong passwords (it ends by itself)?"""
        return self.waiting_until is not None and self.waiting_until > now

    def locked_until(self, lockout_seconds: int | None) -> datetime | None:
        """When the directory lockout ends by itself; None if not locked or only by an admin.

        ``lockout_seconds`` is the policy's pwdLockoutDuration (0 or None: until unlocked).
        """
        if self.locked_at is None or not lockout_seconds:
            return None
        return self.locked_at + timedelta(seconds=lockout_seconds)

    def locked_now(self, now: datetime, lockout_seconds: int | None) -> bool:
        """Is a sign-in refused right now, by a lock or a sign-in delay? ppolicy keeps
        pwdAccountLockedTime and pwdAccountTmpLockoutEnd after they have passed (until the
        next successful bind, or for good), so presence alone is not the answer."""
        if self.lock_permanent or self.waiting_now(now):
            return True
        if self.locked_at is None:
            return False
        until = self.locked_until(lockout_seconds)
        return until is None or until > now

    def sspr_locked_now(self, now: datetime) -> bool:
        return self.sspr_locked_until is not None and self.sspr_locked_until > now

    @property
    def qna_state(self) -> str:
        """'missing' (no answers, or they must be replaced), 'card-upper' (P4+ still using the
        P2-P3 card's answers), or 'ok'. The three partition the students."""
        if not self.challenge_qids or self.qna_must_change:
            return "missing"
        if self.upper_primary and self.challenge_origin == "card":
            return "card-upper"
        return "ok"

    @property
    def qna_pending(self) -> bool:
        """P4-P6 with no answers or answers still from the card, or answers that must change."""
        if self.qna_must_change:
            return True
        return self.upper_primary and (not self.challenge_qids or self.challenge_origin == "card")

    @property
    def display(self) -> str:
        """How a person is named in output: the name, then the display name when different."""
        if self.display_name and self.display_name != self.name:
            return f"{self.name} ({self.display_name})" if self.name else self.display_name
        return self.name or self.display_name or self.uid


def parse_student(dn: str, attrs: Attrs) -> StudentRecord:
    """Build the record from an entry read with ``STUDENT_ATTRS`` (missing ones are fine)."""
    qids: list[str] = []
    for value in values(attrs, "mimsChallenge"):
        qid, sep, _hash = value.partition("$")
        qids.append(qid if sep else "?")
    locked_raw = first(attrs, "pwdAccountLockedTime")
    asked = first(attrs, "mimsSsprAsked")
    asked_at = parse_gtime(asked.partition("$")[0]) if asked else None
    origin = first(attrs, "mimsChallengeOrigin")
    return StudentRecord(
        dn=dn,
        uid=first(attrs, "uid") or dn.split(",", 1)[0].partition("=")[2],
        login_id=(first(attrs, "mail") or "").lower(),
        name=first(attrs, "cn") or "",
        given_name=first(attrs, "givenName") or "",
        surname=first(attrs, "sn") or "",
        display_name=first(attrs, "displayName") or "",
        school=first(attrs, "mimsSchoolCode") or "",
        level=(first(attrs, "mimsLevel") or "").upper(),
        class_name=first(attrs, "mimsClass") or "",
        form_teacher_dn=first(attrs, "mimsFormTeacher"),
        status=(first(attrs, "mimsAccountStatus") or "").lower(),
        left_at=parse_gtime(first(attrs, "mimsLeftAt")),
        locked_at=None if locked_raw == PERMANENT_LOCK else parse_gtime(locked_raw),
        lock_permanent=locked_raw == PERMANENT_LOCK,
        waiting_until=parse_gtime(first(attrs, "pwdAccountTmpLockoutEnd")),
        failure_count=len(values(attrs, "pwdFailureTime")),
        must_change=_bool(attrs, "pwdReset"),
        password_changed_at=parse_gtime(first(attrs, "pwdChangedTime")),
        sspr_failures=_int(attrs, "mimsSsprFailures"),
        sspr_locked_until=parse_gtime(first(attrs, "mimsSsprLockedUntil")),
        sspr_asked_at=asked_at,
        challenge_qids=tuple(qids),
        challenge_origin=origin.lower() if origin else None,
        qna_must_change=_bool(attrs, "mimsQnaMustChange"),
        credential_pending=_bool(attrs, "mimsCredentialPending"),
        policy_dn=first(attrs, "pwdPolicySubentry"),
        created_at=parse_gtime(first(attrs, "createTimestamp")),
        modified_at=parse_gtime(first(attrs, "modifyTimestamp")),
    )


def policy_name(policy_dn: str | None) -> str:
    """``cn=lower-primary,ou=policies,...`` -> ``lower-primary`` ('default' when unset)."""
    if not policy_dn:
        return "default (lower-primary)"
    rdn = policy_dn.split(",", 1)[0]
    return rdn.partition("=")[2] or policy_dn


# -- filters ------------------------------------------------------------------------------



def student_filter(
    *,
    school: str | None = None,
    class_name: str | None = None,
    levels: Iterable[str] = (),
    status: str | None = None,
    locked: bool = False,
    must_change: bool = False,
    qna_pending: bool = False,
    extra: Iterable[str] = (),
) -> str:
    """The LDAP filter for students in a scope; every value escaped.

    ``locked`` selects entries with a lock or sign-in delay record; whether it is still in
    force is decided afterwards with the policy's duration (``StudentRecord.locked_now``).

    >>> student_filter(school="DEMOPS", levels=["P2", "P3"], status="active")
    '(&(objectClass=mimsStudent)(mimsSchoolCode=DEMOPS)(|(mimsLevel=P2)(mimsLevel=P3))(mimsAccountStatus=active))'
    """
    parts = ["(objectClass=mimsStudent)"]
    if school:
        parts.append(f"(mimsSchoolCode={escape_filter(school)})")
    if class_name:
        parts.append(f"(mimsClass={escape_filter(class_name)})")
    lv = [v.upper() for v in levels]
    if lv:
        parts.append(filter_any("mimsLevel", lv))
    if status:
        parts.append(f"(mimsAccountStatus={escape_filter(status)})")
    if locked:
        parts.append("(|(pwdAccountLockedTime=*)(pwdAccountTmpLockoutEnd=*))")
    if must_change:
        parts.append("(pwdReset=TRUE)")
    if qna_pending:
        upper = filter_any("mimsLevel", UPPER_LEVELS)
        parts.append(
            "(|(mimsQnaMustChange=TRUE)"
            f"(&{upper}(|(!(mimsChallenge=*))(mimsChallengeOrigin=card))))"
        )
    parts.extend(extra)
    return "(&" + "".join(parts) + ")"


def normalise_name(text: str) -> str:
    """Names compared case- and space-insensitively ("Tan  Wei ling" == "tan wei ling")."""
    return "".join(text.casefold().split())


def sort_key(student: StudentRecord) -> tuple[str, str, str, str, str]:
    """Slips and cards come out grouped by school and class, then by name."""
    return (student.school.upper(), student.class_name.upper(), student.name.casefold(),
            student.display_name.casefold(), student.uid)


@dataclass(frozen=True)
class RowError:
    """One thing in a batch that could not be done (exit 1): what it was about, and why.

    ``subject`` is a student ID, a login ID, or ``FILE:LINE``; ``message`` never carries a
    password or an answer.
    """

    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"
