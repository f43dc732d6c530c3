"""Turn a reader's candidate rows into a Roster: rules, cross-row duplicates, scope and counts.

Kept apart from the readers so the three formats cannot drift in how they judge rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from mimsdir.roster.records import LEFT, QuietRow, Roster, RosterStudent, RowError
from mimsdir.roster.validate import Candidate, Checked, check_candidate, readable, show


@dataclass(frozen=True, slots=True)
class _Kept:
    """What the rules left of one row, without its raw cells: a national roster's checked rows
    are all held until duplicates are known, so they hold only what that needs."""

    source: str
    line: int
    raw_id: str
    raw_email: str
    departs: bool
    student: RosterStudent | None
    errors: tuple[RowError, ...]
    student_id: str | None
    email: str | None
    school_code: str | None


def _kept(item: Checked) -> _Kept:
    c = item.candidate
    return _Kept(c.source, c.line, c.values.get("student_id", ""), c.values.get("email", ""),
                 c.departs, item.student, item.errors, item.student_id, item.email,
                 item.school_code)


def _check(item: Candidate | QuietRow, allowed_domains: Sequence[str] | None
           ) -> _Kept | QuietRow:
    if isinstance(item, QuietRow):
        # The rules passed these very cells last time and would again: the keys the cross-row
        # rules need are those of the student the row matched (QuietRow's own properties).
        return item
    return _kept(check_candidate(item, allowed_domains))


def _others(this: _Kept | QuietRow, others: Sequence[_Kept | QuietRow]) -> str:
    """ "line 4" / "lines 4, 9" in the same file; "users.csv:3" for another file."""
    here = [str(o.line) for o in others if o.source == this.source]
    elsewhere = [f"{o.source}:{o.line}" for o in others if o.source != this.source]
    parts = [f"line{'s' if len(here) > 1 else ''} {', '.join(here)}"] if here else []
    return ", ".join(parts + elsewhere)


def _flag_duplicates(
    checked: Sequence[_Kept | QuietRow],
    key: Callable[[_Kept | QuietRow], str | None],
    field: str,
    out: dict[int, list[RowError]],
) -> None:
    """Every row of a duplicate group is an error naming the others: we cannot know which is right.

    Rows that failed other rules still take part, so a good row is not kept when a broken row
    claims the same student.
    """
    # The first row of each key by index, and a group only where a second row comes: a list
    # for every key of a national roster would cost more memory than the rows themselves.
    first: dict[str, int] = {}
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(checked):
        k = key(item)
        if k is None:
            continue
        seen = first.setdefault(k, index)
        if seen != index:
            groups.setdefault(k, [seen]).append(index)
    del first
    for members in groups.values():
        for index in members:
            row = checked[index]
            value = (row.raw_id if field == "student_id" else row.raw_email).strip()
            others = _others(row, [checked[o] for o in members if o != index])
            reason = f"duplicate {field} {show(value)}: also on {others}"
            out[index].append(
                RowError(
                    row.source,
                    row.line,
                    field,
                    reason,
                    readable(row.raw_id),
                    (readable(row.raw_email) or "").lower() or None,
                )
            )


def assemble(
    fmt: str,
    candidates: Iterable[Candidate | QuietRow],
    *,
    allowed_domains: Sequence[str] | None = None,
    warnings: Iterable[str] = (),
    extra_errors: Iterable[RowError] = (),
    is_delta: bool = False,
) -> Roster:
    """Check every candidate, reject duplicates, and compute the scope the sync may act on.

    Ids compare case-insensitively for duplicates because LDAP matches `uid` that way: "s1" and
    "S1" would be the same entry.
    """
    checked = [_check(c, allowed_domains) for c in candidates]
    duplicates: dict[int, list[RowError]] = defaultdict(list)
    _flag_duplicates(
        checked,
        lambda c: c.student_id.casefold() if c.student_id else None,
        "student_id",
        duplicates,
    )
    _flag_duplicates(checked, lambda c: c.email, "email", duplicates)

    students: list[RosterStudent] = []
    quiet: list[QuietRow] = []
    errors: list[RowError] = list(extra_errors)
    departed: set[str] = set()
    counts: Counter[str] = Counter()
    for index, item in enumerate(checked):
        row_errors = [*item.errors, *duplicates.get(index, ())]
        errors.extend(row_errors)
        if item.school_code:
            counts[item.school_code] += 1
        if row_errors:
            continue
        if isinstance(item, QuietRow):
            quiet.append(item)
        elif item.departs and item.student_id:
            departed.add(item.student_id)
        elif item.student is not None:
            students.append(item.student)
            if item.student.status == LEFT:
                departed.add(item.student.student_id)
    errors.sort(key=lambda e: (e.source, e.line))
    return Roster(
        students=tuple(students),
        errors=tuple(errors),
        warnings=tuple(warnings),
        schools=frozenset(counts),
        fmt=fmt,
        is_delta=is_delta,
        departed_ids=frozenset(departed),
        row_count_by_school=MappingProxyType(dict(sorted(counts.items()))),
        quiet=tuple(quiet),
    )
