"""Reading what the directory holds for a sync: one paged search of the scope, then batched
look-ups of the roster's ids, mails and form teachers found outside it.

All I/O goes through ``mimsdir.ldapio.Conn``; only the attributes the planner compares are
fetched (never a password or an answer: the sync account cannot read them anyway).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import ldap
import ldap.dn

from mimsdir.directory.idpool import read_groups
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Attrs, Conn, filter_any, first, values
from mimsdir.sync.model import DirStudent, Remembered
from mimsdir.sync.plan import DirectoryState
from mimsdir.sync.view import View, shared, unchanged

ATTRS = ("uid", "mail", "givenName", "sn", "cn", "mimsSchoolCode", "mimsLevel", "mimsClass",
         "mimsFormTeacher", "mimsAccountStatus", "mimsLeftAt", "mimsCredentialPending",
         "mimsChallengeOrigin", "mimsQnaMustChange", "pwdPolicySubentry", "entryCSN",
         # posixAccount is the only class that allows uidNumber (and requires it): its
         # presence says the class is there, without reading objectClass for every student.
         "uidNumber", "gidNumber", "homeDirectory", "loginShell")
BATCH = 100
# Above this many form teachers, the staff's emails are listed rather than looked up (and
# the roster's emails found among the students read rather than looked up).
LOOKUPS_MAX = 2000
# Above this many changed students (and a fifth of the scope), one paged read of the scope
# costs less than reading them a hundred at a time.
STALE_FLOOR = 2000
# Above this many schools a filter of ORs is slower than reading every student once.
MAX_SCHOOLS_IN_FILTER = 50


# The attribute names as slapd spells them -> lower-case: computed once per spelling, not
# once per attribute of every entry (28 million str.lower() calls at 500,000 students).
_LOWER: dict[str, str] = {}


def to_student(dn: str, attrs: Attrs) -> DirStudent:
    # Every value decoded once, keyed by the lower-case attribute name.
    low: dict[str, str] = {}
    for key, vs in attrs.items():
        if vs:
            name = _LOWER.get(key)
            if name is None:
                name = _LOWER[key] = key.lower()
            low[name] = vs[0].decode("utf-8", "replace")
    get = low.get
    uid_number = get("uidnumber")
    return DirStudent(
        uid=get("uid") or dn.split(",", 1)[0].split("=", 1)[1],
        dn=dn,
        school=sys.intern((get("mimsschoolcode") or "").upper()),
        level=sys.intern((get("mimslevel") or "").upper()),
        status=sys.intern((get("mimsaccountstatus") or "").lower()),
        mail=get("mail"),
        given_name=shared(get("givenname")),
        family_name=shared(get("sn")),
        cn=get("cn"),
        class_name=shared(get("mimsclass")),
        form_teacher_dn=shared(get("mimsformteacher")),
        left_at=get("mimsleftat"),
        credential_pending=get("mimscredentialpending") == "TRUE",
        qna_origin=shared(get("mimschallengeorigin")),
        qna_must_change=get("mimsqnamustchange") == "TRUE",
        policy_dn=shared(get("pwdpolicysubentry")),
        csn=get("entrycsn"),
        posix=uid_number is not None,
        uid_number=uid_number,
        gid_number=shared(get("gidnumber")),
        home=get("homedirectory"),
        login_shell=shared(get("loginshell")),
    )


def _chunks(items: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _scope_filter(scope: Sequence[str]) -> str:
    if len(scope) <= MAX_SCHOOLS_IN_FILTER:
        return f"(&(objectClass=mimsStudent){filter_any('mimsSchoolCode', scope)})"
    return EVERY_STUDENT


def _read_all(conn: Conn, dns: Dns, flt: str) -> Iterator[DirStudent]:
    for dn, a in conn.search_paged(dns.students, ldap.SCOPE_ONELEVEL, flt, ATTRS,
                                   "reading the students in scope"):
        yield to_student(dn, a)


#: The filter of a listing of every student (a scope of more than MAX_SCHOOLS_IN_FILTER).
EVERY_STUDENT = "(objectClass=mimsStudent)"


def _first(a: Attrs, name: str) -> str | None:
    vs = a.get(name) or next((v for k, v in a.items() if k.lower() == name.lower()), None)
    return vs[0].decode("utf-8", "replace") if vs else None


@dataclass
class Listing:
    """Every student a filter matched, compared with ``view`` as the pages came.

    Why compared as it comes, not kept as it came: the listing is taken in a thread while the
    roster is read, and half a million (DN, entryCSN) pairs held until the roster is done were
    the top of a national run's memory (about 120 MiB at 500,000, on top of the view and the
    roster). An entry the view holds unchanged is kept as the view's own object (8 bytes of a
    list); only the others keep their DN."""

    view: View | None
    kept: list[Remembered] = field(default_factory=list)  # DN and entryCSN as in the view
    stale: list[tuple[str, str]] = field(default_factory=list)  # (DN, school) of the others

    def add(self, dn: str, csn: str | None, school: str) -> None:
        known = unchanged(self.view, dn, csn) if self.view is not None else None
        if known is None:
            self.stale.append((dn, school))
        else:
            self.kept.append(known)


def ready(view: View) -> Future[View]:
    """A view already loaded, as ``list_csns`` takes it."""
    done: Future[View] = Future()
    done.set_result(view)
    return done


def list_csns(conn: Conn, dns: Dns, flt: str, view: Future[View]) -> Listing:
    """The students the filter matches, compared with ``view`` (``Listing``). Run ahead in a
    thread by ``sync/run.py`` for a national roster, before the view is loaded: the pages that
    come before it are held as they came (DN, entryCSN, school) and compared once it is."""
    backlog: list[tuple[str, str | None, str]] = []
    out = Listing(None)

    def catch_up() -> None:  # the view is there (or waited for): compare what was held
        out.view = view.result()
        for held in backlog:
            out.add(*held)
        backlog.clear()

    for dn, a in conn.search_paged(dns.students, ldap.SCOPE_ONELEVEL, flt,
                                   ["entryCSN", "mimsSchoolCode"],
                                   "listing the students in scope"):
        entry = (dn, _first(a, "entryCSN"),
                 sys.intern((_first(a, "mimsSchoolCode") or "").upper()))
        if out.view is None:
            if not view.done():
                backlog.append(entry)
                continue
            catch_up()
        out.add(*entry)
    if out.view is None:
        catch_up()
    return out


def _read_changed(conn: Conn, dns: Dns, flt: str, view: View, wanted: set[str],
                  listing: Listing | None = None
                  ) -> tuple[list[DirStudent | Remembered], int]:
    """The students of the ``wanted`` schools, from the view where their entryCSN has not
    moved: (students, how many were read in full). ``listing``: ``list_csns`` of ``flt``,
    if already taken (used only if compared with this very view). Students of other
    schools are not read at all."""
    if listing is None or listing.view is not view:
        listing = list_csns(conn, dns, flt, ready(view))
    kept: list[DirStudent | Remembered] = [s for s in listing.kept if s.school in wanted]
    stale = [dn for dn, school in listing.stale if school in wanted]
    del listing
    if len(stale) > max(STALE_FLOOR, (len(kept) + len(stale)) // 5):
        # Most of it changed (a new school year): one paged read beats many look-ups.
        everything: list[DirStudent | Remembered] = [
            s for s in _read_all(conn, dns, flt) if s.school in wanted]
        return everything, len(everything)
    uids = [ldap.dn.str2dn(dn)[0][0][1] for dn in stale]
    fetched = 0
    for chunk in _chunks(uids):
        for dn, a in conn.search(dns.students, ldap.SCOPE_ONELEVEL,
                                 f"(&{flt}{filter_any('uid', chunk)})", ATTRS,
                                 "reading the students that changed"):
            kept.append(to_student(dn, a))
            fetched += 1
    # One that was deleted between the listing and the read is simply gone: as a full read a
    # moment later would have found.
    return kept, fetched


def read_state(conn: Conn, dns: Dns, scope: Sequence[str], roster_uids: Iterable[str],
               roster_mails: Iterable[str], teacher_mails: Iterable[str],
               view: View | None = None, every_student: Listing | None = None
               ) -> DirectoryState:
    """What the planner needs. With ``view`` (mimsdir/sync/view.py), the students in scope
    whose entryCSN has not moved since the view was taken are not read again.
    ``every_student``: ``list_csns`` of EVERY_STUDENT taken already (used when the scope
    lists every student too)."""
    students: dict[str, DirStudent | Remembered] = {}
    quiet: dict[str, str] = {}
    reused = fetched = 0
    if scope:
        flt = _scope_filter(scope)
        wanted = {s.upper() for s in scope}
        if view:
            listing = every_student if flt == EVERY_STUDENT else None
            found, fetched = _read_changed(conn, dns, flt, view, wanted, listing)
            reused = len(found) - fetched
        else:
            found = [s for s in _read_all(conn, dns, flt) if s.school in wanted]
            fetched = len(found)
        for s in found:
            if s.school in wanted:
                key = s.uid.lower()
                students[key] = s
                # Only an entry taken from the view (its entryCSN unchanged) keeps its digest.
                if isinstance(s, Remembered) and s.digest is not None:
                    quiet[key] = s.digest
    missing = sorted({u for u in roster_uids if u.lower() not in students})
    for chunk in _chunks(missing):
        for dn, a in conn.search(dns.students, ldap.SCOPE_ONELEVEL, filter_any("uid", chunk),
                                 ATTRS, "looking up roster students in other schools"):
            s = to_student(dn, a)
            students[s.uid.lower()] = s
    # Only the roster's emails: a national directory's every mail would be a dictionary of
    # half a million entries, to answer for the few rows that are not quiet.
    # A few (a quiet night's changed rows) are looked up; many are found among the students
    # read, and only the rest looked up (each student's mail lower-cased: 0.2 s at 500,000).
    wanted_mails = {m.lower() for m in roster_mails}
    owners = {low: s.uid for s in students.values()
              if s.mail and (low := s.mail.lower()) in wanted_mails
              } if len(wanted_mails) > LOOKUPS_MAX else {}
    unknown = sorted(wanted_mails - set(owners))
    for chunk in _chunks(unknown):
        for dn, a in conn.search(dns.students, ldap.SCOPE_ONELEVEL, filter_any("mail", chunk),
                                 ["uid", "mail"], "looking up roster emails"):
            got = first(a, "mail")
            if got:
                owners[got.lower()] = first(a, "uid") or dn
    teachers = _teachers(conn, dns, {t.lower() for t in teacher_mails})
    groups = {name: str(gid) for name, gid in read_groups(conn, dns).items()}
    return DirectoryState(students=students, mail_owners=owners, teachers=teachers,
                          groups=groups, reused=reused, fetched=fetched, quiet=quiet)


def _teachers(conn: Conn, dns: Dns, wanted: set[str]) -> dict[str, str]:
    """Lower-case email -> DN of each wanted form teacher found under the staff. A national
    roster names some 17,000: one paged listing of the staff's emails costs a fraction of 170
    searches of a hundred (measured at 500,000 students: 0.1 s against 0.7 s)."""
    found: dict[str, str] = {}

    def keep(dn: str, a: Attrs) -> None:
        # Every value: a teacher with two addresses is found by either.
        for value in values(a, "mail"):
            low = value.lower()
            if low in wanted:
                found[low] = dn

    if len(wanted) > LOOKUPS_MAX:
        for dn, a in conn.search_paged(dns.staff, ldap.SCOPE_SUBTREE, "(mail=*)", ["mail"],
                                       "listing the staff's emails"):
            keep(dn, a)
        return found
    for chunk in _chunks(sorted(wanted)):
        for dn, a in conn.search(dns.staff, ldap.SCOPE_SUBTREE, filter_any("mail", chunk),
                                 ["mail"], "looking up form teachers"):
            keep(dn, a)
    return found


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
