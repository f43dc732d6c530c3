"""What the portal asks of the directory, in one place, over one connection per request.

The portal's own identity is the ``cn=sspr`` service account (least privilege: it reads
students, writes passwords, challenge answers and the SSPR back-off). A student's password
checks and changes use the student's own bind; a teacher's writes use proxied authorization
as the teacher (``Conn.act_as``), so slapd applies the teacher's ACLs.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import ldap

from mimsdir.config import Config
from mimsdir.connect import service_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, MimsError
from mimsdir.gtime import format_gtime
from mimsdir.ldapio import BindOutcome, Conn, filter_eq, first, values
from mimsdir.staff.credentials import after_reset_modlist, unlock_modlist
from mimsdir.staff.lookup import Lockouts
from mimsdir.staff.model import STUDENT_ATTRS, StudentRecord, parse_student

STAFF_ATTRS = ("uid", "mail", "cn", "mimsSchoolCode", "mimsClass")


@dataclass(frozen=True)
class Staff:
    dn: str
    uid: str
    name: str
    login_id: str


class ServicePool:
    """Connections already bound as the portal's service account, reused across requests.

    Why: the service account's password is an argon2 hash like everyone's, so binding anew
    for every request would double the cost of each sign-in (measured:
    benchmarks/portal_speed.py). A borrowed connection is checked with a WhoAmI round trip
    (about 0.1 ms) and replaced if the directory went away meanwhile.
    """

    def __init__(self, cfg: Config, size: int) -> None:
        self.cfg = cfg
        self._idle: queue.LifoQueue[Conn] = queue.LifoQueue(maxsize=size)

    def borrow(self) -> Conn:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return service_conn(self.cfg, "sspr")
            try:
                conn.whoami()
                return conn
            except MimsError:
                conn.close()

    def give_back(self, conn: Conn) -> None:
        conn.act_as(None)
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()


class PortalDirectory:
    """One instance per request (kept on ``flask.g``), given back at teardown."""

    def __init__(self, cfg: Config, observe: object = None,
                 pool: ServicePool | None = None) -> None:
        self.cfg = cfg
        self.dns = Dns(cfg.ldap.base_dn)
        self._svc: Conn | None = None
        self._observe = observe  # a callable(seconds) for the latency metric, or None
        self._pool = pool

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

    def healthy(self) -> bool:
        try:
            return bool(self.svc.whoami())
        except MimsError:
            return False

    # -- people ----------------------------------------------------------------------------
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
        with Conn(self.cfg.ldap.uri, timeout=self.cfg.ldap.timeout) as c:
            out = c.bind_ppolicy(dn, password)
        self._timed(started)
        return out

    def change_own_password(self, dn: str, old: str, new: str) -> None:
        """As the person: slapd checks the old password, quality and history, and clears the
        must-change flag itself."""
        with Conn(self.cfg.ldap.uri, timeout=self.cfg.ldap.timeout) as c:
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

    def record_sspr_failure(self, dn: str, failures: int, locked_until: datetime) -> None:
        self.svc.modify(dn, [
            (ldap.MOD_REPLACE, "mimsSsprFailures", [str(failures).encode()]),
            (ldap.MOD_REPLACE, "mimsSsprLockedUntil", [format_gtime(locked_until).encode()]),
        ], "recording a failed SSPR attempt")

    def set_asked(self, dn: str, value: str | None) -> None:
        self.svc.modify(dn, [(ldap.MOD_REPLACE, "mimsSsprAsked",
                              [value.encode()] if value else [])], "recording SSPR questions")

    def asked_value(self, dn: str) -> str | None:
        attrs = self.svc.get(dn, ["mimsSsprAsked"], "reading SSPR questions") or {}
        return first(attrs, "mimsSsprAsked")

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
