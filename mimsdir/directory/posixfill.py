"""Back-filling posixAccount on people who do not have it yet.

Staff never pass through the sync: they enter the directory from LDIF (`mimsdir directory
load`) or an ICT admin's tools. Students do pass through it (the sync back-fills those the
roster names), but loaded fixtures and a directory made before the posix attributes should
not have to wait for a roster. ``backfill`` gives each person without posixAccount the same
attributes the sync would (mimsdir/posix.py): a new uidNumber from this provider's pool, the
school group (students) or ``mims-staff`` (staff), home and shell from config. Idempotent:
whoever has posixAccount is left alone, so running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ldap

from mimsdir.config import Config, PosixConfig
from mimsdir.directory.idpool import UID, Group, Pools, ensure_groups, reserve
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import MimsError
from mimsdir.ldapio import Attrs, Conn, Op, Pipeline, first
from mimsdir.posix import POSIX_CLASS, STAFF_GROUP, home_directory, school_group

STAFF = "staff"
STUDENTS = "students"


@dataclass(frozen=True)
class Missing:
    """A person who lacks posixAccount, and what they will get (numbers still to reserve)."""

    dn: str
    kind: str      # STAFF or STUDENTS
    group: str
    home: str


@dataclass
class BackfillResult:
    staff: int = 0
    students: int = 0
    groups: dict[str, int] = field(default_factory=dict)    # the groups used: name -> gid
    failures: list[str] = field(default_factory=list)


def missing(dn: str, attrs: Attrs, kind: str, posix: PosixConfig) -> Missing:
    """What ``dn`` (a member of staff or a student, without posixAccount) will carry. Pure."""
    uid = first(attrs, "uid") or dn.split(",", 1)[0].split("=", 1)[1]
    school = first(attrs, "mimsSchoolCode")
    if kind == STAFF:
        return Missing(dn, kind, STAFF_GROUP, home_directory(posix.staff_home_template, uid,
                                                             school))
    return Missing(dn, kind, school_group(school or ""),
                   home_directory(posix.home_template, uid, school))


def find_missing(conn: Conn, dns: Dns, posix: PosixConfig) -> list[Missing]:
    out: list[Missing] = []
    for kind, base, cls in ((STAFF, dns.staff, "inetOrgPerson"),
                            (STUDENTS, dns.students, "mimsStudent")):
        flt = f"(&(objectClass={cls})(!(objectClass={POSIX_CLASS})))"
        for dn, a in conn.search_paged(base, ldap.SCOPE_SUBTREE, flt, ["uid", "mimsSchoolCode"],
                                       f"finding {kind} without posix attributes"):
            out.append(missing(dn, a, kind, posix))
    return out


def backfill(cfg: Config, connect: Callable[[], Conn], dry_run: bool = False,
             window: int = 32) -> BackfillResult:
    """Give everyone without posixAccount their posix attributes (see the module's text)."""
    dns = Dns(cfg.ldap.base_dn)
    pools = Pools(dns, cfg.posix.uid_min, cfg.posix.gid_min)
    result = BackfillResult()
    with connect() as conn:
        todo = find_missing(conn, dns, cfg.posix)
        if dry_run or not todo:
            result.staff = sum(1 for m in todo if m.kind == STAFF)
            result.students = len(todo) - result.staff
            return result
        names = sorted({m.group for m in todo})
        result.groups = ensure_groups(conn, pools, [
            Group(n, "all staff" if n == STAFF_GROUP else f"students of {n[len('school-'):]}")
            for n in names])
        numbers = reserve(conn, pools, UID, len(todo))

    done: dict[str, int] = {STAFF: 0, STUDENTS: 0}
    kinds = {m.dn: m.kind for m in todo}

    def finished(op: Op, err: MimsError | None) -> None:
        if err is None:
            done[kinds[op.key]] += 1
        else:
            result.failures.append(f"{op.key}: {err}")

    pipe = Pipeline(connect, window=window, retries=cfg.sync.retries, on_done=finished)
    try:
        for m, number in zip(todo, numbers, strict=True):
            pipe.submit(Op(m.dn, "modify", m.dn, [
                (ldap.MOD_ADD, "objectClass", [POSIX_CLASS.encode()]),
                (ldap.MOD_REPLACE, "uidNumber", [str(number).encode()]),
                (ldap.MOD_REPLACE, "gidNumber", [str(result.groups[m.group]).encode()]),
                (ldap.MOD_REPLACE, "homeDirectory", [m.home.encode()]),
                (ldap.MOD_REPLACE, "loginShell", [cfg.posix.shell.encode()]),
            ], tag="posix back-fill"))
        pipe.flush()
    finally:
        pipe.close()
    result.staff, result.students = done[STAFF], done[STUDENTS]
    return result
