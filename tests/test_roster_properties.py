"""Property tests of the native reader: arbitrary rows never raise; good rows round-trip."""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimsdir.roster import Roster, RosterStudent, read_roster
from mimsdir.roster.validate import (
    clean_class,
    clean_email,
    clean_name,
    clean_school_code,
    clean_student_id,
    normalise_level,
)

HEADER = "student_id,email,given_name,family_name,school_code,level,class,form_teacher_email,status"
COLUMNS = HEADER.split(",")
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def read_bytes(folder: Path, data: bytes) -> Roster:
    path = folder / "roster.csv"
    path.write_bytes(data)
    return read_roster(path)


def assert_consistent(roster: Roster, data_lines: int) -> None:
    """Whatever the input, what comes out obeys the rules and points at real lines."""
    for s in roster.students:
        assert clean_student_id(s.student_id) == s.student_id
        assert clean_email(s.email) == s.email
        assert clean_name(s.given_name, required=True) == s.given_name
        assert clean_school_code(s.school_code) == s.school_code
        assert normalise_level(s.level) == s.level
        assert clean_class(s.class_name) == s.class_name
        assert s.status in ("active", "left")
        assert 2 <= s.line <= data_lines
    for e in roster.errors:
        assert 2 <= e.line <= data_lines
        assert "\n" not in str(e) and "\r" not in str(e)
    ids = [s.student_id.casefold() for s in roster.students]
    assert len(ids) == len(set(ids))
    assert roster.schools == set(roster.row_count_by_school)


@SETTINGS
@given(body=st.binary(max_size=600))
def test_arbitrary_bytes_after_the_header_never_raise(folder: Path, body: bytes) -> None:
    data = HEADER.encode() + b"\n" + body
    roster = read_bytes(folder, data)
    lines = len(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="").readlines())
    assert_consistent(roster, max(lines, 2))


_cell = st.text(max_size=12) | st.sampled_from(["S1", "a@b.sg", "P4", "4A", "ABC", "left", ""])


@SETTINGS
@given(
    rows=st.lists(st.lists(_cell, min_size=0, max_size=11), max_size=8),
    crlf=st.booleans(),
)
def test_arbitrary_cells_never_raise(folder: Path, rows: list[list[str]], crlf: bool) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    roster = read_bytes(folder, data)
    lines = len(io.StringIO(out.getvalue(), newline="").readlines())
    assert_consistent(roster, max(lines, 2))
    # no row is dropped silently: every non-blank record is a student or has an error at its line
    reader = csv.reader(io.StringIO(out.getvalue(), newline=""))
    next(reader)
    starts = []
    while True:
        first = reader.line_num + 1
        record = next(reader, None)
        if record is None:
            break
        if any(cell.strip() for cell in record):
            starts.append(first)
    seen = {s.line for s in roster.students} | {e.line for e in roster.errors}
    assert set(starts) <= seen


# --- round trip ----------------------------------------------------------------------------------


def _text(max_size: int) -> st.SearchStrategy[str]:
    chars = st.characters(
        exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="\ufeff\u200b"
    )
    return st.text(chars, min_size=1, max_size=max_size).filter(
        lambda s: s == s.strip() and s == unicodedata.normalize("NFC", s)
    )


_LEVEL_FORMS = ("P{n}", "p{n}", "Primary {n}", "PRI {n}", "{n}", "0{n}", "pri. {n}")
_STATUS_FORMS = {
    "active": ("", "active", "Active"),
    "left": ("left", "LEFT", "withdrawn", "graduated", "Inactive"),
}


@st.composite
def good_rows(draw: st.DrawFn) -> tuple[RosterStudent, list[str]]:
    """A valid student, and one of the many ways a school might write its row."""
    n = draw(st.integers(1, 6))
    status = draw(st.sampled_from(["active", "left"]))
    teacher = draw(st.none() | st.from_regex(r"[a-z]{1,8}@moe\.edu\.sg", fullmatch=True))
    student = RosterStudent(
        student_id=draw(st.from_regex(r"[A-Za-z0-9._-]{1,32}", fullmatch=True)),
        email=draw(
            st.from_regex(r"[a-z0-9]{1,10}([._+-][a-z0-9]{1,5})?@[a-z]{1,8}\.sg", fullmatch=True)
        ),
        given_name=draw(_text(64)),
        family_name=draw(st.just("") | _text(64)),
        school_code=draw(st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True)),
        level=f"P{n}",
        class_name=draw(_text(32)),
        form_teacher_email=teacher,
        status=status,
        source="roster.csv",
        line=0,
    )
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    row = [
        pad + student.student_id + pad,
        draw(st.sampled_from([str.lower, str.upper]))(student.email),
        pad + student.given_name,
        student.family_name + pad,
        draw(st.sampled_from([str.lower, str.upper]))(student.school_code),
        draw(st.sampled_from(_LEVEL_FORMS)).format(n=n),
        pad + student.class_name + pad,
        (teacher or "").upper(),
        draw(st.sampled_from(_STATUS_FORMS[status])),
    ]
    return student, row


@SETTINGS
@given(
    rows=st.lists(
        good_rows(),
        max_size=6,
        unique_by=(lambda r: r[0].student_id.casefold(), lambda r: r[0].email),
    ),
    bom=st.booleans(),
    crlf=st.booleans(),
    order=st.permutations(range(len(COLUMNS))),
)
def test_good_rows_round_trip(
    folder: Path,
    rows: list[tuple[RosterStudent, list[str]]],
    bom: bool,
    crlf: bool,
    order: list[int],
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow([COLUMNS[i].upper() for i in order])
    for _, row in rows:
        writer.writerow([row[i] for i in order])
    data = (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")
    roster = read_bytes(folder, data)
    assert roster.errors == () and roster.warnings == ()
    expected = [dataclasses.replace(s, line=n + 2) for n, (s, _) in enumerate(rows)]
    assert list(roster.students) == expected
    assert roster.departed_ids == {s.student_id for s, _ in rows if s.status == "left"}


# --- the other formats never raise on row content either --------------------------------------

DATA = Path(__file__).parent / "data" / "roster"


@SETTINGS
@given(body=st.binary(max_size=400))
def test_google_rows_never_raise(folder: Path, body: bytes) -> None:
    data = (DATA / "google.csv").read_bytes() + body
    path = folder / "google.csv"
    path.write_bytes(data)
    roster = read_roster(path, "google")
    lines = len(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="").readlines())
    assert_consistent(roster, lines)


@SETTINGS
@given(
    stem=st.sampled_from(["users", "orgs", "classes", "enrollments"]),
    body=st.binary(max_size=300)
    | st.text(alphabet='u-s1c4org7,"\n\r tobedeleted', max_size=80).map(str.encode),
)
def test_oneroster_rows_never_raise(folder: Path, stem: str, body: bytes) -> None:
    target = folder / "set"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(DATA / "oneroster", target)
    with (target / f"{stem}.csv").open("ab") as out:
        out.write(body)
    roster = read_roster(target, "oneroster")
    longest = max(
        len(io.StringIO(p.read_bytes().decode("utf-8", "surrogateescape"), newline="").readlines())
        for p in target.iterdir()
    )
    assert all(s.source == "users.csv" for s in roster.students)
    assert_consistent(roster, longest)
