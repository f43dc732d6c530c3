"""The native roster CSV reader (design-notes §7): rows, errors, line numbers, scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimsdir.roster import Roster, RosterError, RowError, read_roster

HEADER = "student_id,email,given_name,family_name,school_code,level,class,form_teacher_email,status"
GOOD = "S1,a1@s.edu.sg,Ah Kow,Tan,ABC,P4,4A,t1@moe.edu.sg,"


def write(tmp_path: Path, text: str | bytes, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def read(tmp_path: Path, *lines: str, **kwargs: object) -> Roster:
    return read_roster(write(tmp_path, "\n".join(lines) + "\n"), **kwargs)  # type: ignore[arg-type]


def errors_at(roster: Roster) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in roster.errors]


def test_good_rows(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, GOOD, "S2, A2@S.edu.sg ,Mei, Lim ,abc,primary 5,5 Integrity,,")
    assert roster.errors == () and roster.warnings == ()
    first, second = roster.students
    assert first.student_id == "S1" and first.form_teacher_email == "t1@moe.edu.sg"
    assert (first.source, first.line, first.status) == ("roster.csv", 2, "active")
    assert second.email == "a2@s.edu.sg" and second.family_name == "Lim"
    assert (second.school_code, second.level, second.class_name) == ("ABC", "P5", "5 Integrity")
    assert second.form_teacher_email is None and second.line == 3
    assert roster.fmt == "native" and roster.is_delta is False
    assert roster.schools == frozenset({"ABC"})
    assert dict(roster.row_count_by_school) == {"ABC": 2}


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        "student_id,email,given_name,family_name,school_code,level,class",
        "S1,a@s.sg,A,B,X1,P1,1A",
    )
    (student,) = roster.students
    assert student.form_teacher_email is None and student.status == "active"


def test_header_case_spaces_and_order(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        " CLASS , Level,School_Code,Family_Name,GIVEN_NAME,Email, Student_ID ",
        "4A,4,abc,Tan,Ah Kow,a@s.sg,S1",
    )
    assert roster.errors == ()
    assert roster.students[0].class_name == "4A" and roster.students[0].level == "P4"


def test_unknown_columns_warn_once(tmp_path: Path) -> None:
    roster = read(
        tmp_path, HEADER + ",nric,nric,house", GOOD + ",x,y,z", GOOD.replace("1", "9") + ",,,"
    )
    assert len(roster.students) == 2
    assert roster.warnings == (
        "roster.csv: unknown column 'nric' ignored",
        "roster.csv: unknown column 'house' ignored",
    )


def test_bom_and_crlf(tmp_path: Path) -> None:
    data = ("\ufeff" + HEADER + "\r\n" + GOOD + "\r\n" + GOOD.replace("1", "2") + "\r\n").encode()
    roster = read_roster(write(tmp_path, data))
    assert roster.errors == () and roster.warnings == ()
    assert [s.line for s in roster.students] == [2, 3]
    assert roster.students[0].student_id == "S1"


def test_bad_utf8_row_is_reported_with_its_line(tmp_path: Path) -> None:
    data = (
        HEADER.encode()
        + b"\n"
        + GOOD.encode()
        + b"\n"
        + b"S2,a2@s.sg,Jos\xe9,Tan,ABC,P4,4A,,\n"  # Windows-1252 e-acute
        + b"S3,a3@s.sg,Mei,Lim,ABC,P4,4A,,\n"
    )
    roster = read_roster(write(tmp_path, data))
    assert [s.student_id for s in roster.students] == ["S1", "S3"]
    (err,) = roster.errors
    assert (err.line, err.field, err.student_id, err.email) == (3, "encoding", "S2", "a2@s.sg")
    assert "given_name" in err.reason
    assert str(err).startswith("roster.csv:3: encoding: ")
    assert roster.row_count_by_school["ABC"] == 3  # the bad row still counts for the shrink guard


def test_quoted_multiline_field_keeps_line_numbers(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        HEADER,
        'S1,a1@s.sg,"Ah',
        'Kow",Tan,ABC,P4,4A,,',  # the name spans lines 2-3 (and is rejected: control char)
        GOOD.replace("S1", "S2").replace("a1@", "a2@"),
        '"S3","a3@s.sg","Mei","Lim","ABC","P4","4A","",""',
        "S4,x@,A,B,ABC,P4,4A,,",
    )
    assert [(s.student_id, s.line) for s in roster.students] == [("S2", 4), ("S3", 5)]
    assert errors_at(roster) == [(2, "given_name"), (6, "email")]


def test_blank_lines_skipped_silently(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "", GOOD, "   ", ",,,,,,,,", "", GOOD.replace("1", "2"))
    assert roster.errors == ()
    assert [s.line for s in roster.students] == [3, 7]


def test_wrong_field_count_is_an_error(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "S1,a1@s.sg,Ah Kow,Tan, Jr,ABC,P4,4A,,", "S2,a2@s.sg,Mei")
    assert roster.students == ()
    assert errors_at(roster) == [(2, "fields"), (3, "fields")]
    assert roster.errors[0].student_id == "S1" and roster.errors[0].email == "a1@s.sg"
    assert "10 fields" in roster.errors[0].reason and "9" in roster.errors[0].reason
    # a shifted row's school column is not trusted for scope
    assert roster.schools == frozenset()


def test_unclosed_quote_is_reported_at_its_start(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, GOOD, 'S2,a2@s.sg,"Mei,Lim,ABC,P4,4A,,', GOOD.replace("1", "3"))
    assert [s.student_id for s in roster.students] == ["S1"]
    (err,) = roster.errors
    assert err.line == 3 and err.field == "fields" and "unclosed quote" in err.reason


def test_every_violation_of_a_row_is_reported(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "S 1,x@,,Tan,A-B,P7,,t1@,gone")
    assert roster.students == ()
    assert [e.field for e in roster.errors] == [
        "student_id",
        "email",
        "given_name",
        "school_code",
        "level",
        "class_name",
        "form_teacher_email",
        "status",
    ]
    assert all(e.line == 2 and e.student_id == "S 1" and e.email == "x@" for e in roster.errors)
    assert roster.schools == frozenset()  # no valid school named


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("S1,x@,A,B,ABC,P4,4A,,", "email", "'x@' is not a valid email address"),
        ("S1,a@s.sg,,B,ABC,P4,4A,,", "given_name", "is required"),
        ("S1,a@s.sg,A,B,ABC,Sec 1,4A,,", "level", "'Sec 1' is not a level"),
        ("S1,a@s.sg,A,B,ABC,P4,,,", "class_name", "is required"),
        ("S1,a@s.sg,A,B,ABC,P4,4A,,expelled", "status", "'expelled' is not a status"),
        ("S1,a@s.sg,A,B,ABC,P4,4A,lim,", "form_teacher_email", "'lim' is not a valid email"),
        (",a@s.sg,A,B,ABC,P4,4A,,", "student_id", "is required"),
    ],
)
def test_single_rule_errors(tmp_path: Path, row: str, field: str, reason: str) -> None:
    roster = read(tmp_path, HEADER, row)
    (err,) = roster.errors
    assert (err.line, err.field) == (2, field)
    assert err.reason.startswith(reason)
    assert str(err) == f"roster.csv:2: {field}: {err.reason}"
    assert roster.schools == frozenset({"ABC"})  # a bad row with a valid school still counts


def test_mononymous_student(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "S1,muthu@s.sg,Muthu,,ABC,P2,2B,,")
    assert roster.students[0].family_name == "" and roster.students[0].given_name == "Muthu"


def test_status_left_is_a_departure(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, GOOD, "S2,a2@s.sg,Mei,Lim,ABC,P6,6A,,Graduated")
    assert [s.status for s in roster.students] == ["active", "left"]
    assert roster.departed_ids == frozenset({"S2"})


def test_duplicate_ids_flag_every_row(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        HEADER,
        "S1,a1@s.sg,A,B,ABC,P4,4A,,",
        "S2,a2@s.sg,A,B,ABC,P4,4A,,",
        "s1,a3@s.sg,A,B,ABC,P4,4A,,",  # uid matching is case-insensitive in LDAP
        "S1,a4@s.sg,A,B,ABC,P9,4A,,",  # also broken otherwise: still takes part
    )
    assert [s.student_id for s in roster.students] == ["S2"]
    dups = [e for e in roster.errors if e.reason.startswith("duplicate")]
    assert [(e.line, e.field) for e in dups] == [
        (2, "student_id"),
        (4, "student_id"),
        (5, "student_id"),
    ]
    assert dups[0].reason == "duplicate student_id 'S1': also on lines 4, 5"
    assert "lines 2, 5" in dups[1].reason and "lines 2, 4" in dups[2].reason
    assert {e.student_id for e in dups} == {"S1", "s1"}


def test_duplicate_emails_flag_every_row(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        HEADER,
        "S1,same@s.sg,A,B,ABC,P4,4A,,",
        GOOD.replace("S1", "S5"),
        "S2,SAME@s.sg,A,B,ABC,P4,4A,,",
    )
    assert [s.student_id for s in roster.students] == ["S5"]
    assert [(e.line, e.field, e.student_id) for e in roster.errors] == [
        (2, "email", "S1"),
        (4, "email", "S2"),
    ]
    assert "also on line 4" in roster.errors[0].reason


def test_allowed_domains(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        HEADER,
        GOOD,
        "S2,a2@gmail.com,A,B,ABC,P4,4A,t@moe.edu.sg,",
        allowed_domains=("s.edu.sg",),
    )
    assert [s.student_id for s in roster.students] == ["S1"]
    assert roster.errors[0].field == "email" and "allowed domain" in roster.errors[0].reason


def test_schools_and_counts_cover_bad_rows(tmp_path: Path) -> None:
    roster = read(
        tmp_path,
        HEADER,
        GOOD,
        "S2,a2@s.sg,A,B,xyz,P9,4A,,",
        "S3,a3@s.sg,A,B,xyz,P9,4A,,",
        "S4,a4@s.sg,A,B,bad code,P4,4A,,",
    )
    assert roster.schools == frozenset({"ABC", "XYZ"})
    assert dict(roster.row_count_by_school) == {"ABC": 1, "XYZ": 2}
    assert roster.protected_ids == frozenset({"S2", "S3", "S4"})


def test_header_only_is_an_empty_roster(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "", "")
    assert roster.students == () and roster.errors == () and roster.schools == frozenset()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "no header"),
        (b"\r\n\n  \n", "no header"),
        (b"student_id,email,given_name,family_name,school_code,level\n", "'class'"),
        (b"name,age\nx,1\n", "missing required columns 'student_id', 'email'"),
        (HEADER.replace(",", ";").encode() + b"\n", "semicolons"),
        (HEADER.encode() + b",email\n", "appears twice"),
        (b"PK\x03\x04rest-of-an-xlsx", "Excel"),
        ("\ufeffstudent_id".encode("utf-16"), "UTF-16"),
        (b"%PDF-1.7\n", "PDF"),
        (b"student_id,em\xe9il\n", "not UTF-8"),
    ],
)
def test_whole_file_problems_raise(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(RosterError) as info:
        read_roster(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text
    assert info.value.code in ("roster", "empty-roster")
    # an empty or blank file is the classic truncated export: refused (exit 3), not a usage error
    assert (info.value.code == "empty-roster") == (info.value.exit_code == 3)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="no such file"):
        read_roster(tmp_path / "nope.csv")
    with pytest.raises(RosterError, match="is a directory"):
        read_roster(tmp_path)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown roster format"):
        read_roster("x.csv", "xlsx")


def test_huge_field_is_a_row_error(tmp_path: Path) -> None:
    roster = read(
        tmp_path, HEADER, "S1,a@s.sg," + "x" * 200_000 + ",B,ABC,P4,4A,,", GOOD.replace("1", "2")
    )
    assert [s.student_id for s in roster.students] == ["S2"]
    assert roster.errors[0].line == 2 and roster.errors[0].field == "csv"


def test_row_errors_sorted_and_printable(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, "S1,x@,A,B,ABC,P4,4A,,", "S2,a@s.sg,A\x01,B,ABC,P4,4A,,")
    lines = [str(e) for e in roster.errors]
    assert lines == [
        "roster.csv:2: email: 'x@' is not a valid email address",
        "roster.csv:3: given_name: 'A\\x01' contains a control character",
    ]
    assert all(isinstance(e, RowError) for e in roster.errors)


def test_roster_is_immutable(tmp_path: Path) -> None:
    roster = read(tmp_path, HEADER, GOOD)
    with pytest.raises(AttributeError):
        roster.students = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        roster.row_count_by_school["ABC"] = 5  # type: ignore[index]
