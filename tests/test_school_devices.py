"""A school's own device account (`mimsdir directory device add CODE`): it reads what cn=device
reads, of its own school's students and staff only, and the posix groups; a student of the
same school gains nothing from the rule; the same limits apply; the CLI adds, lists and
removes it without ever printing the password."""

from __future__ import annotations

import stat
from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.connect import network_conn
from mimsdir.directory import devices
from mimsdir.errors import MimsError
from mimsdir.ldapio import Conn
from tests.conftest import Factory, conn_as
from tests.test_device_nss import PERSON


@pytest.fixture
def other(slapd, root, dns):  # type: ignore[no-untyped-def]
    f = Factory(slapd, root, dns)
    yield f
    f.cleanup()


@pytest.fixture
def school_device(slapd, root, make):  # type: ignore[no-untyped-def]
    dev, written = devices.add(slapd, root, make.school)
    assert written
    yield dev
    devices.remove(slapd, root, make.school)


def as_device(slapd, dev) -> Conn:  # type: ignore[no-untyped-def]
    return conn_as(slapd, dev.dn, dev.password_file.read_text())


def find(c: Conn, dns, mail: str) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    return c.search(dns.base, ldap.SCOPE_SUBTREE,
                    f"(&(mail={mail.upper()})(objectclass=posixAccount)"
                    f"(&(uidNumber=*)(!(uidNumber=0))))", ["*", "+"], "an NSS look-up")


def test_a_school_device_sees_its_own_school_only(slapd, dns, make, other,
                                                  school_device) -> None:  # type: ignore[no-untyped-def]
    mine = make.student(posix=True)
    my_teacher = make.teacher(posix=True)
    theirs = other.student(posix=True)
    their_teacher = other.teacher(posix=True)
    with as_device(slapd, school_device) as c:
        for person in (mine, my_teacher):
            (dn, attrs), = find(c, dns, person.mail)
            assert dn == person.dn
            assert {k.lower() for k in attrs} <= PERSON and "uidNumber" in attrs
        for person in (theirs, their_teacher):
            assert find(c, dns, person.mail) == []
            try:  # not even by DN
                by_dn = c.search(person.dn, ldap.SCOPE_BASE, f"(uid={person.uid})", ["*"], "r")
            except MimsError:
                by_dn = []
            assert by_dn == []
        # Groups: its school's and the staff group resolve (a group holds no names).
        for group in (make.groups[0], dns.posix_group("mims-staff")):
            (_, g), = c.search(group, ldap.SCOPE_BASE, "(objectClass=posixGroup)",
                               ["*"], "reading a group")
            assert {k.lower() for k in g} == {"objectclass", "cn", "gidnumber"}
    with network_conn(slapd) as c:  # and then it signs the student in
        assert c.bind_ppolicy(mine.dn, mine.password).ok


def test_a_student_of_the_school_gains_nothing(slapd, dns, make) -> None:  # type: ignore[no-untyped-def]
    """The set compares schools; the rule also needs the reader to be a service account,
    or every student would read their schoolmates."""
    me = make.student(posix=True)
    mate = make.student(posix=True)
    with conn_as(slapd, me.dn, me.password) as c:
        assert find(c, dns, mate.mail) == []
        (_, attrs), = find(c, dns, me.mail)  # their own entry, as before
        assert "uidNumber" in attrs


def test_the_school_device_cannot_list(slapd, dns, make, school_device) -> None:  # type: ignore[no-untyped-def]
    for _ in range(8):
        make.student(posix=True)
    with as_device(slapd, school_device) as c:
        try:
            got = c.search(dns.base, ldap.SCOPE_SUBTREE, "(mail=*)", ["mail"], "listing")
        except MimsError as exc:
            assert "ADMINLIMIT" in str(exc) or "SIZELIMIT" in str(exc)
        else:
            raise AssertionError(f"listed {len(got)} entries")


def test_cli_adds_lists_and_removes_without_printing_the_password(slapd, make) -> None:  # type: ignore[no-untyped-def]
    cfg_file = str(Path(slapd.base_path) / "config.yaml")
    run = CliRunner().invoke
    res = run(main, ["--config", cfg_file, "directory", "device", "add", make.school.lower()])
    assert res.exit_code == 0, res.output
    path = devices.password_file(slapd, make.school)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() not in res.output and "added" in res.output
        again = run(main, ["--config", cfg_file, "directory", "device", "add", make.school])
        assert "already there" in again.output
        listed = run(main, ["--config", cfg_file, "directory", "device", "list"])
        assert make.school in listed.output and str(path) in listed.output
        bad = run(main, ["--config", cfg_file, "directory", "device", "add", "no such!"])
        assert bad.exit_code == 2 and "letters or digits" in bad.output
    finally:
        res = run(main, ["--config", cfg_file, "directory", "device", "remove", make.school])
    assert "removed" in res.output and not path.exists()
