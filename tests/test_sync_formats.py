"""The same school in three roster formats makes the same directory; and the demo school after
a sync matches a golden LDIF (OpenLDAP's own test habit: dump sorted, compare), posix shape
included: each uidNumber is shown as its place in the run's one reservation and each
gidNumber as the group it is the number of (the raw values depend on what ran before; they
are checked apart)."""

from __future__ import annotations

import os
from pathlib import Path

import ldap
import ldif
import pytest

from mimsdir.directory.idpool import read_groups
from mimsdir.directory.server import root_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.roster import read_roster
from tests.sync_helpers import delete_school, run_sync, school_entries
from tests.test_roster_formats import write_google, write_native, write_oneroster

ROOT = Path(__file__).resolve().parent.parent
DEMO_CSV = ROOT / "ldap-fixtures" / "demo-school.csv"
DEMO_LDIF = ROOT / "ldap-fixtures" / "demo-school.ldif"
GOLDEN = ROOT / "tests" / "data" / "golden" / "demo-school-after-sync.ldif"

# Attributes that differ on every run (time, ids, hashes): not part of the comparison.
VOLATILE = {"userpassword", "entryuuid", "entrycsn", "createtimestamp", "modifytimestamp",
            "creatorsname", "modifiersname", "pwdchangedtime", "pwdhistory", "entrydn",
            "subschemasubentry", "hassubordinates", "structuralobjectclass", "pwdfailuretime"}


def comparable(entries: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    """Without volatile attributes, and without the numbers: a school made again gets new
    ones (the old ones are burnt)."""
    return {uid: {k: sorted(v) for k, v in e.items()
                  if k.lower() not in VOLATILE and k.lower() not in ("uidnumber", "gidnumber")}
            for uid, e in entries.items()}


def demo_students(school: str):  # type: ignore[no-untyped-def]
    """The demo school's students under another school code and ids, for isolation."""
    from dataclasses import replace

    roster = read_roster(DEMO_CSV)
    return [replace(s, student_id=f"{school}{i:03d}", school_code=school,
                    email=f"{school.lower()}.{i}@students.test.sg", form_teacher_email=None)
            for i, s in enumerate(roster.students)]


def test_three_formats_make_the_same_directory(slapd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    school = "FMT" + os.urandom(3).hex().upper()
    students = demo_students(school)
    made = {}
    writers = {"native": (write_native, "r.csv"), "oneroster": (write_oneroster, "r.zip"),
               "google": (write_google, "r-google.csv")}
    try:
        for fmt, (writer, name) in writers.items():
            path = writer(tmp_path / name, students)
            r = run_sync(slapd, path, "--format", fmt, tmp=tmp_path)
            assert r.code == 0, r.result.output
            assert r.report["planned"]["create"] == len(students)
            entries = school_entries(slapd, school)
            with root_conn(slapd) as c:
                gid = read_groups(c, Dns(slapd.ldap.base_dn))[f"school-{school.lower()}"]
            assert all(e["uidNumber"][0].isdigit() and e["gidNumber"] == [str(gid)]
                       for e in entries.values())
            made[fmt] = comparable(entries)
            delete_school(slapd, school)
    finally:
        delete_school(slapd, school)
    assert len(made["native"]) == len(students)
    assert made["oneroster"] == made["native"]
    assert made["google"] == made["native"]


def _dump(cfg, school: str) -> str:  # type: ignore[no-untyped-def]
    """The school's students and its posix group, sorted, numbers shown by what they are."""
    from mimsdir.posix import ID_STRIDE, school_group

    dns = Dns(cfg.ldap.base_dn)
    with root_conn(cfg) as c:
        res = c.search(dns.students, ldap.SCOPE_ONELEVEL, f"(mimsSchoolCode={school})",
                       ["*", "+"], "dumping the school")
        res += c.search(dns.posix_group(school_group(school)), ldap.SCOPE_BASE,
                        "(objectClass=*)", ["*", "+"], "dumping the school's group")
        groups = {v: k for k, v in read_groups(c, dns).items()}
    # One sync reserves every new student's number at once, in the order of its writes
    # (by uid): consecutive numbers of this provider (server 0), nothing shared.
    numbers = sorted(int(a["uidNumber"][0]) for _, a in res if "uidNumber" in a)
    first = numbers[0]
    assert numbers == [first + ID_STRIDE * k for k in range(len(numbers))]
    assert (first - cfg.posix.uid_min) % ID_STRIDE == 0
    import io

    out = io.StringIO()
    w = ldif.LDIFWriter(out, cols=1000)
    for dn, attrs in sorted(res, key=lambda e: e[0].lower()):
        keep = {k: sorted(v) for k, v in sorted(attrs.items()) if k.lower() not in VOLATILE}
        if "uidNumber" in keep:
            k = (int(keep["uidNumber"][0]) - first) // ID_STRIDE
            keep["uidNumber"] = [f"(number {k} of the reservation)".encode()]
        if "gidNumber" in keep:
            keep["gidNumber"] = [f"(gidNumber of {groups[int(keep['gidNumber'][0])]})".encode()]
        w.unparse(dn, keep)
    return out.getvalue()


@pytest.fixture
def demo_staff(slapd):  # type: ignore[no-untyped-def]
    with DEMO_LDIF.open("rb") as fh:
        records = ldif.LDIFRecordList(fh)
        records.parse()
    staff = [(dn, e) for dn, e in records.all_records if ",ou=staff," in dn]
    with root_conn(slapd) as c:
        for dn, e in staff:
            c.lo.add_s(dn, list(e.items()))
    yield
    with root_conn(slapd) as c:
        for dn, _ in staff:
            c.delete(dn, "cleanup")


def test_demo_school_after_sync_matches_golden_ldif(slapd, demo_staff, tmp_path) -> None:  # type: ignore[no-untyped-def]
    try:
        r = run_sync(slapd, DEMO_CSV, tmp=tmp_path)
        assert r.code == 0, r.result.output
        assert r.report["warnings"] == []
        got = _dump(slapd, "DEMOPS")
        if os.environ.get("MIMS_UPDATE_GOLDEN"):
            GOLDEN.parent.mkdir(parents=True, exist_ok=True)
            GOLDEN.write_text(got, encoding="utf-8")
        assert got == GOLDEN.read_text(encoding="utf-8")
    finally:
        delete_school(slapd, "DEMOPS")
