"""Size limits: services and ICT admins page through every student (olcLimits); the device
looks people up one at a time and may not list them (its own limits: tests/test_device_nss.py
has the look-ups that must work); anyone else gets slapd's global limit of 500 entries per
search."""

from __future__ import annotations

import uuid

import ldap
import pytest

from mimsdir.errors import MimsError
from tests.conftest import conn_as, service_conn
from tests.sync_helpers import delete_school

N = 620


@pytest.fixture(scope="module")
def big_school(slapd):  # type: ignore[no-untyped-def]
    from mimsdir.directory.server import root_conn

    school = "L" + uuid.uuid4().hex[:7].upper()
    with root_conn(slapd) as root:
        for i in range(N):
            uid = f"{school}{i:04d}"
            root.lo.add_ext(f"uid={uid},ou=students,{slapd.ldap.base_dn}", [
                ("objectClass", [b"inetOrgPerson", b"mimsStudent"]), ("uid", [uid.encode()]),
                ("cn", [b"Kid"]), ("sn", [b"Kid"]), ("mimsSchoolCode", [school.encode()]),
                ("mimsLevel", [b"P3"]), ("mimsAccountStatus", [b"active"]),
            ])
        for _ in range(N):
            root.lo.result3()
    yield school
    delete_school(slapd, school)


def count(conn, school: str, by: str = "mimsSchoolCode") -> int:  # type: ignore[no-untyped-def]
    flt = f"(mimsSchoolCode={school})" if by == "mimsSchoolCode" else f"(uid={school}*)"
    return sum(1 for _ in conn.search_paged("ou=students,dc=mims,dc=example",
                                            ldap.SCOPE_ONELEVEL, flt, ["1.1"], "paging",
                                            page_size=200))


@pytest.mark.parametrize("service", ["sync", "sspr"])
def test_services_page_through_every_student(slapd, big_school, service) -> None:  # type: ignore[no-untyped-def]
    with service_conn(slapd, service) as c:
        assert count(c, big_school) == N


def test_ict_admin_pages_through_every_student(slapd, make, big_school) -> None:  # type: ignore[no-untyped-def]
    admin = make.admin()
    with conn_as(slapd, admin.dn, admin.password) as c:
        assert count(c, big_school) == N


def test_the_device_cannot_list_a_school(slapd, big_school) -> None:  # type: ignore[no-untyped-def]
    # The device may read uid (it may not see mimsSchoolCode at all); a listing of 620
    # students is refused before any is sent (size.unchecked), paged or not.
    with service_conn(slapd, "device") as c, pytest.raises(MimsError, match="ADMINLIMIT"):
        count(c, big_school, by="uid")
    with service_conn(slapd, "device") as c, pytest.raises(MimsError, match="ADMINLIMIT"):
        c.search("ou=students,dc=mims,dc=example", ldap.SCOPE_ONELEVEL, f"(uid={big_school}*)",
                 ["1.1"], "listing")


def test_everyone_else_has_the_global_limit(slapd, root) -> None:  # type: ignore[no-untyped-def]
    """Teachers and students see too few entries to reach it: read it from cn=config."""
    res = root.search("cn=config", ldap.SCOPE_BASE, "(objectClass=*)", ["olcSizeLimit"], "r")
    assert res[0][1]["olcSizeLimit"] == [b"500"]
    res = root.search("olcDatabase={-1}frontend,cn=config", ldap.SCOPE_BASE, "(objectClass=*)",
                      ["olcSizeLimit"], "r")
    assert res[0][1]["olcSizeLimit"] == [b"500"]
