"""The project's own roster CSV (design-notes §7): one row per student, columns by name."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mimsdir.roster.assemble import assemble
from mimsdir.roster.records import Roster
from mimsdir.roster.table import load_bytes, one_line, stream_table
from mimsdir.roster.validate import row_candidate

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
    path: str | os.PathLike[str], *, allowed_domains: Sequence[str] | None = None
) -> Roster:
    """Read a native roster CSV; row problems become RowErrors, file problems RosterError."""
    source = Path(path).name
    table = stream_table(
        load_bytes(path),
        shown=one_line(os.fspath(path)),
        source=source,
        columns={k: k for k in COLUMNS},
        required=REQUIRED,
    )
    return assemble(
        "native",
        (
            row_candidate(
                source,
                row.line,
                {COLUMNS[k]: v for k, v in row.values.items()},
                row.problem,
                aligned=row.aligned,
            )
            for row in table.rows
        ),
        allowed_domains=allowed_domains,
        warnings=table.warnings,
    )
