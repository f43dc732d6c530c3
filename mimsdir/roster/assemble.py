"""Turn a reader's candidate rows into a Roster: rules, cross-row duplicates, scope and counts.

Kept apart from the readers so the three formats cannot drift in how they judge rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType

from mimsdir.roster.records import LEFT, Roster, RosterStudent, RowError
from mimsdir.roster.validate import Candidate, Checked, check_candidate, readable, show


def _others(this: Candidate, others: Sequence[Candidate]) -> str:
    """ "line 4" / "lines 4, 9" in the same file; "users.csv:3" for another file."""
    here = [str(o.line) for o in others if o.source == this.source]
    elsewhere = [f"{o.source}:{o.line}" for o in others if o.source != this.source]
    parts = [f"line{'s' if len(here) > 1 else ''} {', '.join(here)}"] if here else []
    return ", ".join(parts + elsewhere)


def _flag_duplicates(
    checked: Sequence[Checked],
    key: Callable[[Checked], str | None],
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
            cand = checked[index].candidate
            value = cand.values.get(field, "").strip()
            others = _others(cand, [checked[o].candidate for o in members if o != index])
            reason = f"duplicate {field} {show(value)}: also on {others}"
            out[index].append(
                RowError(
                    cand.source,
                    cand.line,
                    field,
                    reason,
                    readable(cand.values.get("student_id")),
                    (readable(cand.values.get("email")) or "").lower() or None,
                )
            )


def assemble(
    fmt: str,
    candidates: Iterable[Candidate],
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
    checked = [check_candidate(c, allowed_domains) for c in candidates]
    duplicates: dict[int, list[RowError]] = defaultdict(list)
    _flag_duplicates(
        checked,
        lambda c: c.student_id.casefold() if c.student_id else None,
        "student_id",
        duplicates,
    )
    _flag_duplicates(checked, lambda c: c.email, "email", duplicates)

    students: list[RosterStudent] = []
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
        if item.candidate.departs and item.student_id:
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
    )
