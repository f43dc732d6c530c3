"""Read one CSV file into rows keyed by column, keeping physical line numbers and bad rows.

Shared by all readers. The file is read as bytes and decoded with `surrogateescape`, so a row
with bytes that are not UTF-8 is reported with its line number while every other row is read;
line numbers come from the csv module's line counter, so quoted multi-line fields do not shift
the numbers of the rows after them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mimsdir.roster.records import EmptyRosterError, Known, RosterError

MAX_FILE_BYTES = 512 * 1024 * 1024  # far above any real roster; stops a runaway read

_UTF8_BOM = b"\xef\xbb\xbf"
_NOT_CSV = (
    (b"\xff\xfe\x00\x00", "is UTF-32 text; save it as CSV UTF-8"),
    (b"\x00\x00\xfe\xff", "is UTF-32 text; save it as CSV UTF-8"),
    (b"\xff\xfe", "is UTF-16 text; save it as CSV UTF-8"),
    (b"\xfe\xff", "is UTF-16 text; save it as CSV UTF-8"),
    (b"PK\x03\x04", "is a zip file or Excel workbook, not a CSV file; save it as CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0", "is an Excel workbook, not a CSV file; save it as CSV UTF-8"),
    (b"%PDF", "is a PDF, not a CSV file"),
)


def one_line(text: str) -> str:
    """Messages are one line, whatever a path or header contains."""
    return " ".join(text.splitlines())


def default_key(name: str) -> str:
    """Header names are matched case-insensitively, ignoring surrounding spaces."""
    return name.strip().strip("\ufeff").strip().lower()


# What surrogateescape makes of a byte that is not UTF-8: one regex search in C, not a
# Python loop over every character (a national roster has 50 million of them).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def has_surrogates(text: str) -> bool:
    """True if `text` holds bytes that were not UTF-8 (decoded with surrogateescape)."""
    return _ESCAPED_BYTE.search(text) is not None


def load_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a whole file, turning every OS failure into a one-line RosterError naming it."""
    shown = one_line(os.fspath(path))
    p = Path(path)
    try:
        if p.is_dir():
            raise RosterError(f"{shown}: is a directory, not a CSV file")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise RosterError(f"{shown}: is larger than {MAX_FILE_BYTES // 2**20} MiB")
        return p.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"{shown}: no such file") from None
    except OSError as exc:
        raise RosterError(f"{shown}: cannot be read: {exc.strerror or exc}") from None


# Not frozen, like sync.model.Remembered: one a row of a national roster, and a frozen
# dataclass's __init__ costs four times a plain one's. Never written after it is made.
@dataclass(slots=True, eq=False)
class TableRow:
    """One non-blank record.

    `values` maps canonical column keys to raw text. When `problem` is set the row is unusable:
    if `aligned`, `values` holds only the columns that decoded cleanly (still in the right place);
    if not aligned (wrong field count, csv error), `values` is positional and only good for
    protecting the student the row seems to name.
    """

    line: int
    values: Mapping[str, str]
    problem: tuple[str, str] | None = None
    aligned: bool = True
    # ``stream_table(known=...)``: the digest of the raw cells, and what the last run matched
    # a row with the same digest to (then ``values`` is left empty: nobody reads them).
    raw: bytes | None = None
    quiet: Known | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A parsed CSV: the header as written, the rows, and warnings about the header."""

    source: str
    header: tuple[str, ...]
    rows: tuple[TableRow, ...]
    warnings: tuple[str, ...]


def _refuse_not_csv(data: bytes, shown: str) -> None:
    if not data:
        raise EmptyRosterError(f"{shown}: is empty (0 bytes)")
    for magic, reason in _NOT_CSV:
        if data.startswith(magic):
            raise RosterError(f"{shown}: {reason}")


def decode(data: bytes, shown: str) -> str:
    """Bytes to text: refuse files that are clearly not CSV, drop a BOM, keep bad bytes marked."""
    _refuse_not_csv(data, shown)
    data = data.removeprefix(_UTF8_BOM)
    return data.decode("utf-8", errors="surrogateescape")


def _text(data: bytes, shown: str) -> io.TextIOWrapper:
    """``decode``, as a stream decoded as it is read: a national roster's text never exists
    whole (as one string and again as a StringIO's buffer, 4 bytes a character, it was the
    largest thing a sync held)."""
    _refuse_not_csv(data, shown)
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape",
                            newline="")


def _is_utf8(data: bytes) -> bool:
    """Whether every byte is UTF-8, checked a megabyte at a time (nothing held)."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), 1 << 20):
            decoder.decode(view[start:start + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _records(text: io.TextIOWrapper) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """(first line, last line, fields or None, csv error) for every record, blank ones included,
    one at a time (a national roster's rows are never all held at once)."""
    reader = csv.reader(text)
    while True:
        first = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield (first, reader.line_num, None, str(exc))
            continue
        yield (first, reader.line_num, fields, None)


def _separator_hint(header: list[str]) -> str:
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                return f" (the header uses {name}; save the file as comma-separated CSV)"
    return ""


def parse_table(
    data: bytes,
    *,
    shown: str,
    source: str,
    columns: Mapping[str, str],
    required: tuple[str, ...],
    ignored: frozenset[str] = frozenset(),
    key: Callable[[str], str] = default_key,
) -> Table:
    """Parse `data` as a CSV with a header row.

    `columns` maps canonical keys (as `key` produces them) to the names shown in messages;
    `required` keys must be present (else RosterError); `ignored` keys are known but unused, so
    they produce no warning. Other columns produce one warning each.
    """
    lazy = stream_table(data, shown=shown, source=source, columns=columns, required=required,
                        ignored=ignored, key=key)
    return Table(lazy.source, lazy.header, tuple(lazy.rows), lazy.warnings)


@dataclass(frozen=True, slots=True)
class LazyTable:
    """A CSV whose header is checked and whose rows come one at a time (``stream_table``)."""

    source: str
    header: tuple[str, ...]
    rows: Iterator[TableRow]
    warnings: tuple[str, ...]


def stream_table(
    data: bytes,
    *,
    shown: str,
    source: str,
    columns: Mapping[str, str],
    required: tuple[str, ...],
    ignored: frozenset[str] = frozenset(),
    key: Callable[[str], str] = default_key,
    known: Mapping[bytes, Known] | None = None,
    salt: bytes = b"",
) -> LazyTable:
    """``parse_table``, with the header checked now and the rows parsed as they are taken:
    a reader that uses each row once never holds the whole parsed file.

    ``known`` (raw digest -> what it matched, see ``raw_digester``): every well-formed row
    gets the digest of its raw cells in ``TableRow.raw``, and a row whose digest is known is
    handed on as ``TableRow.quiet`` without its values."""
    records = _records(_text(data, shown))
    found = next((r for r in records if r[3] or _is_content(r[2])), None)
    if found is None:
        raise EmptyRosterError(f"{shown}: has no header row (blank file)")
    if found[3]:
        raise RosterError(f"{shown}: is not a CSV file ({found[3]})")
    header = found[2] or []
    if any(has_surrogates(h) or "\x00" in h for h in header):
        raise RosterError(f"{shown}: the header row is not UTF-8 text; save the file as CSV UTF-8")

    keys = [key(h) for h in header]
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for index, (name, k) in enumerate(zip(header, keys, strict=True)):
        if k in columns:
            if k in seen:
                raise RosterError(f"{shown}: column {columns[k]!r} appears twice in the header")
            seen[k] = index
        elif not k:
            warnings.append(f"{source}: column {index + 1} has no name in the header; ignored")
        elif k not in ignored and k not in keys[:index]:
            warnings.append(f"{source}: unknown column {one_line(name.strip())!r} ignored")
    missing = [columns[k] for k in required if k not in seen]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        plural = "s" if len(missing) > 1 else ""
        raise RosterError(
            f"{shown}: missing required column{plural} {names}{_separator_hint(header)}"
        )

    # One search of the whole text: a file that is all UTF-8 needs no check per cell.
    escaped = not _is_utf8(data)
    if known is None:
        rows: Iterator[TableRow] = (
            _row(first, last, fields, err, header, seen, escaped)
            for first, last, fields, err in records
            if err or _is_content(fields)
        )
    else:
        rows = _digested_rows(records, header, seen, escaped, known,
                              raw_digester(salt, header))
    return LazyTable(source, tuple(header), rows, tuple(warnings))


# Between cells in a row's digest: a row whose cells hold it is never digested, so two rows
# that split the same text differently cannot share a digest.
_SEP = "\x1f"


def raw_digester(salt: bytes, header: Sequence[str]) -> Any:
    """The hash a row's raw cells are added to: seeded with ``salt`` (what else decides how a
    row reads: the rules' version, the format, the settings) and the header as written, so
    the same cells under other columns or other rules are another row."""
    h = hashlib.blake2b(digest_size=12)
    h.update(salt)
    h.update(b"\0")
    h.update("\x1e".join(header).encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    return h


def _digested_rows(records: Iterator[tuple[int, int, list[str] | None, str | None]],
                   header: list[str], seen: Mapping[str, int], escaped: bool,
                   known: Mapping[bytes, Known], base: Any) -> Iterator[TableRow]:
    width = len(header)
    for first, last, fields, err in records:
        raw = None
        if fields is not None and len(fields) == width:
            joined = _SEP.join(fields)
            if joined.count(_SEP) == width - 1 and not (escaped and has_surrogates(joined)):
                h = base.copy()
                h.update(joined.encode())
                raw = h.digest()
                hit = known.get(raw)
                if hit is not None:
                    yield TableRow(first, _NOTHING, raw=raw, quiet=hit)
                    continue
        if err or _is_content(fields):
            row = _row(first, last, fields, err, header, seen, escaped)
            yield row if raw is None or row.problem else TableRow(first, row.values, raw=raw)


_NOTHING: Mapping[str, str] = {}


def _is_content(fields: list[str] | None) -> bool:
    """Blank lines and rows of empty cells (",,,," from spreadsheets) are skipped silently."""
    return bool(fields) and any(f.strip() for f in fields or ())


def _row(
    first: int,
    last: int,
    fields: list[str] | None,
    err: str | None,
    header: list[str],
    seen: Mapping[str, int],
    escaped: bool = True,
) -> TableRow:
    """Build one TableRow, deciding whether the row is usable. ``escaped``: the file holds
    bytes that are not UTF-8 somewhere (else no cell needs checking)."""
    if fields is None:
        return TableRow(first, {}, ("csv", f"cannot be parsed: {err}"), aligned=False)
    positional = {k: fields[i] for k, i in seen.items() if i < len(fields)}
    bad = [i for i, f in enumerate(fields) if has_surrogates(f)] if escaped else []
    if len(fields) != len(header):
        span = (
            f"; it runs from line {first} to line {last}: an unclosed quote?"
            if last > first
            else ""
        )
        reason = f"row has {len(fields)} fields but the header has {len(header)}{span}"
        clean = {k: v for k, v in positional.items() if not has_surrogates(v)}
        if bad:
            return TableRow(first, clean, ("encoding", "row is not valid UTF-8"), aligned=False)
        return TableRow(first, clean, ("fields", reason), aligned=False)
    if bad:
        names = ", ".join(repr(one_line(header[i].strip()) or f"#{i + 1}") for i in bad)
        reason = f"not valid UTF-8 in column {names}; save the file as CSV UTF-8"
        clean = {k: v for k, v in positional.items() if not has_surrogates(v)}
        return TableRow(first, clean, ("encoding", reason), aligned=True)
    return TableRow(first, positional)
