"""The same school in native, OneRoster and Google form gives the same students."""

from __future__ import annotations

import csv
import dataclasses
import io
import unicodedata
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimsdir.roster import Roster, RosterStudent, read_roster

DATA = Path(__file__).parent / "data" / "roster"


def comparable(roster: Roster) -> list[RosterStudent]:
    """Students without where they came from, in id order."""
    plain = [dataclasses.replace(s, source="", line=0) for s in roster.students]
    return sorted(plain, key=lambda s: s.student_id)


def test_sample_school_is_identical_in_three_formats(tmp_path: Path) -> None:
    native = read_roster(DATA / "native.csv")
    google = read_roster(DATA / "google.csv", "google")
    oneroster = read_roster(DATA / "oneroster", "oneroster")
    zipped = tmp_path / "oneroster.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for path in (DATA / "oneroster").iterdir():
            zf.write(path, path.name)
    assert len(native.students) == 6 and native.errors == ()
    assert comparable(native) == comparable(google) == comparable(oneroster)
    assert comparable(read_roster(zipped, "oneroster")) == comparable(native)
    for roster in (native, google, oneroster):
        assert roster.departed_ids == frozenset({"S1006"})
        assert roster.schools == frozenset({"7001"})
        assert dict(roster.row_count_by_school) == {"7001": 6}


# --- the same, for generated schools -----------------------------------------------------------


def _text(max_size: int, exclude: str = "") -> st.SearchStrategy[str]:
    chars = st.characters(categories=("L", "M", "N", "P", "Zs"), exclude_characters=exclude)
    return st.text(chars, min_size=1, max_size=max_size).filter(
        lambda s: s == s.strip() and s == unicodedata.normalize("NFC", s)
    )


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,11}", fullmatch=True)
_locals = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9_+-]{1,6})?", fullmatch=True)


@st.composite
def schools(draw: st.DrawFn) -> list[RosterStudent]:
    """A school of students whose class decides level and form teacher (as OneRoster needs)."""
    code = draw(st.from_regex(r"[A-Z0-9]{1,8}", fullmatch=True))
    classes = draw(
        st.lists(
            st.tuples(
                st.integers(1, 6),
                _text(12, exclude="/"),
                st.none() | _locals.map(lambda x: f"{x}@moe.edu.sg"),
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda c: (c[0], c[1]),
        )
    )
    people = draw(
        st.lists(
            st.tuples(_ids, _locals, _text(20), _text(20), st.sampled_from(classes), st.booleans()),
            min_size=1,
            max_size=6,
            unique_by=(lambda p: p[0].casefold(), lambda p: p[1]),
        )
    )
    return [
        RosterStudent(
            student_id=sid,
            email=f"{local}@students.edu.sg",
            given_name=given,
            family_name=family,
            school_code=code,
            level=f"P{klass[0]}",
            class_name=klass[1],
            form_teacher_email=klass[2],
            status="left" if left else "active",
            source="",
            line=0,
        )
        for sid, local, given, family, klass, left in people
    ]


def _csv(rows: list[list[str]], *, bom: bool = False, crlf: bool = False) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def write_native(path: Path, school: list[RosterStudent]) -> Path:
    rows = [
        [
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
    ]
    for s in school:
        rows.append(
            [
                s.student_id,
                s.email.upper(),
                s.given_name,
                s.family_name,
                s.school_code.lower(),
                s.level,
                s.class_name,
                s.form_teacher_email or "",
                "withdrawn" if s.status == "left" else "",
            ]
        )
    path.write_bytes(_csv(rows, bom=True, crlf=True))
    return path


def write_google(path: Path, school: list[RosterStudent]) -> Path:
    rows = [
        [
            "First Name [Required]",
            "Last Name [Required]",
            "Email Address [Required]",
            "Password [Required]",
            "Org Unit Path [Required]",
            "Employee ID",
            "Manager Email",
            "Status [READ ONLY]",
        ],
        ["Staff", "Member", "staff@moe.edu.sg", "****", "/Staff", "T0", "", "Active"],
    ]
    for s in school:
        ou = f"/Students/{s.school_code}/Primary {s.level[1]}/{s.class_name}"
        rows.append(
            [
                s.given_name,
                s.family_name,
                s.email,
                "****",
                ou,
                s.student_id,
                s.form_teacher_email or "",
                "Suspended" if s.status == "left" else "Active",
            ]
        )
    path.write_bytes(_csv(rows))
    return path


def write_oneroster(path: Path, school: list[RosterStudent]) -> Path:
    files: dict[str, list[list[str]]] = {
        "manifest.csv": [["propertyName", "value"], ["file.users", "bulk"]],
        "orgs.csv": [
            ["sourcedId", "status", "dateLastModified", "name", "type", "identifier"],
            ["org-1", "", "", "School", "school", school[0].school_code],
        ],
        "users.csv": [
            [
                "sourcedId",
                "status",
                "enabledUser",
                "orgSourcedIds",
                "role",
                "givenName",
                "familyName",
                "identifier",
                "email",
            ]
        ],
        "classes.csv": [["sourcedId", "title", "grades", "classType"]],
        "enrollments.csv": [["sourcedId", "classSourcedId", "userSourcedId", "role", "primary"]],
    }
    classes: dict[tuple[str, str], str] = {}
    teachers: dict[str, str] = {}
    for n, s in enumerate(school):
        key = (s.level, s.class_name)
        if key not in classes:
            classes[key] = f"class-{len(classes)}"
            files["classes.csv"].append([classes[key], s.class_name, f"0{s.level[1]}", "homeroom"])
            if s.form_teacher_email:
                if s.form_teacher_email not in teachers:
                    teachers[s.form_teacher_email] = f"teacher-{len(teachers)}"
                    files["users.csv"].append(
                        [
                            teachers[s.form_teacher_email],
                            "",
                            "true",
                            "org-1",
                            "teacher",
                            "T",
                            "T",
                            "",
                            s.form_teacher_email,
                        ]
                    )
                files["enrollments.csv"].append(
                    [f"te-{n}", classes[key], teachers[s.form_teacher_email], "teacher", "true"]
                )
        files["users.csv"].append(
            [
                f"user-{n}",
                "",
                "false" if s.status == "left" else "true",
                "org-1",
                "student",
                s.given_name,
                s.family_name,
                s.student_id,
                s.email,
            ]
        )
        files["enrollments.csv"].append([f"se-{n}", classes[key], f"user-{n}", "student", "false"])
    with zipfile.ZipFile(path, "w") as zf:
        for name, rows in files.items():
            zf.writestr(name, _csv(rows))
    return path


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(school=schools())
def test_generated_school_is_identical_in_three_formats(
    tmp_path_factory: pytest.TempPathFactory, school: list[RosterStudent]
) -> None:
    folder = tmp_path_factory.mktemp("school")
    native = read_roster(write_native(folder / "native.csv", school))
    google = read_roster(write_google(folder / "google.csv", school), "google")
    oneroster = read_roster(write_oneroster(folder / "oneroster.zip", school), "oneroster")
    expected = sorted(school, key=lambda s: s.student_id)
    for roster in (native, google, oneroster):
        assert roster.errors == ()
        assert comparable(roster) == expected
        assert roster.departed_ids == {s.student_id for s in school if s.status == "left"}
        assert dict(roster.row_count_by_school) == {school[0].school_code: len(school)}
