"""What the portal asks of the directory, in one place, over one connection per request.

The portal's own identity is the ``cn=sspr`` service account (least privilege: it reads
students, writes passwords, challenge answers and the SSPR back-off). A student's password
checks and changes use the student's own bind; a teacher's writes use proxied authorization
as the teacher (``Conn.act_as``), so slapd applies the teacher's ACLs.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ldap

from mimsdir.config import Config
from mimsdir.connect import network_conn, service_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, Conflict, MimsError, NotFound
from mimsdir.gtime import format_gtime, parse_gtime
from mimsdir.ldapio import BindOutcome, Conn, filter_eq, first, values
from mimsdir.portal.oidc.claims import Person as ClaimsPerson
from mimsdir.portal.sessions import Record, Subject
from mimsdir.portal.sspr import Asked, Attempts, Reservation
from mimsdir.session_records import end_sessions
from mimsdir.staff.credentials import after_reset_modlist, sspr_clear_modlist, unlock_modlist
from mimsdir.staff.lookup import Lockouts
from mimsdir.staff.model import STUDENT_ATTRS, StudentRecord, parse_student

STAFF_ATTRS = ("uid", "mail", "cn", "mimsSchoolCode", "mimsClass", "mimsAccountStatus",
               "pwdChangedTime")
PERSON_ATTRS = tuple(dict.fromkeys((*STUDENT_ATTRS, *STAFF_ATTRS)))
SESSION_ATTRS = ("mimsSessionSubject", "mimsSessionExpires", "mimsSessionSeen",
                 "mimsSessionData")
SSPR_ATTRS = ("mimsSsprFailures", "mimsSsprLockedUntil", "mimsSsprLastFailure",
              "mimsSsprAsked")
# How long the SSPR state of a login ID with no account is kept after its last write: longer
# than any back-off and its decay, short enough that a script inventing login IDs cannot
# fill the directory (the client budget bounds how many it can invent a day).
GHOST_STATE_DAYS = 2


@dataclass(frozen=True)
class Staff:
    dn: str
    uid: str
    name: str
    login_id: str
    active: bool = True
    pw_changed: str | None = None


@dataclass(frozen=True)
class Person:
    """Whoever a login ID names: a student, a member of staff, or nobody."""

    student: StudentRecord | None = None
    staff: Staff | None = None
    pw_changed: str | None = None

    @property
    def dn(self) -> str | None:
        return self.student.dn if self.student else self.staff.dn if self.staff else None

    @property
    def active(self) -> bool:
        if self.student is not None:
            return self.student.active
        return self.staff is not None and self.staff.active


class ServicePool:
    """Connections already bound as the portal's service account, reused across requests.

    Why: the service account's password is an argon2 hash like everyone's, so binding anew
    for every request would double the cost of each sign-in (measured:
    benchmarks/portal_speed.py). A connection given back less than ``FRESH`` seconds ago
    that the directory has not closed (``Conn.looks_alive``: no round trip) is used as it
    is; one idle for longer is checked with a WhoAmI round trip first (a directory host
    that vanished without closing it does not answer), and replaced if the directory went
    away meanwhile.
    """

    FRESH = 5.0

    def __init__(self, cfg: Config, size: int) -> None:
        self.cfg = cfg
        self._idle: queue.LifoQueue[tuple[Conn, float]] = queue.LifoQueue(maxsize=size)

    def borrow(self) -> Conn:
        while True:
            try:
                conn, returned = self._idle.get_nowait()
            except queue.Empty:
                return service_conn(self.cfg, "sspr")
            if not conn.looks_alive():
                conn.close()
                continue
            if time.monotonic() - returned < self.FRESH:
                return conn
            try:
                conn.whoami()
                return conn
            except MimsError:
                conn.close()

    def give_back(self, conn: Conn) -> None:
        conn.act_as(None)
        try:
            self._idle.put_nowait((conn, time.monotonic()))
        except queue.Full:
            conn.close()


class BindPool:
    """Connections that are only ever used for a person's sign-in bind, reused across
    sign-ins.

    Why: a new StartTLS connection a sign-in cost the portal 1.5 ms of CPU and slapd its half
    of the handshake (docs/performance.md, "Portal sign-ins"); a bind on a connection already
    bound replaces its identity, so a new connection gains nothing. Nothing but a bind is
    ever sent on these connections (``PortalDirectory.sign_in``), so the identity one is left
    with is never used. One the directory closed meanwhile (slapd restarted) is seen to be
    closed before it is used (``Conn.looks_alive``, no round trip) and replaced; a bind is
    never retried, so no password is checked twice.
    """

    def __init__(self, cfg: Config, size: int) -> None:
        self.cfg = cfg
        self._idle: queue.LifoQueue[Conn] = queue.LifoQueue(maxsize=size)

    def bind(self, dn: str, password: str) -> BindOutcome:
        conn = self._borrow()
        try:
            out = conn.bind_ppolicy(dn, password)
        except BaseException:
            conn.close()
            raise
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()
        return out

    def _borrow(self) -> Conn:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return network_conn(self.cfg)
            if conn.looks_alive():
                return conn
            conn.close()


class PortalDirectory:
    """One instance per request (kept on ``flask.g``), given back at teardown."""

    def __init__(self, cfg: Config, observe: object = None,
                 pool: ServicePool | None = None, binds: BindPool | None = None) -> None:
        self.cfg = cfg
        self.dns = Dns(cfg.ldap.base_dn)
        self._svc: Conn | None = None
        self._observe = observe  # a callable(seconds) for the latency metric, or None
        self._pool = pool
        self._binds = binds

    # -- plumbing --------------------------------------------------------------------------
    @property
    def svc(self) -> Conn:
        if self._svc is None:
            started = time.perf_counter()
            self._svc = self._pool.borrow() if self._pool else service_conn(self.cfg, "sspr")
            self._timed(started)
        return self._svc

    def _timed(self, started: float) -> None:
        if callable(self._observe):
            self._observe(time.perf_counter() - started)

    def close(self) -> None:
        if self._svc is not None:
            if self._pool is not None:
                self._pool.give_back(self._svc)
            else:
                self._svc.close()
            self._svc = None

    @property
    def decoy_dn(self) -> str:
        """Bound to when a login ID has no usable account: a real argon2 check and a real
        failure record, like a wrong password of a real student (see schema/acl.in)."""
        return self.dns.service("decoy")

    def healthy(self) -> bool:
        try:
            return bool(self.svc.whoami())
        except MimsError:
            return False

    # -- people ----------------------------------------------------------------------------
    def find_person(self, login_id: str) -> Person:
        """One search whoever the login ID names (student, staff or nobody): the same
        directory work on every path, so the time taken does not say which."""
        started = time.perf_counter()
        res = self.svc.search(self.dns.base, ldap.SCOPE_SUBTREE, filter_eq("mail", login_id),
                              list(PERSON_ATTRS), "looking up a login ID")
        self._timed(started)
        if len(res) != 1:
            return Person()
        dn, a = res[0]
        parent = dn.split(",", 1)[1].lower() if "," in dn else ""
        pw_changed = first(a, "pwdChangedTime")
        if parent == self.dns.students.lower():
            return Person(student=parse_student(dn, a), pw_changed=pw_changed)
        if parent.endswith(self.dns.staff.lower()):
            status = (first(a, "mimsAccountStatus") or "active").lower()
            return Person(staff=Staff(dn, first(a, "uid") or "", first(a, "cn") or "",
                                      first(a, "mail") or "", status == "active", pw_changed),
                          pw_changed=pw_changed)
        return Person()

    def person(self, dn: str) -> ClaimsPerson | None:
        """A person as an application may see them, read fresh (status included)."""
        attrs = self.svc.get(dn, ["entryUUID", "mail", "cn", "givenName", "sn",
                                  "mimsSchoolCode", "mimsLevel", "mimsClass",
                                  "mimsAccountStatus"], "reading a person for an application")
        if not attrs or not first(attrs, "entryUUID"):
            return None
        student = dn.lower().endswith("," + self.dns.students.lower())
        role = "student" if student else "teacher" if first(attrs, "mimsClass") else "staff"
        status = (first(attrs, "mimsAccountStatus") or ("" if student else "active")).lower()
        return ClaimsPerson(
            dn=dn, uuid=first(attrs, "entryUUID") or "", role=role,
            email=first(attrs, "mail") or "", name=first(attrs, "cn") or "",
            given_name=first(attrs, "givenName") or "", family_name=first(attrs, "sn") or "",
            school=first(attrs, "mimsSchoolCode"),
            level=first(attrs, "mimsLevel") if student else None,
            class_name=first(attrs, "mimsClass"), active=status == "active")

    def subject(self, dn: str) -> Subject | None:
        """Is this person still active, and when did their password last change?"""
        attrs = self.svc.get(dn, ["mimsAccountStatus", "pwdChangedTime"],
                             "checking a signed-in person")
        if attrs is None:
            return None
        status = (first(attrs, "mimsAccountStatus") or "active").lower()
        return Subject(active=status == "active", pw_changed=first(attrs, "pwdChangedTime"))

    def find_student(self, login_id: str) -> StudentRecord | None:
        started = time.perf_counter()
        res = self.svc.search(self.dns.students, ldap.SCOPE_ONELEVEL,
                              f"(&(objectClass=mimsStudent){filter_eq('mail', login_id)})",
                              list(STUDENT_ATTRS), "looking up a student by login ID")
        self._timed(started)
        return parse_student(*res[0]) if len(res) == 1 else None

    def reload(self, dn: str) -> StudentRecord | None:
        attrs = self.svc.get(dn, list(STUDENT_ATTRS), "reading a student")
        return parse_student(dn, attrs) if attrs else None

    def find_staff(self, login_id: str) -> Staff | None:
        res = self.svc.search(self.dns.staff, ldap.SCOPE_SUBTREE, filter_eq("mail", login_id),
                              list(STAFF_ATTRS), "looking up staff by login ID")
        if len(res) != 1:
            return None
        dn, a = res[0]
        return Staff(dn, first(a, "uid") or "", first(a, "cn") or "", first(a, "mail") or "")

    # -- the person's own bind -------------------------------------------------------------
    def sign_in(self, dn: str, password: str) -> BindOutcome:
        started = time.perf_counter()
        if self._binds is not None:
            out = self._binds.bind(dn, password)
        else:
            with network_conn(self.cfg) as c:
                out = c.bind_ppolicy(dn, password)
        self._timed(started)
        return out

    def change_own_password(self, dn: str, old: str, new: str) -> None:
        """As the person: slapd checks the old password, quality and history, and clears the
        must-change flag itself."""
        with network_conn(self.cfg) as c:
            out = c.bind_ppolicy(dn, old)
            if not out.ok:
                raise AccessDenied("the current password is not right")
            c.set_password(dn, new, old=old, doing="changing a password")

    # -- SSPR --------------------------------------------------------------------------------
    def sspr_reset(self, dn: str, new: str) -> None:
        """A student proved who they are with their answers: set the new password (slapd
        hashes it and checks the policy), then clear must-change, lockout and back-off."""
        self.svc.set_password(dn, new, doing="setting a password after SSPR")
        self.svc.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", []), *unlock_modlist()],
                        "clearing must-change and lockouts after SSPR")

    def ghost_dn(self, key: str) -> str:
        """The SSPR state entry of a login ID with no usable account (``key``: its keyed
        hash, see ``sspr.login_key``)."""
        return f"cn=sspr-{key},{self.dns.sessions}"

    def sspr_state(self, dn: str) -> Attempts:
        """The back-off state of a student, or of a login ID's state entry (absent: none)."""
        attrs = self.svc.get(dn, list(SSPR_ATTRS), "reading the SSPR back-off") or {}
        raw = first(attrs, "mimsSsprFailures")
        return Attempts(
            failures=int(raw) if raw and raw.lstrip("-").isdigit() else 0,
            locked_until=parse_gtime(first(attrs, "mimsSsprLockedUntil")),
            last_failure=parse_gtime(first(attrs, "mimsSsprLastFailure")),
            asked=Asked.decode(first(attrs, "mimsSsprAsked")),
        )

    def _sspr_write(self, dn: str, ghost: bool, mods: list[tuple[int, str, list[bytes]]],
                    doing: str, assertion: str | None = None) -> None:
        """Write a student's SSPR attributes, or a login ID's state entry (made on its first
        write, and kept ``GHOST_STATE_DAYS`` after its last)."""
        if not ghost:
            self.svc.modify(dn, mods, doing, assertion=assertion)
            return
        expires = format_gtime(now() + timedelta(days=GHOST_STATE_DAYS)).encode()
        mods = [*mods, (ldap.MOD_REPLACE, "mimsSessionExpires", [expires])]
        try:
            self.svc.modify(dn, mods, doing, assertion=assertion)
        except NotFound:
            if assertion and not assertion.startswith("(!("):
                raise Conflict(f"{doing}: the state went away meanwhile") from None
            attrs = {"objectClass": [b"mimsSession"], "cn": [dn.split(",", 1)[0][3:].encode()]}
            for _op, name, vals in mods:
                if vals:
                    attrs[name] = vals
            self.svc.add(dn, attrs, doing)

    def sspr_reserve(self, dn: str, ghost: bool, r: Reservation) -> None:
        """Count an attempt before its answers are checked. Raises ``Conflict`` when
        another attempt counted first (the count is asserted, so none is lost)."""
        assertion = (f"(mimsSsprFailures={r.expect})" if r.expect is not None
                     else "(!(mimsSsprFailures=*))")
        self._sspr_write(dn, ghost, [
            (ldap.MOD_REPLACE, "mimsSsprFailures", [str(r.failures).encode()]),
            (ldap.MOD_REPLACE, "mimsSsprLockedUntil", [format_gtime(r.locked_until).encode()]),
            (ldap.MOD_REPLACE, "mimsSsprLastFailure", [format_gtime(r.at).encode()]),
        ], "counting an SSPR attempt", assertion=assertion)

    def sspr_passed(self, dn: str) -> None:
        """The answers were right: the attempt was no failure after all. The questions stay
        until the password is reset."""
        self.svc.modify(dn, [m for m in sspr_clear_modlist() if m[1] != "mimsSsprAsked"],
                        "clearing the SSPR back-off")

    def set_asked(self, dn: str, ghost: bool, asked: Asked) -> None:
        self._sspr_write(dn, ghost, [(ldap.MOD_REPLACE, "mimsSsprAsked",
                                      [asked.encode().encode()])], "recording SSPR questions")

    # -- sessions ----------------------------------------------------------------------------
    def _session_dn(self, key: str) -> str:
        return f"cn={key},{self.dns.sessions}"

    def session_load(self, key: str) -> Record | None:
        attrs = self.svc.get(self._session_dn(key), list(SESSION_ATTRS), "reading a session")
        if attrs is None:
            return None
        expires = parse_gtime(first(attrs, "mimsSessionExpires"))
        seen = parse_gtime(first(attrs, "mimsSessionSeen")) or expires
        if expires is None or seen is None:
            return None
        text = first(attrs, "mimsSessionData") or ""
        return Record(key=key, subject=first(attrs, "mimsSessionSubject"), expires=expires,
                      seen=seen, data=Record.decode_data(text), stored=True, text=text)

    def session_save(self, rec: Record) -> None:
        text = rec.encode_data()
        values_ = {
            "mimsSessionExpires": [format_gtime(rec.expires).encode()],
            "mimsSessionSeen": [format_gtime(rec.seen).encode()],
            "mimsSessionData": [text.encode()],
        }
        if rec.stored:
            self.svc.modify(self._session_dn(rec.key),
                            [(ldap.MOD_REPLACE, k, v) for k, v in values_.items()],
                            "saving a session")
        else:
            attrs = {"objectClass": [b"mimsSession"], "cn": [rec.key.encode()], **values_}
            if rec.subject:
                attrs["mimsSessionSubject"] = [rec.subject.encode()]
            self.svc.add(self._session_dn(rec.key), attrs, "starting a session")
            rec.stored = True
        rec.dirty = False
        rec.text = text

    def session_claim(self, rec: Record | None, name: str) -> bool:
        """Take ``name`` out of the stored session, once: the write asserts that the stored
        data is still what this request read, so of two requests racing with one session
        (a copied cookie, a second tab) only one gets it."""
        if rec is None or not rec.stored or name not in rec.data:
            return False
        data = {k: v for k, v in rec.data.items() if k != name}
        text = Record(rec.key, rec.subject, rec.expires, rec.seen, data).encode_data()
        try:
            self.svc.modify(self._session_dn(rec.key),
                            [(ldap.MOD_REPLACE, "mimsSessionData", [text.encode()])],
                            "using up a session's state",
                            assertion=filter_eq("mimsSessionData", rec.text))
        except (Conflict, NotFound):
            return False
        rec.data, rec.text, rec.dirty = data, text, False
        return True

    def session_touch(self, rec: Record) -> None:
        self.svc.modify(self._session_dn(rec.key), [
            (ldap.MOD_REPLACE, "mimsSessionSeen", [format_gtime(rec.seen).encode()])],
            "noting a session's activity")

    def session_delete(self, key: str) -> None:
        with contextlib.suppress(NotFound):
            self.svc.delete(self._session_dn(key), "ending a session")

    def end_sessions(self, subject_dn: str, keep: str | None = None) -> int:
        """End every session of a person (but ``keep``): on every instance at once."""
        return end_sessions(self.svc, self.dns.sessions, subject_dn, keep)

    def purge_sessions(self, at: datetime) -> int:
        """Delete sessions and SSPR states past their end (any instance may do it)."""
        res = self.svc.search(self.dns.sessions, ldap.SCOPE_ONELEVEL,
                              f"(&(objectClass=mimsSession)"
                              f"(mimsSessionExpires<={format_gtime(at)}))", ["1.1"],
                              "finding ended sessions")
        for dn, _attrs in res:
            with contextlib.suppress(NotFound):
                self.svc.delete(dn, "deleting an ended session")
        return len(res)

    def challenge_values(self, dn: str) -> list[str]:
        attrs = self.svc.get(dn, ["mimsChallenge"], "reading challenge answers") or {}
        return values(attrs, "mimsChallenge")

    def set_challenges(self, dn: str, encoded: list[str]) -> None:
        self.svc.modify(dn, [
            (ldap.MOD_REPLACE, "mimsChallenge", [v.encode("ascii") for v in encoded]),
            (ldap.MOD_REPLACE, "mimsChallengeOrigin", [b"student"]),
            (ldap.MOD_REPLACE, "mimsQnaMustChange", []),
            (ldap.MOD_REPLACE, "mimsSsprAsked", []),
        ], "saving new challenge answers")

    # -- teacher view (as the teacher) -------------------------------------------------------
    def my_class(self, teacher_dn: str) -> Iterator[StudentRecord]:
        c = self.svc
        c.act_as(teacher_dn)
        try:
            flt = f"(&(objectClass=mimsStudent){filter_eq('mimsFormTeacher', teacher_dn)})"
            for dn, a in c.search_paged(self.dns.students, ldap.SCOPE_ONELEVEL, flt,
                                        list(STUDENT_ATTRS), "listing the teacher's class"):
                yield parse_student(dn, a)
        finally:
            c.act_as(None)

    def lockouts(self) -> Lockouts:
        return Lockouts.read(self.svc, self.dns)

    def teacher_reset(self, teacher_dn: str, student_dn: str, password: str) -> None:
        c = self.svc
        c.act_as(teacher_dn)
        try:
            c.set_password(student_dn, password, doing="resetting a student's password")
            c.modify(student_dn, after_reset_modlist(), "setting must-change and unlocking")
        finally:
            c.act_as(None)

    def teacher_unlock(self, teacher_dn: str, student_dn: str) -> None:
        c = self.svc
        c.act_as(teacher_dn)
        try:
            c.modify(student_dn, unlock_modlist(), "unlocking a student")
        finally:
            c.act_as(None)


def now() -> datetime:
    return datetime.now(UTC)
