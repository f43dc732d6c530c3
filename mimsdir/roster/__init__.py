"""Roster readers: turn a school's roster file into validated student records for the sync.

`read_roster(path, fmt)` reads a native CSV, a OneRoster 1.1 set or a Google Admin export and
returns a `Roster`. Row problems never raise: they are `RowError`s, and the students they name are
listed so the sync can protect them. Only whole-file problems raise `RosterError`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence

from mimsdir.roster.google import DEFAULT_OU_PATTERN, read_google
from mimsdir.roster.native import read_native
from mimsdir.roster.oneroster import read_oneroster
from mimsdir.roster.records import (
    ACTIVE,
    LEFT,
    Known,
    QuietRow,
    Roster,
    RosterError,
    RosterStudent,
    RowError,
)

FORMATS = ("native", "oneroster", "google")

__all__ = [
    "ACTIVE",
    "DEFAULT_OU_PATTERN",
    "FORMATS",
    "LEFT",
    "Known",
    "QuietRow",
    "Roster",
    "RosterError",
    "RosterStudent",
    "RowError",
    "read_roster",
]


def read_roster(
    path: str | os.PathLike[str],
    fmt: str = "native",
    *,
    google_ou_pattern: str | None = None,
    allowed_domains: Sequence[str] | None = None,
    known: Mapping[bytes, Known] | None = None,
    salt: bytes = b"",
    only_lines: Collection[int] | None = None,
) -> Roster:
    """Read `path` in format `fmt` ("native", "oneroster" or "google").

    `allowed_domains` restricts student emails to those domains (exact match; None allows any).
    `google_ou_pattern` only applies to the Google format (None = `DEFAULT_OU_PATTERN`); it is
    ignored for the others so a caller can pass its configured value unconditionally.
    Raises RosterError for a file that cannot be read as a roster at all, ValueError for an
    unknown `fmt` (a caller bug: the CLI offers only FORMATS).

    `known`, `salt` and `only_lines` (the sync's quiet rows, `read_native`) apply to the native
    format only: the others always read every row in full.
    """
    kind = fmt.strip().lower()
    if kind == "native":
        return read_native(path, allowed_domains=allowed_domains, known=known, salt=salt,
                           only_lines=only_lines)
    if kind == "oneroster":
        return read_oneroster(path, allowed_domains=allowed_domains)
    if kind == "google":
        return read_google(path, ou_pattern=google_ou_pattern, allowed_domains=allowed_domains)
    raise ValueError(f"unknown roster format {fmt!r}: expected one of {', '.join(FORMATS)}")
