"""The Google Admin console user export reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimsdir.roster import DEFAULT_OU_PATTERN, Roster, RosterError, read_roster

DATA = Path(__file__).parent / "data" / "roster"
HEADER = (
    "First Name [Required],Last Name [Required],Email Address [Required],Password [Required],"
    "Org Unit Path [Required],Employee ID,Manager Email,Status [READ ONLY]"
)


def read(tmp_path: Path, *rows: str | bytes, header: str = HEADER, **kwargs: object) -> Roster:
    lines = [header.encode(), *(r.encode() if isinstance(r, str) else r for r in rows)]
    path = tmp_path / "export.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return read_roster(path, "google", **kwargs)  # type: ignore[arg-type]


def test_sample_export() -> None:
    roster = read_roster(DATA / "google.csv", "google")
    assert roster.fmt == "google" and roster.errors == () and roster.is_delta is False
    assert [s.student_id for s in roster.students] == [f"S100{n}" for n in range(1, 7)]
    first = roster.students[0]
    assert (first.school_code, first.level, first.class_name) == ("7001", "P4", "4 Courage")
    assert first.form_teacher_email == "lim.mei@moe.edu.sg"
    assert (first.source, first.line) == ("google.csv", 3)
    assert roster.students[1].form_teacher_email == "lim.mei@moe.edu.sg"  # lower-cased
    assert roster.students[-1].status == "left"  # Suspended
    assert roster.departed_ids == frozenset({"S1006"})
    # staff and the bare /Students OU are skipped and counted, never errors
    (warning,) = roster.warnings
    assert "3 user(s) skipped" in warning and "'/Staff'" in warning
    assert roster.schools == frozenset({"7001"}) and dict(roster.row_count_by_school) == {"7001": 6}


def test_employee_id_required_per_row(tmp_path: Path) -> None:
    roster = read(tmp_path, "Ah Kow,Tan,a@s.sg,****,/Students/ABC/P4/4A,,,Active")
    (err,) = roster.errors
    assert (err.line, err.field, err.student_id, err.email) == (2, "student_id", None, "a@s.sg")
    assert roster.schools == frozenset({"ABC"})


def test_employee_id_column_required(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="'Employee ID'"):
        read(
            tmp_path,
            header="First Name [Required],Last Name [Required],"
            "Email Address [Required],Org Unit Path [Required]",
        )


def test_header_names_matched_before_bracket(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "S1,/Students/ABC/Primary 2/2 Joy,Mei,Lim,A@S.SG",
        header="employee id,ORG UNIT PATH,first name [required],Last Name,email address [x]",
    )
    (student,) = roster.students
    assert (student.student_id, student.level, student.email) == ("S1", "P2", "a@s.sg")
    assert student.status == "active" and student.form_teacher_email is None


def test_unknown_columns_warn_but_standard_ones_do_not(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "Mei,Lim,a@s.sg,****,/Students/ABC/P4/4A,S1,,Active,x,y",
        header=HEADER + ",Recovery Phone [MUST BE IN THE E.164 FORMAT],StudentInfo.House",
    )
    assert roster.warnings == ("export.csv: unknown column 'StudentInfo.House' ignored",)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Active", "active"), ("", "active"), ("Suspended", "left"), ("ARCHIVED", "left")],
)
def test_status_mapping(tmp_path: Path, status: str, expected: str) -> None:
    roster = read(tmp_path, f"Mei,Lim,a@s.sg,****,/Students/ABC/P4/4A,S1,,{status}")
    assert roster.students[0].status == expected


def test_unknown_status_is_an_error(tmp_path: Path) -> None:
    roster = read(tmp_path, "Mei,Lim,a@s.sg,****,/Students/ABC/P4/4A,S1,,Pending")
    assert roster.errors[0].field == "status"


def test_matching_ou_with_bad_parts_is_an_error(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "Mei,Lim,a@s.sg,****,/Students/ABC/Staffroom/4A,S1,,Active",
        "Mei,Lim,b@s.sg,****,/Students/A-B/P4/4A,S2,,Active",
    )
    assert [(e.line, e.field) for e in roster.errors] == [(2, "level"), (3, "school_code")]
    assert roster.schools == frozenset({"ABC"})


def test_custom_ou_pattern(tmp_path: Path) -> None:
    pattern = r"/Schools/(?P<school>\w+)/Students/(?P<level>P\d)/(?P<class>[^/]+)"
    roster = read(
        tmp_path,
        "Mei,Lim,a@s.sg,****,/Schools/XYZ/Students/P3/3 Hope,S1,t@moe.sg,Active",
        "Raj,K,r@s.sg,****,/Schools/XYZ/Staff,T1,,Active",
        "Old,Path,o@s.sg,****,/Students/ABC/P4/4A,S9,,Active",
        google_ou_pattern=pattern,
    )
    (student,) = roster.students
    assert (student.school_code, student.level, student.class_name) == ("XYZ", "P3", "3 Hope")
    assert "2 user(s) skipped" in roster.warnings[0]


def test_pattern_must_match_whole_path(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "Mei,Lim,a@s.sg,****,/Archive/Students/ABC/P4/4A,S1,,Active",
        "Mei,Lim,b@s.sg,****,/Students/ABC/P4/4A/Boarders,S2,,Active",
        google_ou_pattern=r"/Students/(?P<school>[^/]+)/(?P<level>[^/]+)/(?P<class>[^/]+)",
    )
    assert roster.students == () and roster.errors == ()
    assert "2 user(s) skipped" in roster.warnings[0]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("(?P<school>[", "not a valid regex"), (r"/S/(?P<school>\w+)/(?P<level>\w+)", "(?P<class>")],
)
def test_bad_pattern(tmp_path: Path, pattern: str, message: str) -> None:
    with pytest.raises(RosterError) as info:
        read(tmp_path, google_ou_pattern=pattern)
    assert message in str(info.value)


def test_default_pattern_is_exported() -> None:
    assert "(?P<school>" in DEFAULT_OU_PATTERN


def test_bad_utf8_student_row_is_an_error_staff_row_is_skipped(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        b"Jos\xe9,Tan,a@s.sg,****,/Students/ABC/P4/4A,S1,,Active",
        b"Jos\xe9,Lim,t@s.sg,****,/Staff,T1,,Active",
        b"Mei,Lim,m@s.sg,****,/Students/ABC/P\xe94/4A,S3,,Active",
    )
    assert roster.students == ()
    assert [(e.line, e.field, e.student_id) for e in roster.errors] == [
        (2, "encoding", "S1"),
        (4, "encoding", "S3"),
    ]
    assert roster.schools == frozenset({"ABC"})  # row 2's OU was readable


def test_duplicates_within_students_only(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "Mei,Lim,a@s.sg,****,/Students/ABC/P4/4A,S1,,Active",
        "Mei,Lim,b@s.sg,****,/Staff,S1,,Active",  # not a student: no clash
        "Mei,Lim,c@s.sg,****,/Students/ABC/P4/4A,S1,,Active",
    )
    assert roster.students == ()
    assert [(e.line, e.reason) for e in roster.errors] == [
        (2, "duplicate student_id 'S1': also on line 4"),
        (4, "duplicate student_id 'S1': also on line 2"),
    ]
