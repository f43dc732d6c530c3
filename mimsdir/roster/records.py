"""The values a roster reader hands to the sync: students, rejected rows, and the file's scope.

Every reader (native, OneRoster, Google) produces these same types, so the sync never needs to know
which format a roster came in. All of them are frozen: a roster read once is a fact about a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mimsdir.errors import ExitCode, MimsError

ACTIVE = "active"
LEFT = "left"


class RosterError(MimsError):
    """The whole file cannot be read as a roster (missing, empty, no header, missing column...).

    Row problems are never raised: they become `RowError` values so that one bad row cannot stop
    the rest of a school's sync. The message is one line and names the file (and the column).
    """

    code = "roster"
    exit_code = ExitCode.USAGE


class EmptyRosterError(RosterError):
    """A 0-byte (or blank) file: the classic truncated export. Refused like a safety limit."""

    code = "empty-roster"
    exit_code = ExitCode.REFUSED


@dataclass(frozen=True, slots=True)
class RosterStudent:
    """One validated student row, already in the form the directory stores.

    `family_name` may be empty (mononymous names); `level` is always "P1".."P6"; `email` and
    `form_teacher_email` are lower-case; `source`/`line` say where the row was, for reports.
    """

    student_id: str
    email: str
    given_name: str
    family_name: str
    school_code: str
    level: str
    class_name: str
    form_teacher_email: str | None
    status: str
    source: str
    line: int
    # The digest of the row's raw cells (``table.stream_table``), when the sync asked for it:
    # remembered for a row the student is found to match, so the next night can skip the rules.
    raw: bytes | None = field(default=None, compare=False, repr=False)


class Known(Protocol):
    """What the last run recorded of the student a row matched: enough to take part in the
    cross-row rules (duplicate ids and emails), the scope and the counts."""

    @property
    def uid(self) -> str: ...
    @property
    def dn(self) -> str: ...
    @property
    def mail(self) -> str | None: ...
    @property
    def school(self) -> str: ...
    @property
    def teacher(self) -> str | None: ...  # the form teacher's email the row named
    @property
    def raw(self) -> bytes | None: ...  # the digest of that row's raw cells


# Not frozen, like sync.model.Remembered: one a row of a national roster, and a frozen
# dataclass's __init__ costs four times a plain one's. Never written after it is made.
@dataclass(slots=True, eq=False)
class QuietRow:
    """A row whose raw cells are, byte for byte, those of a row the last run found its student
    to match (``known``): the field rules gave that row a clean bill and would give this one
    the same, so they are not run again (``sync/run.py`` decides whether the student is still
    as the last run left it; if not, the row is read again in full)."""

    source: str
    line: int
    known: Known

    @property
    def raw(self) -> bytes:
        """The digest of the row's raw cells: the one the last run recorded (it matched)."""
        assert self.known.raw is not None
        return self.known.raw

    # What the cross-row rules read of a row (``assemble``): a quiet row's id and email are
    # its student's (the rules passed these cells and found that student), so half a million
    # quiet rows need no record of their own while duplicates are looked for.
    departs = False
    student = None
    errors: tuple[RowError, ...] = ()

    @property
    def raw_id(self) -> str:
        return self.known.uid

    @property
    def raw_email(self) -> str:
        return (self.known.mail or "").lower()

    @property
    def student_id(self) -> str:
        return self.known.uid

    @property
    def email(self) -> str | None:
        return (self.known.mail or "").lower() or None

    @property
    def school_code(self) -> str:
        return self.known.school


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that was skipped, and why.

    `student_id`/`email` are what the row names when they could be read at all (even if invalid):
    the sync must never disable a student whose row it could not use.
    """

    source: str
    line: int
    field: str
    reason: str
    student_id: str | None = None
    email: str | None = None

    def __str__(self) -> str:
        """One line, `file:line: field: reason`, the way compilers report, so editors can jump."""
        text = f"{self.source}:{self.line}: {self.field}: {self.reason}"
        return text.replace("\r", " ").replace("\n", " ")


@dataclass(frozen=True, slots=True)
class Roster:
    """Everything a reader learned from one roster file (or OneRoster set).

    `schools` and `row_count_by_school` include rows that had errors (when their school code was
    valid): a school whose rows are all broken is still covered, and the shrink guard must count
    those rows as present rather than as students who left.
    """

    students: tuple[RosterStudent, ...]
    errors: tuple[RowError, ...]
    warnings: tuple[str, ...]
    schools: frozenset[str]
    fmt: str
    is_delta: bool
    departed_ids: frozenset[str]
    row_count_by_school: Mapping[str, int]
    # Rows not checked again because they are last night's (``QuietRow``): also students.
    quiet: tuple[QuietRow, ...] = ()

    @property
    def protected_ids(self) -> frozenset[str]:
        """Ids named by rejected rows: the sync must not disable these students this run."""
        return frozenset(e.student_id for e in self.errors if e.student_id)

    @property
    def protected_emails(self) -> frozenset[str]:
        """Emails named by rejected rows, for rows whose id could not be read."""
        return frozenset(e.email for e in self.errors if e.email)
