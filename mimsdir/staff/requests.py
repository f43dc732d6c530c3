"""The "Student Password Reset Form": its CSV export, parsed and matched to students.

Parents and teachers fill in a form (Google Forms, Microsoft Forms, a spreadsheet); ICT staff
export it as CSV and run ``mimsdir requests import``. Forms are made by people, so the reader
is tolerant about header names (``HEADER_ALIASES``, then key words) and strict about rows: a
row is reset only when it names exactly one active student.

Parsing and matching are pure: matching takes two look-up functions, so it is tested without
a server and the CLI passes functions that search the directory (with a cache per school).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mimsdir.errors import UsageError
from mimsdir.staff.model import RowError, StudentRecord, normalise_name

FIELDS = ("timestamp", "student_email", "student_name", "class_name", "school",
          "requester_name", "requester_email")

#: Header names accepted for each field, after ``normalise_header`` (lower case, "'s" and
#: anything in brackets dropped, punctuation as spaces). Documented in docs/operations.md.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "date", "submitted at", "submission time",
                  "completion time", "start time", "date submitted"),
    "student_email": ("student email", "student email address", "student login id",
                      "student login", "login id", "login", "student mims email", "mims email",
                      "icon email", "student icon email", "student id email"),
    "student_name": ("student name", "student full name", "name of student",
                     "full name of student", "student", "name", "full name"),
    "class_name": ("class", "student class", "class name", "form class"),
    "school": ("school", "school code", "student school", "school name"),
    "requester_name": ("requester name", "requester", "requested by", "your name",
                       "name of requester", "parent name", "guardian name", "teacher name",
                       "submitted by", "parent guardian name", "requestor name", "requestor"),
    "requester_email": ("requester email", "requester email address", "your email",
                        "your email address", "email address", "email", "parent email",
                        "guardian email", "teacher email", "requestor email",
                        "email of requester"),
}

_REQUESTER_WORDS = {"requester", "requestor", "your", "parent", "guardian", "teacher",
                    "requested", "submitted"}


def normalise_header(header: str) -> str:
    """``"Student's Email (iCON)"`` -> ``"student email"``."""
    text = header.replace("\ufeff", "").casefold().replace("\u2019", "'")
    text = re.sub(r"\([^)]*\)|\[[^]]*\]", " ", text)
    text = re.sub(r"'s\b", "", text)
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def field_for(header: str) -> str | None:
    """Which field a header is: an alias first, else by its key words; None if unknown."""
    norm = normalise_header(header)
    for name, aliases in HEADER_ALIASES.items():
        if norm in aliases:
            return name
    words = set(norm.split())
    is_requester = bool(words & _REQUESTER_WORDS)
    is_email = bool(words & {"email", "mail", "login"})
    if is_requester:
        if is_email:
            return "requester_email"
        return "requester_name" if "name" in words else None
    if "student" in words and is_email:
        return "student_email"
    if "student" in words and "name" in words:
        return "student_name"
    if "class" in words:
        return "class_name"
    if "school" in words:
        return "school"
    if "timestamp" in words:
        return "timestamp"
    return None


@dataclass(frozen=True)
class FormRow:
    """One request: where it is in the file, and what it says (trimmed)."""

    line: int
    timestamp: str = ""
    student_email: str = ""
    student_name: str = ""
    class_name: str = ""
    school: str = ""
    requester_name: str = ""
    requester_email: str = ""

    @property
    def requester(self) -> str:
        if self.requester_name and self.requester_email:
            return f"{self.requester_name} <{self.requester_email}>"
        return self.requester_name or self.requester_email or "-"

    @property
    def names_student(self) -> str:
        """How the row names the student, for messages."""
        if self.student_email:
            return self.student_email
        return f"{self.student_name!r} ({self.class_name})"


@dataclass
class FormFile:
    source: str
    rows: list[FormRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # field -> header as written
    ignored: list[str] = field(default_factory=list)  # headers not understood


def parse_form(text: str, source: str) -> FormFile:
    """Parse the CSV text (BOM, CRLF, quoted multi-line answers all fine).

    A file that cannot name a student (no student email column and no student name + class
    columns) is a usage error naming the headers found. A row that names nobody is a row
    error ``FILE:LINE``; blank rows are skipped.
    """
    result = FormFile(source)
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    index: dict[str, int] = {}
    prev = 0
    for cells in reader:
        line, prev = prev + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = cells
            for i, name in enumerate(header):
                fld = field_for(name)
                if fld is None:
                    if name.strip():
                        result.ignored.append(name.strip())
                    continue
                if fld in index:
                    raise UsageError(
                        f"{source}:{line}: columns {header[index[fld]].strip()!r} and "
                        f"{name.strip()!r} both look like the {fld.replace('_', ' ')}")
                index[fld] = i
                result.columns[fld] = name.strip()
            has_email = "student_email" in index
            has_name = "student_name" in index and "class_name" in index
            if not (has_email or has_name):
                found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
                raise UsageError(
                    f"{source}:{line}: no student email column and no student name + class "
                    f"columns (headers found: {found}); see docs/operations.md")
            continue
        values = {fld: (cells[i].strip() if i < len(cells) else "") for fld, i in index.items()}
        row = FormRow(line=line, **values)
        where = f"{source}:{line}"
        if row.student_email and "@" not in row.student_email:
            result.errors.append(RowError(
                where, f"field {result.columns['student_email']!r}: not an email address: "
                       f"{row.student_email!r}"))
            continue
        if not row.student_email and not (row.student_name and row.class_name):
            result.errors.append(RowError(
                where, "no student email, and no student name with a class"))
            continue
        result.rows.append(row)
    if header is None:
        raise UsageError(f"{source}: empty file (no header row)")
    return result


# -- matching -------------------------------------------------------------------------------

@dataclass
class Match:
    row: FormRow
    student: StudentRecord


@dataclass
class MatchResult:
    matched: list[Match] = field(default_factory=list)
    duplicates: list[tuple[FormRow, int]] = field(default_factory=list)  # (row, first line)
    errors: list[RowError] = field(default_factory=list)


def _name_keys(s: StudentRecord) -> set[str]:
    keys = {s.name, s.display_name, f"{s.given_name} {s.surname}", f"{s.surname} {s.given_name}"}
    return {normalise_name(k) for k in keys if k.strip()}


def match_by_name(row: FormRow, school_students: Sequence[StudentRecord]
                  ) -> tuple[StudentRecord | None, str]:
    """The one active student of the school with this name in this class; else a reason."""
    want_name, want_class = normalise_name(row.student_name), normalise_name(row.class_name)
    in_class = [s for s in school_students if s.active
                and normalise_name(s.class_name) == want_class]
    hits = [s for s in in_class if want_name in _name_keys(s)]
    if len(hits) == 1:
        return hits[0], ""
    if hits:
        return None, (f"ambiguous: {len(hits)} active students named {row.student_name!r} "
                      f"in class {row.class_name}")
    if not in_class:
        return None, f"no active student in class {row.class_name!r}"
    return None, f"no active student named {row.student_name!r} in class {row.class_name}"


def match_rows(
    form: FormFile,
    by_email: Callable[[str], StudentRecord | None],
    school_students: Callable[[str], Sequence[StudentRecord]],
    default_school: str | None = None,
) -> MatchResult:
    """Match each row to exactly one active student.

    By the student's email (any status is looked up, so a disabled student is reported as
    such); else, or if the email finds nobody, by name + class within the row's school (the
    School column, else ``default_school``). A student requested twice is reset once: the
    later rows are listed as duplicates, not errors.
    """
    result = MatchResult()
    first_line: dict[str, int] = {}
    for row in form.rows:
        where = f"{form.source}:{row.line}"
        student: StudentRecord | None = None
        reasons: list[str] = []
        blocked = False  # the email names a student who is not active: do not guess by name
        if row.student_email:
            found = by_email(row.student_email.lower())
            if found is None:
                reasons.append(f"no student with login ID {row.student_email!r}")
            elif not found.active:
                reasons.append(f"{found.uid} ({row.student_email}) is {found.status}: "
                               "not reset")
                blocked = True
            else:
                student = found
        if student is None and not blocked and row.student_name and row.class_name:
            school = row.school or default_school
            if not school:
                reasons.append("no school: add a School column or pass --school")
            else:
                student, why = match_by_name(row, school_students(school))
                if student is None:
                    reasons.append(f"{why} of school {school}")
        if student is None:
            result.errors.append(RowError(where, "; ".join(reasons) or "no match"))
            continue
        key = student.dn.lower()
        if key in first_line:
            result.duplicates.append((row, first_line[key]))
            continue
        first_line[key] = row.line
        result.matched.append(Match(row, student))
    return result
