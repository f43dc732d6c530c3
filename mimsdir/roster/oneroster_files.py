"""Open a OneRoster 1.1 CSV set (a folder or a .zip) and read its manifest.

Kept apart from the record logic in `oneroster.py`: this part only knows where the bytes are.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mimsdir.roster.records import RosterError
from mimsdir.roster.table import MAX_FILE_BYTES, load_bytes, one_line, parse_table

NAMES = ("manifest", "orgs", "users", "classes", "enrollments")
_MANIFEST_COLUMNS = {"propertyname": "propertyName", "value": "value"}


@dataclass(frozen=True)
class CsvSet:
    """The member files found (name -> bytes, e.g. "users" -> b"..."), and how to name the set."""

    shown: str
    files: Mapping[str, bytes]


def _pick(shown: str, name: str, candidates: list[str]) -> str | None:
    """The one member called `name`.csv (any case, at the top or one folder down), if any."""
    if len(candidates) > 1:
        listed = ", ".join(sorted(candidates))
        raise RosterError(f"{shown}: holds more than one {name}.csv ({listed})")
    return candidates[0] if candidates else None


def _from_zip(path: Path, shown: str) -> CsvSet:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            files: dict[str, bytes] = {}
            for name in NAMES:
                wanted = f"{name}.csv"
                matches = [
                    i.filename
                    for i in infos
                    if PurePosixPath(i.filename).name.lower() == wanted
                    and len(PurePosixPath(i.filename).parts) <= 2
                ]
                member = _pick(shown, name, matches)
                if member is None:
                    continue
                if archive.getinfo(member).file_size > MAX_FILE_BYTES:
                    raise RosterError(f"{shown}: {member} is too large")
                files[name] = archive.read(member)
    except zipfile.BadZipFile as exc:
        raise RosterError(f"{shown}: is not a readable zip file ({exc})") from None
    except OSError as exc:
        raise RosterError(f"{shown}: cannot be read: {exc.strerror or exc}") from None
    return CsvSet(shown, files)


def _from_folder(path: Path, shown: str) -> CsvSet:
    try:
        entries = [p for p in path.iterdir() if p.is_file()]
    except OSError as exc:
        raise RosterError(f"{shown}: cannot be read: {exc.strerror or exc}") from None
    files: dict[str, bytes] = {}
    for name in NAMES:
        matches = [p.name for p in entries if p.name.lower() == f"{name}.csv"]
        member = _pick(shown, name, matches)
        if member is not None:
            files[name] = load_bytes(path / member)
    return CsvSet(shown, files)


def open_set(path: str | os.PathLike[str]) -> CsvSet:
    """Read the CSV files of a OneRoster set; RosterError if it is neither a folder nor a zip."""
    shown = one_line(os.fspath(path))
    p = Path(path)
    if p.is_dir():
        found = _from_folder(p, shown)
    elif not p.exists():
        raise RosterError(f"{shown}: no such file or folder")
    elif zipfile.is_zipfile(p):
        found = _from_zip(p, shown)
    else:
        raise RosterError(f"{shown}: OneRoster needs a folder or a .zip holding users.csv")
    if "users" not in found.files:
        raise RosterError(f"{shown}: has no users.csv")
    return found


def manifest_modes(data: bytes | None, shown: str) -> dict[str, set[str]]:
    """File name -> processing modes ("bulk", "delta", "absent") the manifest declares.

    Reads the 1.1 keys (`file.users`) and the `process_users` / `process.users` spelling some
    exporters use; when both are present and disagree, every stated mode is kept so the caller
    can take the cautious one.
    """
    if data is None:
        return {}
    table = parse_table(
        data,
        shown=f"{shown}: manifest.csv",
        source="manifest.csv",
        columns=_MANIFEST_COLUMNS,
        required=("propertyname", "value"),
    )
    modes: dict[str, set[str]] = {}
    for row in table.rows:
        prop = row.values.get("propertyname", "").strip().lower()
        value = row.values.get("value", "").strip().lower()
        for prefix in ("file.", "process_", "process."):
            if prop.startswith(prefix):
                modes.setdefault(prop.removeprefix(prefix), set()).add(value)
    return modes
