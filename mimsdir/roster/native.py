"""The project's own roster CSV (design-notes §7): one row per student, columns by name."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from mimsdir.roster.assemble import assemble
from mimsdir.roster.records import Known, QuietRow, Roster
from mimsdir.roster.table import LazyTable, load_bytes, one_line, stream_table
from mimsdir.roster.validate import Candidate, row_candidate

# header name (lower-case) -> RosterStudent field
COLUMNS: Mapping[str, str] = {
    "student_id": "student_id",
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "school_code": "school_code",
    "level": "level",
    "class": "class_name",
    "form_teacher_email": "form_teacher_email",
    "status": "status",
}
REQUIRED = ("student_id", "email", "given_name", "family_name", "school_code", "level", "class")


def read_native(
    path: str | os.PathLike[str], *, allowed_domains: Sequence[str] | None = None,
    known: Mapping[bytes, Known] | None = None, salt: bytes = b"",
    only_lines: Collection[int] | None = None,
) -> Roster:
    """Read a native roster CSV; row problems become RowErrors, file problems RosterError.

    ``known``/``salt``: see ``table.stream_table`` (rows with a known raw digest become
    ``Roster.quiet``). ``only_lines``: read just the rows that start on these lines (the
    sync's second look at quiet rows whose student changed since)."""
    source = Path(path).name
    table = stream_table(
        load_bytes(path),
        shown=one_line(os.fspath(path)),
        source=source,
        columns={k: k for k in COLUMNS},
        required=REQUIRED,
        known=known,
        salt=salt,
    )
    return assemble(
        "native",
        _candidates(source, table, only_lines),
        allowed_domains=allowed_domains,
        warnings=table.warnings,
    )


def _candidates(source: str, table: LazyTable,
                only_lines: Collection[int] | None) -> Iterator[Candidate | QuietRow]:
    for row in table.rows:
        if only_lines is not None and row.line not in only_lines:
            continue
        if row.quiet is not None:
            yield QuietRow(source, row.line, row.quiet)
            continue
        yield row_candidate(
            source,
            row.line,
            {COLUMNS[k]: v for k, v in row.values.items()},
            row.problem,
            aligned=row.aligned,
            raw=row.raw,
        )
