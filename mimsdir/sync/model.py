"""The values the sync works with: what the directory holds, and what should change.

Plain frozen dataclasses with JSON round-trips, no LDAP: the planner and the guards are pure
functions of these, testable without a server (and with Hypothesis).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

CREATE = "create"
UPDATE = "update"
PROMOTE = "promote"
MOVE = "move"
DISABLE = "disable"
REENABLE = "reenable"
PURGE = "purge"
REISSUE = "reissue"
# An existing student who lacked the posixAccount attributes gets them (and nothing else
# changes): counted apart, never mistaken for a change of the student.
BACKFILL = "backfill"
# A school's posixGroup, added when the school first appears (uid = the group's name).
GROUP = "group"
KINDS = (CREATE, UPDATE, PROMOTE, MOVE, DISABLE, REENABLE, PURGE, REISSUE, BACKFILL, GROUP)

ACTIVE = "active"
LEFT = "left"
DISABLED = "disabled"

# The attributes a roster owns. Everything else on an entry (displayName, challenge answers,
# password state) belongs to someone else and the sync never touches it.
# The posixAccount attributes are derived from those and from config.yaml (mimsdir/posix.py);
# a uidNumber, once given, is never changed.
MANAGED = ("mail", "givenName", "sn", "cn", "mimsSchoolCode", "mimsLevel", "mimsClass",
           "mimsFormTeacher", "mimsAccountStatus", "mimsLeftAt", "pwdPolicySubentry",
           "uidNumber", "gidNumber", "homeDirectory", "loginShell")


@dataclass(frozen=True, slots=True)
class DirStudent:
    """A student as the directory holds it, reduced to what the sync compares."""

    uid: str
    dn: str
    school: str
    level: str
    status: str
    mail: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    cn: str | None = None
    class_name: str | None = None
    form_teacher_dn: str | None = None
    left_at: str | None = None          # GeneralizedTime, e.g. 20261128020000Z
    credential_pending: bool = False
    qna_origin: str | None = None
    qna_must_change: bool = False
    policy_dn: str | None = None
    csn: str | None = None              # entryCSN: changes whenever the entry does
    posix: bool = False                 # objectClass posixAccount
    uid_number: str | None = None
    gid_number: str | None = None
    home: str | None = None
    login_shell: str | None = None


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# loading a national view (500,000 of these) 0.6 s slower (measured 2026-12-02). Nobody
# writes to one after the view is loaded.
@dataclass(slots=True, eq=False)
class Remembered:
    """A student as the last run's view remembers it, before anyone needs more (``sync/view.py``):
    what the listing compares (DN, entryCSN), what the roster reader's cross-row rules and the
    counts read (uid, mail, school, status), and what the last run found its row to be
    (``digest``, ``raw``, ``teacher``). A student whose row is quiet is never read further;
    any other is read in full from the view's file (``View.full``) before it is planned."""

    uid: str
    dn: str
    mail: str | None
    school: str
    status: str
    csn: str | None
    digest: str | None     # plan.row_digest of the row it matched
    raw: bytes | None      # the digest of that row's raw cells
    teacher: str | None    # the form teacher's email that row named
    offset: int            # where its full record starts in the view's file


@dataclass(frozen=True, slots=True)
class AttrChange:
    """One attribute's new value. ``objectClass`` is the exception: its ``new`` is a class
    to add (posixAccount), never a replacement of the entry's classes. ``uidNumber`` and
    ``gidNumber`` may hold placeholders (``mimsdir.posix.NEW_UID``, ``gid:<group>``) until
    numbers are reserved, just before the plan is applied (``plan.assign_numbers``)."""

    attr: str
    old: str | None
    new: str | None  # None: delete the attribute


@dataclass(frozen=True, slots=True)
class Change:
    """One student's change. ``kind`` is the most significant thing happening to them."""

    kind: str
    uid: str
    dn: str
    school: str
    attrs: tuple[AttrChange, ...] = ()
    line: int | None = None
    # For a create or reissue: what a slip needs besides the password.
    name: str = ""
    class_name: str = ""
    level: str = ""
    mail: str = ""

    @property
    def level_change(self) -> tuple[str | None, str | None] | None:
        for a in self.attrs:
            if a.attr == "mimsLevel":
                return a.old, a.new
        return None


@dataclass
class Plan:
    """Everything a run would do, and why it may be refused."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    scope: tuple[str, ...] = ()
    scope_active: int = 0
    row_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)   # ids kept because their row had errors
    rows_by_school: dict[str, int] = field(default_factory=dict)
    roster: str = ""
    fmt: str = ""
    is_delta: bool = False
    fingerprint: str = ""
    # What the planner looked up outside the scope, so --apply-plan can look again.
    lookup_uids: list[str] = field(default_factory=list)
    lookup_mails: list[str] = field(default_factory=list)
    lookup_teachers: list[str] = field(default_factory=list)
    # Students in scope taken from the last run's view (entryCSN unchanged) and read in full.
    read_reused: int = 0
    read_fetched: int = 0
    # Rows found unchanged without comparing them again (``plan.plan_sync``, ``quiet``).
    quiet_rows: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    def counts(self) -> dict[str, int]:
        out = {k: self.count(k) for k in KINDS}
        out["unchanged"] = self.unchanged
        return out

    def counts_by_school(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in self.changes:
            out.setdefault(c.school, {k: 0 for k in KINDS})[c.kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        if data.get("format_version") != 1:
            raise ValueError("not a mimsdir sync plan (format_version 1)")
        changes = [
            Change(**{**c, "attrs": tuple(AttrChange(**a) for a in c["attrs"])})
            for c in data["changes"]
        ]
        fields = {k: v for k, v in data.items() if k not in ("changes", "format_version")}
        fields["scope"] = tuple(fields.get("scope", ()))
        return cls(changes=changes, **fields)
