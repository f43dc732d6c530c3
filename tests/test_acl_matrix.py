"""Access control as a matrix (design-notes §4): every role against every key operation.

Each cell binds as the role and really tries the operation against slapd; "allowed" means the
operation took effect (or the value came back), "refused" that it did not. A cell that is
neither (a server error) fails the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, MimsError, NotFound, PolicyViolation
from mimsdir.ldapio import PP_MUST_SUPPLY_OLD, Conn, first
from tests.conftest import Factory, Person, conn_as, service_conn

_added = itertools.count()
ROLES = ("anonymous", "self", "other_student", "device", "sspr", "sync", "teacher",
         "other_teacher", "admin", "portal_as_teacher")
# The portal acting as the signed-in form teacher (proxied authorization) has exactly the
# teacher's rights, no more: every row expects the same of both.
AS_TEACHER = "portal_as_teacher"


@dataclass
class World:
    make: Factory
    dns: Dns
    target: Person
    teacher: Person
    other_teacher: Person
    other_student: Person
    admin: Person
    app_dn: str = ""
    group_dn: str = ""


def _read(c: Conn, dn: str, attr: str, filterstr: str = "(objectClass=*)") -> bool:
    """Read one attribute of one entry. People are matched by uid: the device may not see
    objectClass, so an (objectClass=*) filter would hide an entry it may otherwise read."""
    if dn.startswith("uid="):
        filterstr = f"({dn.split(',', 1)[0]})"
    try:
        res = c.search(dn, ldap.SCOPE_BASE, filterstr, [attr], f"reading {attr}")
    except (AccessDenied, NotFound):
        return False
    return bool(res) and first(res[0][1], attr) is not None


def _write(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except AccessDenied:
        return False
    except NotFound:
        # A refused search base or write target can look like "no such object".
        return False
    except PolicyViolation as exc:
        # A non-resetter is treated like a user changing their own password: refused for
        # not giving the old one (ppolicy's pwdSafeModify).
        if getattr(exc, "ppolicy_error", None) == PP_MUST_SUPPLY_OLD:
            return False
        raise
    return True


def op_search_by_mail(c: Conn, w: World) -> bool:
    try:
        res = c.search(w.dns.students, ldap.SCOPE_SUBTREE, f"(mail={w.target.mail})", ["uid"],
                       "searching by mail")
    except (AccessDenied, NotFound):
        return False
    return any(dn.lower() == w.target.dn.lower() for dn, _ in res)


def op_search_posix(c: Conn, w: World) -> bool:
    """SSSD's user look-up: objectClass and uidNumber in the filter (the device must be able
    to test both, or no filter with them matches anything)."""
    flt = (f"(&(mail={w.target.mail.upper()})(objectclass=posixAccount)"
           f"(&(uidNumber=*)(!(uidNumber=0))))")
    try:
        res = c.search(w.dns.base, ldap.SCOPE_SUBTREE, flt, ["uidNumber"], "NSS look-up")
    except (AccessDenied, NotFound):
        return False
    return any(dn.lower() == w.target.dn.lower() and first(a, "uidNumber") for dn, a in res)


# The device (docs/devices.md): exactly what nslcd and SSSD read to sign a student in
# (object classes, uid, mail, cn, status, the posixAccount attributes, the school group) and
# nothing else: no level, class, form teacher, answers, lockout state, id pools, admins.
OPS: dict[str, tuple[Callable[[Conn, World], bool], set[str]]] = {
    "search_by_mail": (op_search_by_mail,
                       {"self", "device", "sspr", "sync", "teacher", "admin"}),
    "search_posix_account": (op_search_posix,
                             {"self", "device", "sspr", "sync", "teacher", "admin"}),
    "read_posix": (lambda c, w: all(_read(c, w.target.dn, a) for a in (
        "uidNumber", "gidNumber", "homeDirectory", "loginShell")),
        {"self", "device", "sspr", "sync", "teacher", "admin"}),
    "read_class": (lambda c, w: _read(c, w.target.dn, "mimsClass"),
                   {"self", "sspr", "sync", "teacher", "admin"}),
    "read_form_teacher": (lambda c, w: _read(c, w.target.dn, "mimsFormTeacher"),
                          {"self", "sspr", "sync", "teacher", "admin"}),
    "read_lockout_state": (lambda c, w: _read_failures(c, w),
                           {"self", "sspr", "sync", "teacher", "admin"}),
    "read_sspr_backoff": (lambda c, w: _read(c, w.target.dn, "mimsSsprFailures"),
                          {"self", "sspr", "sync", "teacher", "admin"}),
    "write_posix": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE, "loginShell",
                                                            [b"/bin/sh"])], "w")),
        {"sync", "admin"}),
    "read_school_group": (lambda c, w: _read(c, w.group_dn, "gidNumber"),
                          {"device", "sync", "admin"}),
    "add_school_group": (lambda c, w: _try_add_group(c, w), {"sync", "admin"}),
    "read_id_pool": (lambda c, w: _read(c, w.dns.idpool("probe"), "mimsIdNext"),
                     {"sync", "admin"}),
    "read_staff_posix": (lambda c, w: _read(c, w.teacher.dn, "uidNumber"),
                         {"device", "sspr", "sync", "teacher", "other_teacher", "admin"}),
    "read_staff_class": (lambda c, w: _read(c, w.teacher.dn, "mimsClass"),
                         {"sspr", "sync", "teacher", "other_teacher", "admin"}),
    "read_cn": (lambda c, w: _read(c, w.target.dn, "cn"),
                {"self", "device", "sspr", "sync", "teacher", "admin"}),
    "read_status": (lambda c, w: _read(c, w.target.dn, "mimsAccountStatus"),
                    {"self", "device", "sspr", "sync", "teacher", "admin"}),
    "read_level": (lambda c, w: _read(c, w.target.dn, "mimsLevel"),
                   {"self", "sspr", "sync", "teacher", "admin"}),
    "read_challenge": (lambda c, w: _read(c, w.target.dn, "mimsChallenge"), {"sspr", "admin"}),
    "read_password_hash": (lambda c, w: _read(c, w.target.dn, "userPassword"), set()),
    # A new password each time: slapd checks quality and history before the ACL refuses.
    # "self": a signed-in student may change without repeating the old password (student
    # policies have pwdSafeModify FALSE, so that the SSPR portal's writes are checked).
    "reset_password": (
        lambda c, w: _write(lambda: c.set_password(w.target.dn,
                                                   f"Reset-by-someone-{next(_added)}x")),
        {"self", "sspr", "sync", "teacher", "admin"}),
    "write_challenge": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE, "mimsChallenge",
                                                            [b"q1$x"])], "w")),
        {"sspr", "admin"}),
    "write_level": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE, "mimsLevel",
                                                            [b"P5"])], "w")),
        {"sync", "admin"}),
    "write_qna_must_change": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE,
                                                            "mimsQnaMustChange", [b"TRUE"])],
                                             "w")),
        {"sspr", "sync", "admin"}),
    "unlock": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE,
                                                            "pwdAccountLockedTime", [])], "w")),
        {"sspr", "teacher", "admin"}),
    "set_must_change": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE, "pwdReset",
                                                            [b"TRUE"])], "w")),
        {"sspr", "sync", "teacher", "admin"}),
    "clear_sspr_backoff": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE,
                                                            "mimsSsprFailures", [b"0"])], "w")),
        {"sspr", "teacher", "admin"}),
    "add_student": (lambda c, w: _try_add(c, w), {"sync", "admin"}),
    "delete_active_student": (lambda c, w: _try_delete(c, w, "active"), {"admin"}),
    "delete_student_who_left": (lambda c, w: _try_delete(c, w, "left"), {"sync", "admin"}),
    "write_staff": (
        lambda c, w: _write(lambda: c.modify(w.teacher.dn, [(ldap.MOD_REPLACE, "mimsClass",
                                                             [b"4A"])], "w")),
        {"admin"}),
    "read_staff_mail": (lambda c, w: _read(c, w.teacher.dn, "mail"),
                        {"device", "sspr", "sync", "teacher", "other_teacher", "admin"}),
    # A teacher's entryUUID is their subject at the applications the portal signs them in to.
    # Not the devices': they read what NSS needs and nothing else (docs/devices.md).
    "read_staff_entry_uuid": (lambda c, w: _read(c, w.teacher.dn, "entryUUID"),
                              {"sspr", "sync", "teacher", "other_teacher", "admin"}),
    # A student's form teacher is roster data: the sync and ICT set it, never a teacher.
    "write_form_teacher": (
        lambda c, w: _write(lambda: c.modify(w.target.dn, [(ldap.MOD_REPLACE,
                                                            "mimsFormTeacher",
                                                            [w.other_teacher.dn.encode()])],
                                             "w")),
        {"sync", "admin"}),
    # A teacher's password, set without the old one: only ICT. The teacher themself (and the
    # portal acting as them) must give the old one (the staff policy's pwdSafeModify).
    "set_teacher_password": (
        lambda c, w: _write(lambda: c.set_password(w.teacher.dn,
                                                   f"Staff-reset-{next(_added)}x-river")),
        {"admin"}),
    # Who the ICT admins are: the portal may only test it in its authzTo filter.
    "read_admin_group": (lambda c, w: _read(c, w.dns.admins, "member"), {"admin"}),
    # The decoy: anyone may try a password on it; nobody may read or change it.
    "read_decoy": (lambda c, w: _read(c, w.dns.service("decoy"), "cn"), set()),
    "write_decoy": (
        lambda c, w: _write(lambda: c.modify(w.dns.service("decoy"), [(
            ldap.MOD_REPLACE, "description", [b"x"])], "w")),
        set()),
    # Registered applications: the portal reads them (the secret's hash included, to check
    # a client's secret); ICT admins register and change them; nobody else sees them.
    "read_app": (lambda c, w: _read(c, w.app_dn, "mimsAppRedirectUri"), {"sspr", "admin"}),
    "read_app_secret_hash": (lambda c, w: _read(c, w.app_dn, "mimsAppSecret"),
                             {"sspr", "admin"}),
    "list_apps": (lambda c, w: _list_apps(c, w), {"sspr", "admin"}),
    "write_app": (
        lambda c, w: _write(lambda: c.modify(w.app_dn, [(ldap.MOD_REPLACE, "mimsAppRedirectUri",
                                                         [b"https://evil.example/cb"])], "w")),
        {"admin"}),
    "add_app": (lambda c, w: _try_add_app(c, w), {"admin"}),
    "delete_app": (lambda c, w: _try_delete_app(c, w), {"admin"}),
    "read_config": (lambda c, w: _read(c, "cn=config", "cn"), set()),
    "read_accesslog": (lambda c, w: _read(c, "cn=accesslog", "cn"), set()),
    "read_service_password": (
        lambda c, w: _read(c, w.dns.service("device"), "userPassword"), set()),
}


def _try_add(c: Conn, w: World) -> bool:
    uid = f"{w.target.uid}n{next(_added)}"
    dn = w.dns.student(uid)
    ok = _write(lambda: c.add(dn, {
        "objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [uid.encode()],
        "cn": [b"New"], "sn": [b"New"], "mimsSchoolCode": [w.make.school.encode()],
        "mimsLevel": [b"P3"], "mimsAccountStatus": [b"active"],
    }, "adding"))
    if ok:
        w.make.created.append(dn)
    return ok


def _app_attrs(client_id: str) -> dict[str, list[bytes]]:
    return {"objectClass": [b"mimsApp"], "cn": [client_id.encode()],
            "mimsAppName": [b"Maths quest"], "mimsAppProtocol": [b"oidc"],
            "mimsAppRedirectUri": [b"https://maths.example/cb"],
            "mimsAppSecret": [b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"]}


def _add_app(w: World) -> str:
    dn = w.dns.app(f"app-acl{next(_added)}x{w.make.school}")
    w.make.root.add(dn, _app_attrs(dn.split(",", 1)[0][3:]), "adding a test app")
    w.make.created.append(dn)
    return dn


def _list_apps(c: Conn, w: World) -> bool:
    try:
        res = c.search(w.dns.apps, ldap.SCOPE_ONELEVEL, "(objectClass=mimsApp)", ["cn"],
                       "listing apps")
    except (AccessDenied, NotFound):
        return False
    return any(dn.lower() == w.app_dn.lower() for dn, _ in res)


def _try_add_app(c: Conn, w: World) -> bool:
    client_id = f"app-new{next(_added)}x{w.make.school}"
    dn = w.dns.app(client_id)
    ok = _write(lambda: c.add(dn, _app_attrs(client_id), "adding an app"))
    if ok:
        w.make.created.append(dn)
    return ok


def _try_delete_app(c: Conn, w: World) -> bool:
    victim = _add_app(w)
    return _write(lambda: c.delete(victim, "deleting an app"))


def _read_failures(c: Conn, w: World) -> bool:
    """A wrong password first (a right one, "self" signing in, clears the failures)."""
    with network_conn(w.make.cfg) as other:  # TLS: a clear bind is refused, uncounted
        other.bind_ppolicy(w.target.dn, "not-the-password")
    return _read(c, w.target.dn, "pwdFailureTime")


def _try_add_group(c: Conn, w: World) -> bool:
    name = f"acl-test-{next(_added)}-{w.make.school.lower()}"
    dn = w.dns.posix_group(name)
    ok = _write(lambda: c.add(dn, {"objectClass": [b"posixGroup"], "cn": [name.encode()],
                                   "gidNumber": [str(3_000_000 + next(_added)).encode()]},
                              "adding a group"))
    if ok:
        w.make.created.append(dn)
    return ok


def _try_delete(c: Conn, w: World, status: str) -> bool:
    victim = w.make.student(level="P3", password=None, status=status)
    return _write(lambda: c.delete(victim.dn, "deleting"))


def _connect(role: str, w: World, cfg) -> Conn:  # type: ignore[no-untyped-def]
    if role == "anonymous":
        return network_conn(cfg)
    if role == AS_TEACHER:
        c = service_conn(cfg, "sspr")
        c.act_as(w.teacher.dn)
        return c
    if role in ("device", "sspr", "sync"):
        return service_conn(cfg, role)
    who = {"self": w.target, "other_student": w.other_student, "teacher": w.teacher,
           "other_teacher": w.other_teacher, "admin": w.admin}[role]
    return conn_as(cfg, who.dn, who.password)


@pytest.fixture
def world(make: Factory, dns: Dns) -> World:
    teacher = make.teacher("4A", posix=True)
    other_teacher = make.teacher("4B")
    target = make.student(level="P4", class_name="4A", teacher=teacher, posix=True,
                          mimsChallenge=[b"q1$secret-hash"], mimsSsprFailures=[b"2"])
    other = make.student(level="P4", class_name="4B", teacher=other_teacher)
    w = World(make, dns, target, teacher, other_teacher, other, make.admin())
    w.app_dn = _add_app(w)
    w.group_dn = make.groups[0]
    return w


@pytest.mark.parametrize("op", sorted(OPS))
def test_acl_matrix(op: str, world: World, slapd) -> None:  # type: ignore[no-untyped-def]
    fn, allowed = OPS[op]
    got = {}
    for role in ROLES:
        with _connect(role, world, slapd) as c:
            try:
                got[role] = fn(c, world)
            except MimsError as exc:  # any other error is a failure of the test, not a "no"
                pytest.fail(f"{op} as {role}: unexpected error {exc}")
    if "teacher" in allowed:
        allowed = allowed | {AS_TEACHER}
    expected = {role: role in allowed for role in ROLES}
    assert got == expected, f"{op}: allowed for {sorted(r for r, v in got.items() if v)}"


def test_anonymous_sees_nothing_not_even_root_dse(slapd, dns):  # type: ignore[no-untyped-def]
    with network_conn(slapd) as c:
        for base, scope in (("", ldap.SCOPE_BASE), (dns.base, ldap.SCOPE_SUBTREE)):
            try:
                res = c.search(base, scope, "(objectClass=*)", None, "anonymous search")
            except MimsError:
                continue  # refused outright: fine
            assert res == [], f"anonymous read {len(res)} entries under {base!r}"


def test_teacher_reset_other_class_refused_by_directory(slapd, world: World):  # type: ignore[no-untyped-def]
    """ppolicy's safe-modify check or the ACL refuses: either way slapd, not our code."""
    with conn_as(slapd, world.other_teacher.dn, world.other_teacher.password) as c:
        assert not _write(lambda: c.set_password(world.target.dn, "Not-my-class-1"))
        assert not _write(lambda: c.modify(world.target.dn, [(ldap.MOD_REPLACE,
                                                              "pwdAccountLockedTime", [])], "w"))
    with conn_as(slapd, world.teacher.dn, world.teacher.password) as c:
        assert _write(lambda: c.set_password(world.target.dn, "My-class-reset-1"))


def test_portal_acts_as_a_teacher_with_the_teachers_rights(slapd, world: World):  # type: ignore[no-untyped-def]
    """The portal's service account writes for a signed-in teacher with proxied
    authorization: slapd checks the teacher's ACLs, and refuses other classes."""
    with service_conn(slapd, "sspr") as c:
        c.act_as(world.teacher.dn)
        assert c.whoami().lower() == f"dn:{world.teacher.dn}".lower()
        assert _write(lambda: c.set_password(world.target.dn, "Teacher-reset-42"))
        c.act_as(world.other_teacher.dn)
        assert not _write(lambda: c.set_password(world.target.dn, "Not-my-class-42"))
        # Never a student, an admin, or another service.
        for dn in (world.other_student.dn, world.dns.service("sync")):
            c.act_as(dn)
            with pytest.raises(MimsError):
                c.whoami()
    with service_conn(slapd, "sync") as c:
        c.act_as(world.teacher.dn)
        with pytest.raises(MimsError):
            c.whoami()


def test_portal_cannot_act_as_an_ict_admin_or_disabled_staff(slapd, world: World, root):  # type: ignore[no-untyped-def]
    """With sspr.pw one gets a form teacher's rights at most: acting as an ICT admin, or as
    a member of staff who is disabled, is refused by slapd (authzTo's filter). Group
    membership counts at the moment of the request (memberOf computed by dynlist)."""
    dns = world.dns
    with service_conn(slapd, "sspr") as c:
        c.act_as(world.admin.dn)
        with pytest.raises(MimsError, match="PROXIED_AUTHORIZATION_DENIED"):
            c.whoami()
        c.act_as(world.teacher.dn)
        assert c.whoami().lower() == f"dn:{world.teacher.dn}".lower()
        root.modify(dns.admins, [(ldap.MOD_ADD, "member", [world.teacher.dn.encode()])],
                    "making the teacher an ICT admin")
        world.make.admin_members.append(world.teacher.dn)
        with pytest.raises(MimsError, match="PROXIED_AUTHORIZATION_DENIED"):
            c.whoami()
        c.act_as(world.other_teacher.dn)
        assert c.whoami()
        root.modify(world.other_teacher.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus",
                                              [b"disabled"])], "disabling a teacher")
        with pytest.raises(MimsError, match="PROXIED_AUTHORIZATION_DENIED"):
            c.whoami()


def test_disabled_staff_cannot_bind(slapd, make, root):  # type: ignore[no-untyped-def]
    t = make.teacher(password="Teacher-pass-1")
    with network_conn(slapd) as c:
        assert c.bind_ppolicy(t.dn, "Teacher-pass-1").ok
    root.modify(t.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "disabling")
    with network_conn(slapd) as c:
        assert not c.bind_ppolicy(t.dn, "Teacher-pass-1").ok
    root.modify(t.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"active"])], "enabling")
    with network_conn(slapd) as c:
        assert c.bind_ppolicy(t.dn, "Teacher-pass-1").ok


def test_decoy_refuses_never_locks_and_records_each_failure(slapd, dns, root):  # type: ignore[no-untyped-def]
    """A failed bind to the decoy costs what a student's does: the argon2 check and the
    failure write; it never locks, however many."""
    decoy = dns.service("decoy")
    before = len(root.get(decoy, ["pwdFailureTime"], "decoy failures").get("pwdFailureTime",
                                                                              []))
    for i in range(8):
        with network_conn(slapd) as c:
            out = c.bind_ppolicy(decoy, f"some-guess-{i}")
        assert not out.ok and not out.locked
    raw = root.get(decoy, ["pwdFailureTime", "pwdAccountLockedTime", "userPassword"], "decoy")
    assert raw["userPassword"][0].startswith(b"{ARGON2}$argon2id$v=19$m=19456,t=3,p=1$")
    assert "pwdAccountLockedTime" not in raw
    assert len(raw["pwdFailureTime"]) == 5 or len(raw["pwdFailureTime"]) > before
