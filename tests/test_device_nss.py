"""What a device stack does, as cn=device, with the filters nslcd and SSSD really send
(docs/devices.md): find a user by their email (any case) or number, their group by number or
name, their supplementary groups; read exactly the attributes NSS needs and nothing else;
never list a school. Then bind as the user with the ppolicy control, as both do."""

from __future__ import annotations

import uuid

import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.directory.idpool import UID, Group, Pools, ensure_groups, reserve
from mimsdir.directory.server import root_conn
from mimsdir.errors import MimsError
from mimsdir.ldapio import Conn, escape_filter, first
from mimsdir.posix import home_directory, school_group
from tests.conftest import service_conn
from tests.sync_helpers import delete_school

N = 130  # more than the 100 candidate entries a device search may examine
#: What NSS needs of a person, and all the device may read of one.
PERSON = {"objectclass", "uid", "mail", "cn", "mimsaccountstatus", "uidnumber", "gidnumber",
          "homedirectory", "loginshell"}
# The attributes each stack asks for (nslcd 0.9 passwd map with `map passwd uid mail`;
# SSSD 2.x ldap_user_* defaults with ldap_user_name = mail): unknown ones are ignored.
NSLCD_PASSWD = ["mail", "userPassword", "uidNumber", "gidNumber", "gecos", "cn",
                "homeDirectory", "loginShell", "objectClass"]
SSSD_USER = ["objectClass", "mail", "userPassword", "uidNumber", "gidNumber", "gecos",
             "homeDirectory", "loginShell", "krbPrincipalName", "cn", "memberOf",
             "modifyTimestamp", "entryUSN", "shadowLastChange", "krbLastPwdChange",
             "pwdAttribute", "authorizedService", "accountExpires", "nsAccountLock",
             "host", "mimsLevel", "mimsFormTeacher", "mimsChallenge", "pwdAccountLockedTime"]


@pytest.fixture(scope="module")
def school(slapd):  # type: ignore[no-untyped-def]
    """A school of N students with the posix shape, as the sync makes them."""
    code = "D" + uuid.uuid4().hex[:7].upper()
    with root_conn(slapd) as root:
        dns_ = root_dns(slapd)
        pools = Pools(dns_, slapd.posix.uid_min, slapd.posix.gid_min)
        gid = ensure_groups(root, pools, [Group(school_group(code), "students")])[
            school_group(code)]
        numbers = reserve(root, pools, UID, N)
        for i, number in enumerate(numbers):
            uid = f"{code}{i:04d}"
            root.lo.add_ext(dns_.student(uid), [
                ("objectClass", [b"inetOrgPerson", b"mimsStudent", b"posixAccount"]),
                ("uid", [uid.encode()]), ("cn", [f"Kid {i}".encode()]), ("sn", [b"Kid"]),
                ("mail", [f"{uid.lower()}@students.test.sg".encode()]),
                ("mimsSchoolCode", [code.encode()]), ("mimsLevel", [b"P3"]),
                ("mimsClass", [b"3A"]), ("mimsAccountStatus", [b"active"]),
                ("uidNumber", [str(number).encode()]), ("gidNumber", [str(gid).encode()]),
                ("homeDirectory", [home_directory(slapd.posix.home_template, uid,
                                                  code).encode()]),
                ("loginShell", [b"/bin/bash"]),
            ])
        for _ in numbers:
            root.lo.result3()
        root.set_password(dns_.student(f"{code}0007"), "Device-signin-7")
        root.modify(dns_.student(f"{code}0007"), [(ldap.MOD_DELETE, "pwdReset", None)], "x")
    yield code
    delete_school(slapd, code)


def root_dns(slapd):  # type: ignore[no-untyped-def]
    from mimsdir.directory.slapdconf import Dns

    return Dns(slapd.ldap.base_dn)


@pytest.fixture
def device(slapd):  # type: ignore[no-untyped-def]
    with service_conn(slapd, "device") as c:
        yield c


def look_up(device: Conn, base: str, flt: str, attrs: list[str]) -> list[tuple[str, dict]]:
    return device.search(base, ldap.SCOPE_SUBTREE, flt, attrs, "an NSS look-up")


def mail_of(code: str, i: int) -> str:
    return f"{code.lower()}{i:04d}@students.test.sg"


@pytest.mark.parametrize("typed", ["lower", "upper", "mixed"])
def test_nslcd_finds_a_user_by_email_in_any_case(device, dns, school, typed) -> None:  # type: ignore[no-untyped-def]
    """getent passwd <email> with `map passwd uid mail` (nslcd.conf `ignorecase yes`): the
    entry comes back under its stored, lower-case email, the Linux user name."""
    mail = mail_of(school, 7)
    asked = {"lower": mail, "upper": mail.upper(), "mixed": mail.title()}[typed]
    res = look_up(device, dns.base,
                  f"(&(objectClass=posixAccount)(mail={escape_filter(asked)}))", NSLCD_PASSWD)
    assert [dn for dn, _ in res] == [dns.student(f"{school}0007")]
    attrs = {k.lower(): v for k, v in res[0][1].items()}
    assert attrs["mail"] == [mail.encode()]
    assert attrs["homedirectory"] == [f"/home/{school.lower()}/{school.lower()}0007".encode()]
    assert set(attrs) == {"mail", "uidnumber", "gidnumber", "cn", "homedirectory",
                          "loginshell", "objectclass"}  # no userPassword, no gecos


def test_sssd_finds_a_user_by_email_and_by_number(device, dns, school) -> None:  # type: ignore[no-untyped-def]
    mail = mail_of(school, 7)
    flt = (f"(&(mail={escape_filter(mail.upper())})(objectclass=posixAccount)"
           f"(&(uidNumber=*)(!(uidNumber=0))))")
    (dn, attrs), = look_up(device, dns.base, flt, SSSD_USER)
    assert dn == dns.student(f"{school}0007")
    number = first(attrs, "uidNumber")
    assert {k.lower() for k in attrs} <= PERSON
    by_number = look_up(device, dns.base, f"(&(uidNumber={number})(objectclass=posixAccount)"
                        f"(mail=*)(&(uidNumber=*)(!(uidNumber=0))))", SSSD_USER)
    assert [d for d, _ in by_number] == [dn]
    nslcd = look_up(device, dns.base, f"(&(objectClass=posixAccount)(uidNumber={number}))",
                    NSLCD_PASSWD)
    assert [d for d, _ in nslcd] == [dn]


def test_the_primary_group_and_supplementary_groups(device, dns, school) -> None:  # type: ignore[no-untyped-def]
    """id / initgroups: the primary group by its number and by name; supplementary groups by
    memberUid (none: a school group lists no members, the user's gidNumber makes them one)."""
    (_, attrs), = look_up(device, dns.base, f"(mail={mail_of(school, 7)})", ["gidNumber"])
    gid = first(attrs, "gidNumber")
    group = school_group(school)
    for flt in (f"(&(objectClass=posixGroup)(gidNumber={gid}))",      # nslcd getgrgid
                f"(&(objectClass=posixGroup)(cn={group}))",           # nslcd getgrnam
                f"(&(gidNumber={gid})(objectClass=posixGroup)(cn=*)"
                f"(&(gidNumber=*)(!(gidNumber=0))))"):                # SSSD
        res = look_up(device, dns.base, flt, ["cn", "gidNumber", "memberUid", "objectClass",
                                              "description", "userPassword"])
        assert [dn for dn, _ in res] == [dns.posix_group(group)], flt
        assert {k.lower() for k in res[0][1]} == {"cn", "gidnumber", "objectclass"}
    mail = mail_of(school, 7)
    for flt in (f"(&(objectClass=posixGroup)(|(memberUid={mail})"
                f"(member={dns.student(school + '0007')})))",             # nslcd initgroups
                f"(&(memberuid={mail})(objectClass=posixGroup)(cn=*)"
                f"(&(gidNumber=*)(!(gidNumber=0))))"):                    # SSSD initgroups
        assert look_up(device, dns.base, flt, ["cn", "gidNumber"]) == []


def test_then_the_device_binds_as_the_user(device, dns, school, slapd) -> None:  # type: ignore[no-untyped-def]
    (dn, _), = look_up(device, dns.base, f"(mail={mail_of(school, 7).upper()})", ["1.1"])
    with network_conn(slapd) as user:
        out = user.bind_ppolicy(dn, "Device-signin-7")
    assert out.ok and not out.must_change


@pytest.mark.parametrize("flt", [
    "(mail=*)", "(mail=*@students.test.sg)", "(objectClass=posixAccount)", "(uid=*)",
    "(uidNumber=*)", "(cn=Kid*)", "(mimsAccountStatus=active)",
    "(&(objectClass=posixAccount)(mail=*))",
])
def test_the_device_cannot_list_students(device, dns, school, flt) -> None:  # type: ignore[no-untyped-def]
    """(mail=*) used to return the whole school. Now any search that would examine more
    than 100 entries is refused before one is sent (adminLimitExceeded); an indexed exact
    look-up examines one. Even when refused, nothing came back."""
    with pytest.raises(MimsError, match="ADMINLIMIT"):
        look_up(device, dns.base, flt, ["mail"])


@pytest.mark.parametrize("flt", [
    # A filter that examines few entries but matches more than five.
    "(|" + "".join(f"(mail=SCHOOL{i:04d}@students.test.sg)" for i in range(20)) + ")",
    # A range of numbers: back-mdb stops gathering candidates at size.unchecked and then
    # does not refuse (docs/devices.md): five at most.
    "(&(objectClass=posixAccount)(uidNumber>=0))", "(uidNumber<=2147483647)",
])
def test_any_other_listing_stops_at_five(device, dns, school, flt) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MimsError, match="SIZELIMIT"):
        look_up(device, dns.base, flt.replace("SCHOOL", school.lower()), ["mail"])
    five = "(|" + "".join(f"(mail={mail_of(school, i)})" for i in range(5)) + ")"
    assert len(look_up(device, dns.base, five, ["mail"])) == 5


def test_the_device_reads_exactly_what_nss_needs(device, dns, school, make) -> None:  # type: ignore[no-untyped-def]
    """Of a student, a member of staff and a group: all user and operational attributes
    asked for, and only the NSS set comes back (no level, class, form teacher, school,
    answers, lockout or policy state, names beyond cn)."""
    teacher = make.teacher(posix=True)
    student = make.student(teacher=teacher, posix=True, mimsChallenge=[b"q1$hash"],
                           mimsSsprFailures=[b"1"], displayName=[b"Kid"])
    for dn, key in ((student.dn, f"(uid={student.uid})"), (teacher.dn, f"(uid={teacher.uid})")):
        (_, attrs), = device.search(dn, ldap.SCOPE_BASE, key, ["*", "+"], "reading everything")
        assert {k.lower() for k in attrs} == PERSON - {"mimsaccountstatus"} | (
            {"mimsaccountstatus"} if "mimsAccountStatus" in attrs else set())
    (_, group), = device.search(make.groups[0], ldap.SCOPE_BASE, "(cn=*)", ["*", "+"], "group")
    assert {k.lower() for k in group} == {"objectclass", "cn", "gidnumber"}


def test_the_device_sees_no_counter_and_no_admin_group(device, dns) -> None:  # type: ignore[no-untyped-def]
    for base in (dns.idpools, dns.groups):
        try:
            res = device.search(base, ldap.SCOPE_SUBTREE, "(cn=*)", ["*"], "looking")
        except MimsError:
            continue
        assert res == []


def test_authorisation_filters_refuse_a_disabled_student(device, dns, make) -> None:  # type: ignore[no-untyped-def]
    """nslcd `pam_authz_search` and SSSD `ldap_access_filter` (docs/devices.md): an active
    student matches, a disabled one does not (and the directory refuses their bind anyway),
    while NSS still resolves them, so the files they own keep a name."""
    s = make.student(posix=True)
    nslcd = f"(&(objectClass=posixAccount)(mail={s.mail.upper()})(mimsAccountStatus=active))"
    sssd = f"(&(mail={s.mail})(mimsAccountStatus=active))"
    for flt in (nslcd, sssd):
        assert [dn for dn, _ in look_up(device, dns.base, flt, ["1.1"])] == [s.dn]
    make.root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "off")
    for flt in (nslcd, sssd):
        assert look_up(device, dns.base, flt, ["1.1"]) == []
    assert [dn for dn, _ in look_up(device, dns.base, f"(mail={s.mail})", ["1.1"])] == [s.dn]
