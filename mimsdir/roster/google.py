"""Google Admin console user export: students are the users under the student OU tree.

The export has one row per Google account (staff too). School, level and class are not columns:
they are read from the Org Unit Path with a regex whose named groups are `school`, `level` and
`class`. Users whose OU does not match are not students and are skipped (counted in a warning).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from mimsdir.roster.assemble import assemble
from mimsdir.roster.records import Roster, RosterError
from mimsdir.roster.table import TableRow, load_bytes, one_line, parse_table
from mimsdir.roster.validate import Candidate, row_candidate

DEFAULT_OU_PATTERN = r"^/Students/(?P<school>[^/]+)/(?P<level>[^/]+)/(?P<class>[^/]+)$"
_GROUPS = ("school", "level", "class")

# key (name before " [", lower-case) -> name shown in messages
COLUMNS: Mapping[str, str] = {
    "first name": "First Name [Required]",
    "last name": "Last Name [Required]",
    "email address": "Email Address [Required]",
    "org unit path": "Org Unit Path [Required]",
    "employee id": "Employee ID",
    "manager email": "Manager Email",
    "status": "Status [READ ONLY]",
}
REQUIRED = ("first name", "last name", "email address", "org unit path", "employee id")
# key -> RosterStudent field (school, level and class come from the OU)
FIELDS: Mapping[str, str] = {
    "first name": "given_name",
    "last name": "family_name",
    "email address": "email",
    "employee id": "student_id",
    "manager email": "form_teacher_email",
    "status": "status",
}
# The rest of Google's standard export: known, unused, so not worth a warning each.
IGNORED = frozenset(
    {
        "password",
        "password hash function",
        "new primary email",
        "recovery email",
        "home secondary email",
        "work secondary email",
        "recovery phone",
        "work phone",
        "home phone",
        "mobile phone",
        "work address",
        "home address",
        "employee type",
        "employee title",
        "department",
        "cost center",
        "building id",
        "floor name",
        "floor section",
        "change password at next sign-in",
        "new status",
        "last sign in",
        "email usage",
        "2sv enrolled",
        "2sv enforced",
        "advanced protection program enrollment",
    }
)
# Google's account states; anything else goes to the shared status rule (and fails there).
_STATUS = {"suspended": "left", "archived": "left"}


def google_key(name: str) -> str:
    """Google decorates names ("Email Address [Required]"): match on the part before " [" """
    return name.split("[", 1)[0].strip().strip("\ufeff").strip().lower()


def compile_ou_pattern(pattern: str | None) -> re.Pattern[str]:
    """Compile the OU regex, refusing one that cannot yield school, level and class."""
    text = DEFAULT_OU_PATTERN if pattern is None else pattern
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise RosterError(f"google_ou_pattern {text!r} is not a valid regex: {exc}") from None
    missing = [g for g in _GROUPS if g not in compiled.groupindex]
    if missing:
        names = ", ".join(f"(?P<{g}>...)" for g in missing)
        raise RosterError(f"google_ou_pattern {text!r} lacks the named group(s) {names}")
    return compiled


def _ou_values(pattern: re.Pattern[str], ou: str) -> dict[str, str] | None:
    """School, level and class from an OU path, or None if this OU holds no students.

    The pattern must match the whole path, so "/Archive/Students/..." never counts as students.
    """
    match = pattern.fullmatch(ou.strip())
    if match is None:
        return None
    got = {g: match.group(g) or "" for g in _GROUPS}
    return {"school_code": got["school"], "level": got["level"], "class_name": got["class"]}


def _candidate(source: str, row: TableRow, ou: dict[str, str] | None) -> Candidate:
    values = {FIELDS[k]: v for k, v in row.values.items() if k in FIELDS}
    status = values.get("status", "")
    values["status"] = _STATUS.get(status.strip().lower(), status)
    if ou is not None:
        values.update(ou)
    return row_candidate(source, row.line, values, row.problem, aligned=row.aligned)


def read_google(
    path: str | os.PathLike[str],
    *,
    ou_pattern: str | None = None,
    allowed_domains: Sequence[str] | None = None,
) -> Roster:
    """Read a Google Admin user export; student_id comes from Employee ID (required per row)."""
    pattern = compile_ou_pattern(ou_pattern)
    source = Path(path).name
    table = parse_table(
        load_bytes(path),
        shown=one_line(os.fspath(path)),
        source=source,
        columns=COLUMNS,
        required=REQUIRED,
        ignored=IGNORED,
        key=google_key,
    )
    candidates: list[Candidate] = []
    skipped: Counter[str] = Counter()
    for row in table.rows:
        # Absent from a broken row's values means unreadable: then we cannot tell it is not a
        # student, so it is reported. A shifted row's OU may be another column: reported too.
        ou_text = row.values.get("org unit path")
        ou = _ou_values(pattern, ou_text) if ou_text is not None else None
        if ou is None and ou_text is not None and row.aligned:
            skipped[ou_text.strip()] += 1
            continue
        candidates.append(_candidate(source, row, ou))
    warnings = list(table.warnings)
    if skipped:
        examples = ", ".join(repr(one_line(ou)) for ou, _ in skipped.most_common(3))
        warnings.append(
            f"{source}: {skipped.total()} user(s) skipped: their Org Unit Path does not match "
            f"the student OU pattern (e.g. {examples})"
        )
    return assemble("google", candidates, allowed_domains=allowed_domains, warnings=warnings)
