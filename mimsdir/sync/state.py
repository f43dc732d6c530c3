"""Reading what the directory holds for a sync: one paged search of the scope, then batched
look-ups of the roster's ids, mails and form teachers found outside it.

All I/O goes through ``mimsdir.ldapio.Conn``; only the attributes the planner compares are
fetched (never a password or an answer: the sync account cannot read them anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import ldap

from mimsdir.directory.idpool import read_groups
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Attrs, Conn, filter_any, first, values
from mimsdir.posix import POSIX_CLASS
from mimsdir.sync.model import DirStudent
from mimsdir.sync.plan import DirectoryState

ATTRS = ("uid", "mail", "givenName", "sn", "cn", "mimsSchoolCode", "mimsLevel", "mimsClass",
         "mimsFormTeacher", "mimsAccountStatus", "mimsLeftAt", "mimsCredentialPending",
         "mimsChallengeOrigin", "mimsQnaMustChange", "pwdPolicySubentry", "entryCSN",
         "objectClass", "uidNumber", "gidNumber", "homeDirectory", "loginShell")
BATCH = 100
# Above this many schools a filter of ORs is slower than reading every student once.
MAX_SCHOOLS_IN_FILTER = 50


def to_student(dn: str, a: Attrs) -> DirStudent:
    return DirStudent(
        uid=first(a, "uid") or dn.split(",", 1)[0].split("=", 1)[1],
        dn=dn,
        school=(first(a, "mimsSchoolCode") or "").upper(),
        level=(first(a, "mimsLevel") or "").upper(),
        status=(first(a, "mimsAccountStatus") or "").lower(),
        mail=first(a, "mail"),
        given_name=first(a, "givenName"),
        family_name=first(a, "sn"),
        cn=first(a, "cn"),
        class_name=first(a, "mimsClass"),
        form_teacher_dn=first(a, "mimsFormTeacher"),
        left_at=first(a, "mimsLeftAt"),
        credential_pending=first(a, "mimsCredentialPending") == "TRUE",
        qna_origin=first(a, "mimsChallengeOrigin"),
        qna_must_change=first(a, "mimsQnaMustChange") == "TRUE",
        policy_dn=first(a, "pwdPolicySubentry"),
        csn=first(a, "entryCSN"),
        posix=POSIX_CLASS.lower() in {v.lower() for v in values(a, "objectClass")},
        uid_number=first(a, "uidNumber"),
        gid_number=first(a, "gidNumber"),
        home=first(a, "homeDirectory"),
        login_shell=first(a, "loginShell"),
    )


def _chunks(items: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def read_state(conn: Conn, dns: Dns, scope: Sequence[str], roster_uids: Iterable[str],
               roster_mails: Iterable[str], teacher_mails: Iterable[str]) -> DirectoryState:
    students: dict[str, DirStudent] = {}
    if scope:
        if len(scope) <= MAX_SCHOOLS_IN_FILTER:
            flt = f"(&(objectClass=mimsStudent){filter_any('mimsSchoolCode', scope)})"
        else:
            flt = "(objectClass=mimsStudent)"
        wanted = {s.upper() for s in scope}
        for dn, a in conn.search_paged(dns.students, ldap.SCOPE_ONELEVEL, flt, ATTRS,
                                       "reading the students in scope"):
            s = to_student(dn, a)
            if s.school in wanted:
                students[s.uid.lower()] = s
    missing = sorted({u for u in roster_uids if u.lower() not in students})
    for chunk in _chunks(missing):
        for dn, a in conn.search(dns.students, ldap.SCOPE_ONELEVEL, filter_any("uid", chunk),
                                 ATTRS, "looking up roster students in other schools"):
            s = to_student(dn, a)
            students[s.uid.lower()] = s
    owners = {s.mail.lower(): s.uid for s in students.values() if s.mail}
    unknown = sorted({m.lower() for m in roster_mails} - set(owners))
    for chunk in _chunks(unknown):
        for dn, a in conn.search(dns.students, ldap.SCOPE_ONELEVEL, filter_any("mail", chunk),
                                 ["uid", "mail"], "looking up roster emails"):
            mail = first(a, "mail")
            if mail:
                owners[mail.lower()] = first(a, "uid") or dn
    teachers: dict[str, str] = {}
    for chunk in _chunks(sorted({t.lower() for t in teacher_mails})):
        for dn, a in conn.search(dns.staff, ldap.SCOPE_SUBTREE, filter_any("mail", chunk),
                                 ["mail"], "looking up form teachers"):
            mail = first(a, "mail")
            if mail:
                teachers[mail.lower()] = dn
    groups = {name: str(gid) for name, gid in read_groups(conn, dns).items()}
    return DirectoryState(students=students, mail_owners=owners, teachers=teachers,
                          groups=groups)


def fingerprint(state: DirectoryState) -> str:
    """Changes whenever any entry the plan was computed from changes (entryCSN)."""
    h = hashlib.sha256()
    for key in sorted(state.students):
        s = state.students[key]
        h.update(f"{key}\0{s.csn}\0{s.dn}\n".encode())
    for mail in sorted(state.mail_owners):
        h.update(f"m\0{mail}\0{state.mail_owners[mail].lower()}\n".encode())
    for mail in sorted(state.teachers):
        h.update(f"t\0{mail}\0{state.teachers[mail].lower()}\n".encode())
    for name in sorted(state.groups):
        h.update(f"g\0{name}\0{state.groups[name]}\n".encode())
    return h.hexdigest()
