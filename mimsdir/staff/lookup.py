"""Finding students (and what their password policy says) in the directory.

All reads go through ``mimsdir.ldapio.Conn``; results come back as ``StudentRecord``s. A student
is named on the command line by student ID (``uid``) or login ID (``mail``): staff read either
off a screen or a slip, and both are unique.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import ldap

from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, NotFound, UsageError
from mimsdir.ldapio import Conn, filter_eq, first
from mimsdir.staff.model import STUDENT_ATTRS, RowError, StudentRecord, parse_student


def ident_filter(ident: str) -> str:
    """``S123`` -> uid filter; ``x@y`` -> mail filter (mail is stored lower-case)."""
    text = ident.strip()
    if not text:
        raise UsageError("an empty student ID")
    attr_filter = filter_eq("mail", text.lower()) if "@" in text else filter_eq("uid", text)
    return f"(&(objectClass=mimsStudent){attr_filter})"


def find_student(conn: Conn, dns: Dns, ident: str) -> StudentRecord:
    """The one student with this student ID or login ID; NotFound (exit 1) otherwise."""
    res = conn.search(dns.students, ldap.SCOPE_ONELEVEL, ident_filter(ident), STUDENT_ATTRS,
                      f"looking up student {ident.strip()}")
    if not res:
        raise NotFound(f"no student with ID or login ID {ident.strip()!r}")
    if len(res) > 1:  # cannot happen with unique uid/mail; say so rather than pick one
        raise NotFound(f"{ident.strip()!r} matches {len(res)} students")
    dn, attrs = res[0]
    return parse_student(dn, attrs)


def resolve_students(conn: Conn, dns: Dns, idents: Iterable[str]
                     ) -> tuple[list[StudentRecord], list[RowError]]:
    """Look up each ID; unknown ones become row errors. The same student named twice (by ID
    and by login ID, say) is returned once."""
    found: list[StudentRecord] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for ident in idents:
        try:
            student = find_student(conn, dns, ident)
        except NotFound as exc:
            errors.append(RowError(ident.strip() or "''", str(exc)))
            continue
        if student.dn.lower() in seen:
            continue
        seen.add(student.dn.lower())
        found.append(student)
    return found, errors


def iter_students(conn: Conn, dns: Dns, filterstr: str, attrs: Iterable[str] = STUDENT_ATTRS,
                  doing: str = "listing students") -> Iterator[StudentRecord]:
    """Every student matching ``filterstr``, paged (the global size limit is 500)."""
    for dn, entry_attrs in conn.search_paged(dns.students, ldap.SCOPE_ONELEVEL, filterstr,
                                             list(attrs), doing):
        yield parse_student(dn, entry_attrs)


class Lockouts:
    """Each password policy's lockout duration, so 'locked now' can be told from a stale
    pwdAccountLockedTime. Read once per command (a handful of policy entries)."""

    def __init__(self, by_policy: dict[str, int], default_dn: str) -> None:
        self._by_policy = {k.lower(): v for k, v in by_policy.items()}
        self._default = default_dn.lower()

    @classmethod
    def read(cls, conn: Conn, dns: Dns) -> Lockouts:
        res = conn.search(dns.policies, ldap.SCOPE_ONELEVEL, "(objectClass=pwdPolicy)",
                          ["pwdLockoutDuration"], "reading the password policies")
        by_policy: dict[str, int] = {}
        for dn, attrs in res:
            try:
                by_policy[dn] = int(first(attrs, "pwdLockoutDuration") or 0)
            except ValueError:
                by_policy[dn] = 0
        return cls(by_policy, dns.policy("lower-primary"))

    def seconds(self, policy_dn: str | None) -> int | None:
        return self._by_policy.get((policy_dn or self._default).lower())


def teacher_label(conn: Conn, teacher_dn: str | None) -> str:
    """'Name <mail>' for a form teacher's DN; the DN itself if the entry cannot be read."""
    if not teacher_dn:
        return "-"
    try:
        attrs = conn.get(teacher_dn, ["cn", "mail"], "reading the form teacher")
    except (NotFound, AccessDenied):
        attrs = None
    if not attrs:
        return f"{teacher_dn} (not found)"
    name, mail = first(attrs, "cn") or teacher_dn, first(attrs, "mail")
    return f"{name} <{mail}>" if mail else name
