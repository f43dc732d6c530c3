"""The demo school fixtures: generated from scripts/make_demo_fixtures.py, never hand-edited.

These tests need no LDAP server: they regenerate the files, compare them with the committed
copies byte for byte, and parse the LDIF (python-ldap's ``ldif``) and the CSV (``csv``) to check
that both describe the same school.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType

import ldif
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "make_demo_fixtures.py"
FIXTURES = REPO_ROOT / "ldap-fixtures"
CSV_PATH = FIXTURES / "demo-school.csv"
LDIF_PATH = FIXTURES / "demo-school.ldif"

BASE_DN = "dc=mims,dc=example"
STUDENTS_DN = f"ou=students,{BASE_DN}"
STAFF_DN = f"ou=staff,{BASE_DN}"
ICT_ADMINS_DN = f"cn=ict-admins,ou=groups,{BASE_DN}"
CONTAINER_DNS = {
    BASE_DN,
    STUDENTS_DN,
    STAFF_DN,
    f"ou=groups,{BASE_DN}",
    f"ou=services,{BASE_DN}",
    f"ou=policies,{BASE_DN}",
}
EXPECTED_COLUMNS = [
    "student_id",
    "email",
    "given_name",
    "family_name",
    "school_code",
    "level",
    "class",
    "form_teacher_email",
    "status",
]

Entry = dict[str, list[bytes]]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo_fixtures", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body is processed
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_script()


def _text(entry: Entry, attr: str) -> str:
    """The single value of attr, decoded."""
    values = entry[attr]
    assert len(values) == 1, (attr, values)
    return values[0].decode("utf-8")


def _texts(entry: Entry, attr: str) -> list[str]:
    return [v.decode("utf-8") for v in entry.get(attr, [])]


@pytest.fixture(scope="module")
def ldif_records() -> list[tuple[str, Entry]]:
    with LDIF_PATH.open("rb") as f:
        parser = ldif.LDIFRecordList(f)
        parser.parse()
    return parser.all_records


@pytest.fixture(scope="module")
def by_dn(ldif_records: list[tuple[str, Entry]]) -> dict[str, Entry]:
    result = dict(ldif_records)
    assert len(result) == len(ldif_records), "duplicate DN in the LDIF"
    return result


@pytest.fixture(scope="module")
def ldif_students(ldif_records: list[tuple[str, Entry]]) -> dict[str, Entry]:
    return {_text(e, "uid"): e for dn, e in ldif_records if dn.endswith(f",{STUDENTS_DN}")}


@pytest.fixture(scope="module")
def ldif_staff(ldif_records: list[tuple[str, Entry]]) -> dict[str, Entry]:
    return {dn: e for dn, e in ldif_records if dn.endswith(f",{STAFF_DN}")}


@pytest.fixture(scope="module")
def csv_rows() -> list[dict[str, str]]:
    raw = CSV_PATH.read_bytes()
    assert b"\r" not in raw, "the CSV must use LF line ends"
    with io.StringIO(raw.decode("utf-8"), newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == EXPECTED_COLUMNS
        return list(reader)


# ------------------------------------------------------------------------------------------
# The committed files are exactly what the generator writes
# ------------------------------------------------------------------------------------------


def test_committed_fixtures_match_the_generator(tmp_path: Path) -> None:
    assert gen.main(["--out-dir", str(tmp_path)]) == 0
    for committed in (CSV_PATH, LDIF_PATH):
        generated = tmp_path / committed.name
        assert generated.read_bytes() == committed.read_bytes(), (
            f"{committed.relative_to(REPO_ROOT)} is out of date: "
            "run .venv/bin/python scripts/make_demo_fixtures.py"
        )


def test_generator_is_deterministic() -> None:
    assert gen.rendered() == gen.rendered()


def test_check_mode_as_a_script(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    gen.write_fixtures(tmp_path)
    stale = tmp_path / "demo-school.csv"
    stale.write_bytes(stale.read_bytes() + b"S2999999X,x_y@students.demo.edu.sg\n")
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "demo-school.csv" in bad.stderr
    assert "demo-school.ldif" not in bad.stderr


# ------------------------------------------------------------------------------------------
# LDIF form
# ------------------------------------------------------------------------------------------


def test_ldif_is_ascii_folded_and_commented() -> None:
    text = LDIF_PATH.read_bytes().decode("ascii")  # non-ASCII values must be base64
    lines = text.split("\n")
    assert lines[0].startswith("#")
    assert "generated by scripts/make_demo_fixtures.py" in text.lower()
    assert "\r" not in text
    assert all(len(line) <= 76 for line in lines), "LDIF lines are folded at 76 columns"
    assert any(line.startswith(" ") for line in lines), "expected some folded lines"
    # slapadd (OpenLDAP 2.5) refuses a "version: 1" line, so the file must not have one
    assert not any(line.startswith("version:") for line in lines)


def test_ldif_entry_order_and_no_containers(ldif_records: list[tuple[str, Entry]]) -> None:
    dns = [dn for dn, _ in ldif_records]
    assert not CONTAINER_DNS & set(dns)
    kinds = [
        "staff" if dn.endswith(f",{STAFF_DN}") else "group" if dn == ICT_ADMINS_DN else "student"
        for dn in dns
    ]
    first_group = kinds.index("group")
    assert set(kinds[:first_group]) == {"staff"}
    assert kinds[first_group + 1 :] == ["student"] * (len(kinds) - first_group - 1)
    for dn in dns:
        assert dn.endswith(f",{BASE_DN}")
        if dn != ICT_ADMINS_DN:
            assert dn.startswith("uid=")


def test_ldif_student_entries(by_dn: dict[str, Entry], ldif_students: dict[str, Entry]) -> None:
    for uid, e in ldif_students.items():
        dn = f"uid={uid},{STUDENTS_DN}"
        assert by_dn[dn] is e
        assert sorted(_texts(e, "objectClass")) == ["inetOrgPerson", "mimsStudent"]
        assert _text(e, "cn") == f"{_text(e, 'givenName')} {_text(e, 'sn')}"
        assert _text(e, "displayName")
        assert _text(e, "mimsSchoolCode") == "DEMOPS"
        assert _text(e, "mimsAccountStatus") == "active"
        level = _text(e, "mimsLevel")
        assert re.fullmatch(r"P[2-6]", level)
        assert _text(e, "mimsClass")[0] == level[1]
        policy = "lower-primary" if level in ("P2", "P3") else "upper-primary"
        assert _text(e, "pwdPolicySubentry") == f"cn={policy},ou=policies,{BASE_DN}"
        assert "userPassword" not in e
        assert not [a for a in e if a.lower().startswith("mimschallenge")]


def test_ldif_staff_and_group(by_dn: dict[str, Entry], ldif_staff: dict[str, Entry]) -> None:
    for dn, e in ldif_staff.items():
        assert dn == f"uid={_text(e, 'uid')},{STAFF_DN}"
        assert sorted(_texts(e, "objectClass")) == ["inetOrgPerson", "mimsStaff"]
        assert _text(e, "mail").endswith("@demo.edu.sg")
        assert _text(e, "cn") == f"{_text(e, 'givenName')} {_text(e, 'sn')}"
        assert _text(e, "mimsSchoolCode") == "DEMOPS"
        assert _text(e, "mimsAccountStatus") == "active"
        assert _text(e, "pwdPolicySubentry") == f"cn=staff,ou=policies,{BASE_DN}"
        assert "userPassword" not in e
    teachers = [e for e in ldif_staff.values() if "mimsClass" in e]
    classes = [_text(e, "mimsClass") for e in teachers]
    assert len(teachers) == 6
    assert len(set(classes)) == len(classes), "one form teacher per class"
    group = by_dn[ICT_ADMINS_DN]
    assert _texts(group, "objectClass") == ["groupOfNames"]
    assert _texts(group, "cn") == ["ict-admins"]
    members = _texts(group, "member")
    assert members == [f"uid={gen.DEMO_ICT_ADMIN},{STAFF_DN}"]
    assert all(m in ldif_staff for m in members)


# ------------------------------------------------------------------------------------------
# CSV and LDIF describe the same school
# ------------------------------------------------------------------------------------------


def test_csv_and_ldif_describe_the_same_students(
    csv_rows: list[dict[str, str]],
    ldif_students: dict[str, Entry],
    ldif_staff: dict[str, Entry],
) -> None:
    teacher_dn_by_mail = {_text(e, "mail"): dn for dn, e in ldif_staff.items()}
    assert [r["student_id"] for r in csv_rows] == list(ldif_students)
    for row in csv_rows:
        e = ldif_students[row["student_id"]]
        assert row["email"] == _text(e, "mail")
        assert row["given_name"] == _text(e, "givenName")
        assert row["family_name"] == _text(e, "sn")
        assert row["school_code"] == _text(e, "mimsSchoolCode") == "DEMOPS"
        assert row["level"] == _text(e, "mimsLevel")
        assert row["class"] == _text(e, "mimsClass")
        assert row["status"] == _text(e, "mimsAccountStatus") == "active"
        teacher_dn = teacher_dn_by_mail[row["form_teacher_email"]]
        assert _text(e, "mimsFormTeacher") == teacher_dn
        # and that teacher is the form teacher of this very class
        assert _text(ldif_staff[teacher_dn], "mimsClass") == row["class"]


def test_roster_shape(csv_rows: list[dict[str, str]]) -> None:
    assert 35 <= len(csv_rows) <= 45
    assert {r["level"] for r in csv_rows} == {"P2", "P3", "P4", "P5", "P6"}
    per_class = Counter(r["class"] for r in csv_rows)
    assert len(per_class) == 6
    assert all(6 <= n <= 8 for n in per_class.values()), per_class
    ids = [r["student_id"] for r in csv_rows]
    assert len(set(ids)) == len(ids)
    for sid in ids:
        assert re.fullmatch(r"S\d{7}[A-Z]", sid)
        assert not gen.is_valid_nric_checksum(sid), f"{sid} is a valid NRIC"


def test_emails_are_unique_lowercase_ascii(
    csv_rows: list[dict[str, str]], ldif_staff: dict[str, Entry]
) -> None:
    emails = [r["email"] for r in csv_rows]
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*@students\.demo\.edu\.sg", email), email
    staff_mails = [_text(e, "mail") for e in ldif_staff.values()]
    assert len(set(staff_mails + emails)) == len(staff_mails) + len(emails)


def test_names_in_several_scripts_and_forms(ldif_students: dict[str, Entry]) -> None:
    display = [_text(e, "displayName") for e in ldif_students.values()]
    names = [_text(e, "cn") for e in ldif_students.values()]

    def has_script(text: str, script: str) -> bool:
        return any(unicodedata.name(ch, "").startswith(script) for ch in text)

    assert any(has_script(d, "CJK UNIFIED IDEOGRAPH") for d in display)
    assert any(has_script(d, "TAMIL") for d in display)
    assert any("'" in n for n in names)
    assert any("-" in n for n in names)
    assert any(not n.isascii() for n in names), "expected an accented name"
    for marker in (" bin ", " binte ", " s/o ", " d/o "):
        assert any(marker in n for n in names), marker
    for text in display + names:
        assert unicodedata.is_normalized("NFC", text), f"{text!r} is not NFC"
    for e in ldif_students.values():
        if _text(e, "displayName").isascii():
            assert _text(e, "displayName") == _text(e, "cn")


# ------------------------------------------------------------------------------------------
# The named demo accounts
# ------------------------------------------------------------------------------------------


def test_demo_constants(
    by_dn: dict[str, Entry], ldif_students: dict[str, Entry], ldif_staff: dict[str, Entry]
) -> None:
    teacher_dn = f"uid={gen.DEMO_TEACHER},{STAFF_DN}"
    assert teacher_dn in ldif_staff

    p2 = ldif_students[gen.DEMO_P2_STUDENT]
    assert _text(p2, "mimsLevel") == "P2"

    p4 = ldif_students[gen.DEMO_P4_STUDENT]
    assert _text(p4, "mimsLevel") == "P4"
    assert _text(p4, "mimsFormTeacher") == teacher_dn

    other = ldif_students[gen.DEMO_OTHER_CLASS_STUDENT]
    assert _text(other, "mimsLevel") == _text(p4, "mimsLevel")
    assert _text(other, "mimsClass") != _text(p4, "mimsClass")
    assert _text(other, "mimsFormTeacher") != teacher_dn

    admin_dn = f"uid={gen.DEMO_ICT_ADMIN},{STAFF_DN}"
    assert admin_dn in ldif_staff
    assert "mimsClass" not in ldif_staff[admin_dn]
    assert admin_dn in _texts(by_dn[ICT_ADMINS_DN], "member")

    first, second = (ldif_students[i] for i in gen.DEMO_NAMESAKES)
    assert _text(first, "cn") == _text(second, "cn")
    assert _text(first, "mimsClass") != _text(second, "mimsClass")
    assert _text(first, "mail") != _text(second, "mail")
