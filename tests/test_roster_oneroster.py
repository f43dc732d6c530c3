"""The OneRoster 1.1 CSV reader: folder or zip, joins, manifest bulk/delta, departures."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from mimsdir.roster import Roster, RosterError, read_roster

SAMPLE = Path(__file__).parent / "data" / "roster" / "oneroster"
USERS_HEADER = (SAMPLE / "users.csv").read_text(encoding="utf-8").splitlines()[0]


def make_set(tmp_path: Path, *, drop: tuple[str, ...] = (), **edits: list[tuple[str, str]]) -> Path:
    """A copy of the sample set; `edits` maps a file stem to (old, new) text replacements."""
    folder = tmp_path / "set"
    shutil.copytree(SAMPLE, folder)
    for stem, changes in edits.items():
        path = folder / f"{stem}.csv"
        text = path.read_text(encoding="utf-8")
        for old, new in changes:
            assert old in text, (stem, old)
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    for stem in drop:
        (folder / f"{stem}.csv").unlink()
    return folder


def append(folder: Path, stem: str, *rows: str) -> None:
    with (folder / f"{stem}.csv").open("a", encoding="utf-8") as out:
        out.write("".join(f"{row}\n" for row in rows))


def read(path: Path) -> Roster:
    return read_roster(path, "oneroster")


def by_id(roster: Roster) -> dict[str, object]:
    return {s.student_id: s for s in roster.students}


def test_sample_set() -> None:
    roster = read(SAMPLE)
    assert roster.fmt == "oneroster" and roster.is_delta is False
    assert roster.errors == () and roster.warnings == ()
    students = {s.student_id: s for s in roster.students}
    assert sorted(students) == [f"S100{n}" for n in range(1, 7)]
    s1 = students["S1001"]
    assert (s1.school_code, s1.level, s1.class_name) == ("7001", "P4", "4 Courage")
    assert s1.form_teacher_email == "lim.mei@moe.edu.sg"  # primary teacher, not the first listed
    assert (s1.source, s1.line) == ("users.csv", 4)
    assert students["S1003"].form_teacher_email == "raj.kumar@moe.edu.sg"  # only (non-primary)
    assert students["S1004"].class_name == "5 Integrity"  # homeroom beats the subject class
    assert students["S1005"].form_teacher_email is None
    assert students["S1006"].status == "left"  # enabledUser=false
    assert roster.departed_ids == frozenset({"S1006"})
    assert roster.schools == frozenset({"7001"}) and dict(roster.row_count_by_school) == {"7001": 6}


def test_zip_and_zip_with_folder(tmp_path: Path) -> None:
    flat, nested = tmp_path / "flat.zip", tmp_path / "nested.zip"
    with zipfile.ZipFile(flat, "w") as zf, zipfile.ZipFile(nested, "w") as zn:
        for path in sorted(SAMPLE.iterdir()):
            zf.write(path, path.name)
            zn.write(path, f"export-2025/{path.name.upper()}")
    expected = read(SAMPLE).students
    assert read(flat).students == expected
    assert read(nested).students == expected


def test_zip_without_users(tmp_path: Path) -> None:
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(SAMPLE / "orgs.csv", "orgs.csv")
    with pytest.raises(RosterError, match=r"set\.zip: has no users\.csv"):
        read(path)


@pytest.mark.parametrize(("name", "data"), [("users.csv", b"a,b\n"), ("x.zip", b"PK\x03\x04junk")])
def test_not_a_folder_or_zip(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(RosterError, match=r"folder or a \.zip"):
        read(tmp_path / name)


def test_missing_set(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="no such file"):
        read(tmp_path / "nothing")


@pytest.mark.parametrize("stem", ["orgs", "classes", "enrollments"])
def test_bulk_needs_every_file(tmp_path: Path, stem: str) -> None:
    with pytest.raises(RosterError, match=f"has no {stem}.csv"):
        read(make_set(tmp_path, drop=(stem,)))


def test_missing_required_column_names_file(tmp_path: Path) -> None:
    folder = make_set(tmp_path, users=[(",email,", ",mail,")])
    with pytest.raises(RosterError) as info:
        read(folder)
    assert "users.csv: missing required column 'email'" in str(info.value)


def test_no_manifest_means_bulk_with_warning(tmp_path: Path) -> None:
    roster = read(make_set(tmp_path, drop=("manifest",)))
    assert roster.is_delta is False and len(roster.students) == 6
    assert roster.warnings == ("manifest.csv: not found; the set is read as a bulk file",)


@pytest.mark.parametrize(
    "change",
    [("file.users,bulk", "file.users,delta"), ("file.users,bulk", "process_users,delta")],
)
def test_delta_from_manifest(tmp_path: Path, change: tuple[str, str]) -> None:
    folder = make_set(tmp_path, manifest=[change], users=[("u-s2,,", "u-s2,tobedeleted,")])
    roster = read(folder)
    assert roster.is_delta is True
    assert roster.departed_ids == frozenset({"S1002", "S1006"})
    assert "S1002" not in by_id(roster)
    assert roster.row_count_by_school["7001"] == 6  # the departure is still a row of the school


def test_manifest_absent_users(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="absent"):
        read(make_set(tmp_path, manifest=[("file.users,bulk", "file.users,absent")]))


def test_delta_without_enrollments_reports_students(tmp_path: Path) -> None:
    folder = make_set(
        tmp_path, drop=("enrollments",), manifest=[("file.users,bulk", "file.users,delta")]
    )
    roster = read(folder)
    assert roster.students == ()
    assert {e.student_id for e in roster.errors} == {f"S100{n}" for n in range(1, 7)}
    assert "a delta carries only changes" in roster.errors[0].reason
    assert any("enrollments.csv" in w for w in roster.warnings)


def test_identifier_falls_back_to_sourced_id(tmp_path: Path) -> None:
    roster = read(make_set(tmp_path, users=[(",S1001,", ",,")]))
    assert "u-s1" in by_id(roster)


def test_row_errors_name_users_csv_line(tmp_path: Path) -> None:
    roster = read(make_set(tmp_path, users=[("chen.xm@students.edu.sg", "chen.xm@")]))
    (err,) = roster.errors
    assert str(err) == "users.csv:7: email: 'chen.xm@' is not a valid email address"
    assert err.student_id == "S1004"


def test_values_from_other_files_name_their_origin(tmp_path: Path) -> None:
    roster = read(make_set(tmp_path, orgs=[("school,7001,", "school,,")]))
    assert {e.field for e in roster.errors} == {"school_code"}
    assert roster.errors[0].reason == "is required (from orgs.csv:3)"
    roster = read(make_set(tmp_path / "b", classes=[("6 Kindness,06", "6 Kindness,07")]))
    (err,) = roster.errors
    assert (err.line, err.field, err.student_id) == (9, "level", "S1006")
    assert err.reason == "'07' is not a primary level (P1-P6) (from classes.csv:5)"


def test_unknown_org_and_non_school_org(tmp_path: Path) -> None:
    folder = make_set(
        tmp_path,
        users=[('"org-moe,org-7001"', "org-x"), ("u-s2,,,true,org-7001", "u-s2,,,true,org-moe")],
    )
    roster = read(folder)
    assert [(e.line, e.field) for e in roster.errors] == [(4, "school_code"), (5, "school_code")]
    assert "'org-x' is not in orgs.csv" in roster.errors[0].reason
    assert "type 'school'" in roster.errors[1].reason


def test_unknown_district_is_ignored_when_a_school_is_found(tmp_path: Path) -> None:
    folder = make_set(tmp_path, orgs=[("org-moe,,,Ministry of Education,district,MOE,\n", "")])
    roster = read(folder)
    assert roster.errors == () and len(roster.students) == 6


def test_several_schools_resolved_by_class(tmp_path: Path) -> None:
    folder = make_set(tmp_path, users=[('"org-moe,org-7001"', '"org-7002,org-7001"')])
    append(folder, "orgs", "org-7002,,,Other Primary,school,7002,org-moe")
    assert by_id(read(folder))["S1001"].school_code == "7001"  # type: ignore[attr-defined]


def test_class_choice(tmp_path: Path) -> None:
    # S1004 in two homerooms; S1003 in two scheduled classes; S1005's only enrollment deleted
    folder = make_set(
        tmp_path,
        classes=[("CL5,scheduled", "CL5,homeroom")],
        enrollments=[
            ("e-6,,,c-5i,", "e-6,,,c-ma5,"),
            ("e-9,,,c-1a,", "e-9,tobedeleted,,c-1a,"),
        ],
    )
    append(folder, "classes", "c-ma5,,,Maths P5,05,m5,MA5,scheduled,,org-7001,term-2025,,,")
    append(folder, "classes", "c-ta5,,,Tamil P5,05,t5,TA5,scheduled,,org-7001,term-2025,,,")
    append(folder, "enrollments", "e-12,,,c-ta5,org-7001,u-s3,student,false,,")
    roster = read(folder)
    assert len(roster.errors) == 3  # one each: no second error for the level
    errors = {e.student_id: e for e in roster.errors}
    assert set(errors) == {"S1003", "S1004", "S1005"}
    assert errors["S1003"].reason == (
        "the student is in several classes and none is a homeroom ('Maths P5', 'Tamil P5')"
    )
    assert (
        "several homeroom classes ('5 Integrity', 'Chinese Language P5')" in errors["S1004"].reason
    )
    assert "no active class enrollment" in errors["S1005"].reason
    assert all(e.field == "class_name" and e.source == "users.csv" for e in errors.values())


def test_level_from_student_when_class_has_several_grades(tmp_path: Path) -> None:
    folder = make_set(tmp_path, classes=[("4 Courage,04,", '4 Courage,"04,05",')])
    students = by_id(read(folder))
    assert students["S1001"].level == "P4"  # type: ignore[attr-defined]
    folder = make_set(
        tmp_path / "b",
        classes=[("4 Courage,04,", '4 Courage,"04,05",')],
        users=[("S1001,tan.ahkow@students.edu.sg,,,,04", "S1001,tan.ahkow@students.edu.sg,,,,")],
    )
    errors = read(folder).errors
    assert [(e.student_id, e.field) for e in errors] == [("S1001", "level")]
    assert "several grades (04, 05)" in errors[0].reason


def test_first_teacher_when_none_primary_and_missing_teacher(tmp_path: Path) -> None:
    folder = make_set(
        tmp_path,
        enrollments=[
            ("e-2,,,c-4c,org-7001,u-t1,teacher,true", "e-2,,,c-4c,org-7001,u-t1,teacher,false")
        ],
    )
    assert by_id(read(folder))["S1001"].form_teacher_email == "raj.kumar@moe.edu.sg"  # type: ignore[attr-defined]
    folder = make_set(
        tmp_path / "b", enrollments=[("c-5i,org-7001,u-t2,teacher", "c-5i,org-7001,u-t9,teacher")]
    )
    errors = read(folder).errors
    assert [(e.student_id, e.field) for e in errors] == [
        ("S1003", "form_teacher_email"),
        ("S1004", "form_teacher_email"),
    ]
    assert "'u-t9' is not in users.csv" in errors[0].reason


def test_broken_rows_in_joined_files(tmp_path: Path) -> None:
    folder = make_set(tmp_path)
    with (folder / "enrollments.csv").open("ab") as out:
        out.write(b"e-13,,,c-4c,org-7001,u-s1,student,false\n")  # too few fields
        out.write(b"e-14,,,c-4c,org-7001,u-s\xe92,student,false,,\n")
    roster = read(folder)
    assert [(e.source, e.line, e.field) for e in roster.errors] == [
        ("enrollments.csv", 13, "fields"),
        ("enrollments.csv", 14, "encoding"),
    ]
    assert len(roster.students) == 6


def test_bad_utf8_student_row(tmp_path: Path) -> None:
    folder = make_set(tmp_path)
    data = (folder / "users.csv").read_bytes().replace(b"Chlo\xc3\xa9", b"Chlo\xe9")
    (folder / "users.csv").write_bytes(data)
    roster = read(folder)
    (err,) = roster.errors
    assert (err.source, err.line, err.field, err.student_id) == (
        "users.csv",
        8,
        "encoding",
        "S1005",
    )
    assert roster.row_count_by_school["7001"] == 6


def test_duplicate_students(tmp_path: Path) -> None:
    folder = make_set(tmp_path, users=[(",S1002,", ",S1001,")])
    roster = read(folder)
    assert [(e.line, e.field) for e in roster.errors] == [(4, "student_id"), (5, "student_id")]
    assert "also on line 5" in roster.errors[0].reason


def test_teacher_rows_are_not_students(tmp_path: Path) -> None:
    roster = read(make_set(tmp_path, users=[("lim.mei@moe.edu.sg", "not-an-email")]))
    # the teacher's bad email only hurts the students whose form teacher she is
    assert sorted(e.student_id or "" for e in roster.errors) == ["S1001", "S1002"]
    assert all(e.field == "form_teacher_email" for e in roster.errors)
    assert "(from users.csv:2)" in roster.errors[0].reason


def test_several_schools_without_a_deciding_class(tmp_path: Path) -> None:
    folder = make_set(
        tmp_path,
        users=[('"org-moe,org-7001"', '"org-7002,org-7001"')],
        classes=[
            (
                "c-4c,,,4 Courage,04,course-p4,4C,homeroom,,org-7001",
                "c-4c,,,4 Courage,04,course-p4,4C,homeroom,,",
            )
        ],
    )
    append(folder, "orgs", "org-7002,,,Other Primary,school,7002,org-moe")
    roster = read(folder)
    (err,) = roster.errors
    assert (err.student_id, err.field) == ("S1001", "school_code")
    assert "several schools (org-7002, org-7001)" in err.reason


def test_allowed_domains_apply_to_oneroster(tmp_path: Path) -> None:
    roster = read_roster(SAMPLE, "oneroster", allowed_domains=("other.edu.sg",))
    assert roster.students == () and {e.field for e in roster.errors} == {"email"}
