"""The planner: a pure function from (roster, directory state) to a Plan.

Rules that keep a student safe:
- A student named by a row with errors (by id or email) is never disabled this run.
- Only students of the schools in scope are disabled; a student found by id in another school
  is moved, never disabled by another school's roster.
- A OneRoster delta disables only those it marks as gone, never those it leaves out.
- An ICT-disabled student (``disabled``) stays disabled; only ``left`` students are re-enabled.

Every student the roster names carries posixAccount (mimsdir/posix.py): a new one gets a
uidNumber placeholder and an existing one keeps the number it has; a student who has none
yet is back-filled (kind ``backfill``); a transfer moves the gidNumber and the home. Numbers
are placeholders here and reserved only when the plan is applied (``assign_numbers``), so a
dry run or a saved plan writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import chain

from mimsdir.config import PosixConfig
from mimsdir.directory.slapdconf import Dns, policy_for_level
from mimsdir.gtime import format_gtime, parse_gtime
from mimsdir.posix import (
    NEW_UID,
    POSIX_ATTRS,
    POSIX_CLASS,
    home_directory,
    is_placeholder,
    new_gid,
    placeholder_group,
    school_group,
)
from mimsdir.roster import Roster, RosterStudent
from mimsdir.sync.model import (
    ACTIVE,
    BACKFILL,
    CREATE,
    DISABLE,
    GROUP,
    LEFT,
    MOVE,
    PROMOTE,
    PURGE,
    REENABLE,
    REISSUE,
    UPDATE,
    AttrChange,
    Change,
    DirStudent,
    Plan,
    Remembered,
)

UPPER = ("P4", "P5", "P6")


@dataclass(frozen=True)
class DirectoryState:
    """What the directory holds that the planner needs, read by ``mimsdir.sync.state``."""

    # lower-case uid -> student (scope + looked up); a ``Remembered`` one only where a quiet
    # roster row names it (the caller reads every other in full, ``View.full``).
    students: Mapping[str, DirStudent | Remembered]
    mail_owners: Mapping[str, str]          # lower-case mail -> uid, for roster mails
    teachers: Mapping[str, str]             # lower-case teacher mail -> staff DN
    groups: Mapping[str, str] = field(default_factory=dict)  # posixGroup cn -> gidNumber
    # How the students in scope were read (mimsdir/sync/view.py): taken from the last run's
    # view because their entryCSN had not moved, or read from the directory in full.
    reused: int = 0
    fetched: int = 0
    # lower-case uid -> the digest of the roster row the last run found this student to match
    # exactly (``row_digest``), for the students whose entry has not changed since.
    quiet: Mapping[str, str] = field(default_factory=dict)


def scope_of(roster: Roster, school: str | None) -> tuple[str, ...]:
    """The schools a run may disable students in: ``--school`` or the roster's schools."""
    if school:
        return (school.upper(),)
    return tuple(sorted(roster.schools))


def names(r: RosterStudent) -> tuple[str, str, str]:
    """(givenName, sn, cn): sn is required by inetOrgPerson, so a one-name student's sn is
    their given name."""
    given = r.given_name.strip()
    family = r.family_name.strip()
    cn = f"{given} {family}".strip()
    return given, family or given, cn


def desired(r: RosterStudent, dns: Dns, teachers: Mapping[str, str]) -> dict[str, str | None]:
    given, sn, cn = names(r)
    want: dict[str, str | None] = {
        "mail": r.email,
        "givenName": given,
        "sn": sn,
        "cn": cn,
        "mimsSchoolCode": r.school_code,
        "mimsLevel": r.level,
        "mimsClass": r.class_name,
        "pwdPolicySubentry": dns.policy(policy_for_level(r.level)),
    }
    if r.form_teacher_email:
        dn = teachers.get(r.form_teacher_email.lower())
        if dn:
            want["mimsFormTeacher"] = dn
    return want


def desired_posix(r: RosterStudent, current: DirStudent | None, groups: Mapping[str, str],
                  posix: PosixConfig) -> dict[str, str | None]:
    """The posixAccount attributes of the student a row names: the uidNumber they have (a
    placeholder for a new one: a number, once given, never changes), their school group's
    gidNumber (a placeholder while the group is to be added), home and shell from config."""
    group = school_group(r.school_code)
    return {
        "uidNumber": current.uid_number if current and current.uid_number else NEW_UID,
        "gidNumber": groups.get(group) or new_gid(group),
        "homeDirectory": home_directory(posix.home_template, r.student_id, r.school_code),
        "loginShell": posix.shell,
    }


def _current(s: DirStudent) -> dict[str, str | None]:
    return {
        "mail": s.mail, "givenName": s.given_name, "sn": s.family_name, "cn": s.cn,
        "mimsSchoolCode": s.school, "mimsLevel": s.level, "mimsClass": s.class_name,
        "pwdPolicySubentry": s.policy_dn, "mimsFormTeacher": s.form_teacher_dn,
        "mimsAccountStatus": s.status, "mimsLeftAt": s.left_at,
        "uidNumber": s.uid_number, "gidNumber": s.gid_number, "homeDirectory": s.home,
        "loginShell": s.login_shell,
    }


def _same(attr: str, a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    if attr in ("mail", "mimsSchoolCode", "mimsLevel", "pwdPolicySubentry", "mimsFormTeacher"):
        return a.lower() == b.lower()
    return a == b


def _display(r: RosterStudent) -> str:
    return names(r)[2]


def row_digest(r: RosterStudent) -> str:
    """What a row asks of its student, as a short digest (no field holds a NUL: the rules
    refuse control characters). Stable across runs and machines, unlike ``hash()``."""
    text = "\0".join((r.student_id, r.email, r.given_name, r.family_name, r.school_code,
                      r.level, r.class_name, r.form_teacher_email or "", r.status))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def plan_sync(
    roster: Roster,
    state: DirectoryState,
    *,
    dns: Dns,
    now: datetime,
    school: str | None = None,
    retention_days: int = 365,
    purge: bool = False,
    posix: PosixConfig | None = None,
    converged: MutableMapping[str, str] | None = None,
    converged_raw: MutableMapping[str, tuple[bytes, str | None]] | None = None,
    unread: Sequence[Remembered] = (),
) -> Plan:
    """Compute every change that makes the directory match the roster, in scope.

    ``state.quiet`` names students whose entry has not changed since a run found them to
    match a row with the same digest, under the same form teachers, groups and settings (the
    caller's promise, ``sync/run.py``): such a row is unchanged without comparing it again,
    which is most of a national no-op night. ``converged`` receives every student (lower-case
    uid -> row digest) found to match its row exactly, for the next run's ``quiet``, and
    ``converged_raw`` the digest of those rows' raw cells and their form teacher's email,
    for the next run's roster reader; the ``roster.quiet`` rows are converged too, as the
    view records them already, and are not repeated there.

    ``roster.quiet`` rows (not checked again by the reader: their cells are those of the row
    the last run found the student to match) must name students in ``state.quiet``: the
    caller has seen that their entries have not changed since (``sync/run.py``). A row whose
    form teacher is not in the directory is never remembered by its raw cells, so its
    warning is given every night.

    ``unread``: students in scope that no row names, known only by their view heads (not in
    ``state.students``). They are planned from the heads (a disable names its student by uid,
    and does not know an old leaving date): such a plan counts exactly what the full one
    would, for guards that refuse it and its report, and is never applied (``sync/run.py``).
    Not with ``purge`` (a leaving date decides a purge)."""
    if unread and purge:
        raise ValueError("a plan from the view's heads cannot purge")
    posix = posix or PosixConfig()
    scope = scope_of(roster, school)
    in_scope = set(scope)
    plan = Plan(scope=scope, roster="", fmt=roster.fmt, is_delta=roster.is_delta,
                rows_by_school={k: v for k, v in roster.row_count_by_school.items()
                                 if k in in_scope})
    plan.row_errors = [str(e) for e in roster.errors]
    plan.warnings = list(roster.warnings)
    protected_ids = {i.lower() for i in roster.protected_ids}
    protected_mails = {m.lower() for m in roster.protected_emails}

    rows = [r for r in roster.students if r.school_code in in_scope]
    quiet_rows = [q for q in roster.quiet if q.known.school in in_scope]
    skipped = len(roster.students) + len(roster.quiet) - len(rows) - len(quiet_rows)
    if skipped:
        plan.warnings.append(f"{skipped} row(s) of schools outside --school {school} ignored")

    students = state.students
    quiet = state.quiet
    seen: set[str] = set()
    unknown_teachers: dict[str, int] = {}
    stamp = format_gtime(now)

    for q in quiet_rows:
        key = q.known.uid.lower()
        if key not in quiet or students.get(key) is not q.known:
            raise ValueError(f"{q.source}:{q.line}: a quiet row for a student not known quiet")
        # Still converged, as the view records it already: not repeated in ``converged``, and
        # not in ``seen`` either (half a million keys): its student is the ``Remembered`` one.
        plan.unchanged += 1
        plan.quiet_rows += 1
    remembered = sum(1 for s in students.values() if isinstance(s, Remembered))
    if remembered != len(quiet_rows):
        raise ValueError(f"{remembered} students not read in full for {len(quiet_rows)} "
                         "quiet rows")

    for r in rows:
        key = r.student_id.lower()
        seen.add(key)
        current = _in_full(students.get(key))
        if r.status == LEFT:
            if current and current.status == ACTIVE:
                plan.changes.append(_disable(current, stamp, r.line))
            elif current:
                plan.unchanged += 1
            continue
        owner = state.mail_owners.get(r.email.lower())
        if owner and owner.lower() != key:
            plan.row_errors.append(
                f"{r.source}:{r.line}: email: {r.email} is already the login ID of student "
                f"{owner}"
            )
            # The row names two students: protect both from being disabled this run.
            protected_ids.add(key)
            protected_ids.add(owner.lower())
            if current:
                plan.unchanged += 1
            continue
        if r.form_teacher_email and r.form_teacher_email.lower() not in state.teachers:
            unknown_teachers[r.form_teacher_email] = unknown_teachers.get(
                r.form_teacher_email, 0) + 1
        digest = row_digest(r) if (quiet or converged is not None) and current else None
        if digest is not None and quiet.get(key) == digest:
            change = None  # as the last run found it, and nothing has changed since
            plan.quiet_rows += 1
        else:
            want = desired(r, dns, state.teachers)
            want.update(desired_posix(r, current, state.groups, posix))
            if current is None:
                plan.changes.append(_create(r, dns, want, stamp))
                continue
            change = _diff(r, current, want)
        assert current is not None
        if change is not None:
            plan.changes.append(change)
        else:
            plan.unchanged += 1
        if current.credential_pending and current.status == ACTIVE:
            plan.changes.append(Change(REISSUE, current.uid, current.dn, r.school_code,
                                       line=r.line, name=_display(r), class_name=r.class_name,
                                       level=r.level, mail=r.email))
        elif change is None and converged is not None and digest is not None:
            converged[key] = digest
            if (converged_raw is not None and r.raw is not None
                    and (not r.form_teacher_email
                         or r.form_teacher_email.lower() in state.teachers)):
                converged_raw[key] = (r.raw, r.form_teacher_email)

    for email, count in sorted(unknown_teachers.items()):
        plan.warnings.append(f"form teacher {email} is not in the directory: "
                             f"{count} student(s) keep their current form teacher")

    departed = {d.lower() for d in roster.departed_ids}
    # A national night sees nearly everyone: the quiet rows' students (``Remembered``, one
    # for each quiet row, as counted above) and the rows' keys are left out before sorting.
    heads = {s.uid.lower(): s for s in unread}
    for key in sorted([*(k for k, v in students.items()
                         if k not in seen and not isinstance(v, Remembered)), *heads]):
        head = heads.get(key)
        if head is not None:
            if key in seen or key in students:
                raise ValueError(f"{head.uid}: unread, yet named by a row or read in full")
            s: DirStudent = DirStudent(uid=head.uid, dn=head.dn, school=head.school, level="",
                                       status=head.status, mail=head.mail, cn=head.uid)
        else:
            full = _in_full(students[key])
            assert full is not None
            s = full
        if s.school.upper() not in in_scope:
            continue
        gone = key in departed or not roster.is_delta
        if s.status == ACTIVE:
            if not gone:
                plan.unchanged += 1
            elif key in protected_ids or (s.mail and s.mail.lower() in protected_mails):
                plan.protected.append(s.uid)
                plan.unchanged += 1
            else:
                plan.changes.append(_disable(s, stamp, None))
        elif s.status == LEFT and purge and _expired(s, now, retention_days):
            plan.changes.append(Change(PURGE, s.uid, s.dn, s.school))
        else:
            plan.unchanged += 1

    plan.scope_active = sum(1 for s in chain(students.values(), unread)
                            if s.school.upper() in in_scope and s.status == ACTIVE)
    plan.changes.extend(_new_groups(plan.changes, dns))
    plan.changes.sort(key=_order)
    return plan


def _in_full(s: DirStudent | Remembered | None) -> DirStudent | None:
    if isinstance(s, Remembered):
        # A caller's bug, and a dangerous one: compared with a row, the missing fields would
        # read as attributes to set.
        raise ValueError(f"{s.uid}: planned from the view's head alone, not read in full")
    return s


def _new_groups(changes: Sequence[Change], dns: Dns) -> list[Change]:
    """A school's posixGroup, once, for every group a change waits for."""
    out: dict[str, Change] = {}
    for c in changes:
        for a in c.attrs:
            group = placeholder_group(a.new) if a.attr == "gidNumber" else None
            if group and group not in out:
                out[group] = Change(GROUP, group, dns.posix_group(group), c.school,
                                    attrs=(AttrChange("gidNumber", None, new_gid(group)),),
                                    name=f"students of {c.school}")
    return list(out.values())


def _order(c: Change) -> tuple[int, str, str]:
    # Groups before the students who need them; frees before takes: disables and moves first,
    # creates after, credentials last.
    rank = {GROUP: -1, DISABLE: 0, PURGE: 1, MOVE: 2, PROMOTE: 2, UPDATE: 2, BACKFILL: 2,
            REENABLE: 3, CREATE: 4, REISSUE: 5}
    return rank[c.kind], c.school, c.uid


def _expired(s: DirStudent, now: datetime, retention_days: int) -> bool:
    left = parse_gtime(s.left_at)
    return left is not None and now - left > timedelta(days=retention_days)


def _disable(s: DirStudent, stamp: str, line: int | None) -> Change:
    return Change(DISABLE, s.uid, s.dn, s.school, attrs=(
        AttrChange("mimsAccountStatus", s.status, LEFT),
        AttrChange("mimsLeftAt", s.left_at, stamp),
    ), line=line, name=s.cn or s.uid, class_name=s.class_name or "", level=s.level,
        mail=s.mail or "")


def _create(r: RosterStudent, dns: Dns, want: Mapping[str, str | None], stamp: str) -> Change:
    attrs = [AttrChange("objectClass", None, POSIX_CLASS)]
    attrs += [AttrChange(k, None, v) for k, v in want.items() if v is not None]
    attrs.append(AttrChange("mimsAccountStatus", None, ACTIVE))
    # Until a slip carrying the first password is written, the credential is pending: a run
    # killed in between re-issues it, so no account ends with a password nobody knows.
    attrs.append(AttrChange("mimsCredentialPending", None, "TRUE"))
    return Change(CREATE, r.student_id, dns.student(r.student_id), r.school_code,
                  attrs=tuple(attrs), line=r.line, name=_display(r), class_name=r.class_name,
                  level=r.level, mail=r.email)


def _diff(r: RosterStudent, s: DirStudent, want: Mapping[str, str | None]) -> Change | None:
    cur = _current(s)
    attrs: list[AttrChange] = []
    if not s.posix:
        attrs.append(AttrChange("objectClass", None, POSIX_CLASS))
    for attr, new in want.items():
        if not _same(attr, cur.get(attr), new):
            attrs.append(AttrChange(attr, cur.get(attr), new))
    kind = UPDATE
    if s.status == LEFT:
        kind = REENABLE
        attrs.append(AttrChange("mimsAccountStatus", LEFT, ACTIVE))
        if s.left_at:
            attrs.append(AttrChange("mimsLeftAt", s.left_at, None))
    changed = {a.attr for a in attrs}
    if "mimsLevel" in changed:
        if kind != REENABLE:
            kind = PROMOTE
        # Crossing into upper primary: card answers must be replaced by the student's own.
        if (r.level in UPPER and s.level not in UPPER and s.qna_origin != "student"
                and not s.qna_must_change):
            attrs.append(AttrChange("mimsQnaMustChange", None, "TRUE"))
    elif kind == UPDATE and changed & {"mimsSchoolCode", "mimsClass"}:
        kind = MOVE
    elif kind == UPDATE and "objectClass" in changed and changed <= {"objectClass",
                                                                      *POSIX_ATTRS}:
        kind = BACKFILL
    if not attrs:
        return None
    return Change(kind, s.uid, s.dn, r.school_code, attrs=tuple(attrs), line=r.line,
                  name=_display(r), class_name=r.class_name, level=r.level, mail=r.email)


def apply_to_state(plan: Plan, students: Mapping[str, DirStudent]) -> dict[str, DirStudent]:
    """What the directory would hold after the plan: the planner's own model of apply, used by
    the property tests (plan, apply, re-plan must give nothing to do)."""
    out = dict(students)
    for c in plan.changes:
        key = c.uid.lower()
        if c.kind == GROUP:
            continue
        if c.kind == PURGE:
            out.pop(key, None)
            continue
        if c.kind == REISSUE:
            out[key] = replace(out[key], credential_pending=False)
            continue
        base = out.get(key) or DirStudent(uid=c.uid, dn=c.dn, school="", level="", status="")
        values = {a.attr: a.new for a in c.attrs}
        out[key] = replace(
            base,
            mail=values.get("mail", base.mail),
            given_name=values.get("givenName", base.given_name),
            family_name=values.get("sn", base.family_name),
            cn=values.get("cn", base.cn),
            school=values.get("mimsSchoolCode", base.school) or base.school,
            level=values.get("mimsLevel", base.level) or base.level,
            class_name=values.get("mimsClass", base.class_name),
            form_teacher_dn=values.get("mimsFormTeacher", base.form_teacher_dn),
            status=values.get("mimsAccountStatus", base.status) or base.status,
            left_at=values.get("mimsLeftAt", base.left_at),
            policy_dn=values.get("pwdPolicySubentry", base.policy_dn),
            qna_must_change=(values.get("mimsQnaMustChange") == "TRUE") or base.qna_must_change,
            credential_pending=False,
            posix=base.posix or values.get("objectClass") == POSIX_CLASS,
            uid_number=values.get("uidNumber", base.uid_number),
            gid_number=values.get("gidNumber", base.gid_number),
            home=values.get("homeDirectory", base.home),
            login_shell=values.get("loginShell", base.login_shell),
        )
    return out


def groups_after(plan: Plan, groups: Mapping[str, str]) -> dict[str, str]:
    """The posix groups after the plan (name -> gidNumber), like ``apply_to_state``."""
    out = dict(groups)
    for c in plan.changes:
        if c.kind == GROUP:
            out[c.uid] = next(a.new for a in c.attrs if a.attr == "gidNumber") or ""
    return out


def numbers_needed(plan: Plan) -> tuple[int, list[Change]]:
    """How many uidNumbers the plan waits for, and the groups it adds (whose gidNumbers it
    waits for)."""
    uids = sum(1 for c in plan.changes for a in c.attrs
               if a.attr == "uidNumber" and a.new == NEW_UID)
    return uids, [c for c in plan.changes if c.kind == GROUP]


def assign_numbers(plan: Plan, uids: Sequence[int], gids: Mapping[str, int]) -> Plan:
    """The plan with every placeholder replaced: reserved ``uids`` in the order of the changes,
    and each group's gidNumber from ``gids`` (name -> number). Pure; raises ValueError when
    a number is missing, so a placeholder never reaches the directory."""
    left = list(uids)
    if len(left) != numbers_needed(plan)[0]:
        raise ValueError(f"{len(left)} uid numbers for {numbers_needed(plan)[0]} placeholders")
    changes = []
    for c in plan.changes:
        attrs = []
        for a in c.attrs:
            new = a.new
            if a.attr == "uidNumber" and new == NEW_UID:
                new = str(left.pop(0))
            elif a.attr == "gidNumber" and placeholder_group(new):
                group = placeholder_group(new) or ""
                if group not in gids:
                    raise ValueError(f"no gidNumber for the group {group}")
                new = str(gids[group])
            if is_placeholder(new):
                raise ValueError(f"{c.uid}: {a.attr} left as {new}")
            attrs.append(replace(a, new=new))
        changes.append(replace(c, attrs=tuple(attrs)))
    return replace(plan, changes=changes)


def iter_kinds(plan: Plan, kinds: Iterable[str]) -> list[Change]:
    wanted = set(kinds)
    return [c for c in plan.changes if c.kind in wanted]
