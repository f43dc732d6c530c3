"""Safety limits, checked before any write. Pure: a plan and some numbers in, reasons out.

A refused run writes nothing and exits 3; each reason says which limit and how to override.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mimsdir.config import parse_limit
from mimsdir.sync.model import DISABLE, Plan


@dataclass(frozen=True)
class LastRun:
    """What the last successful run saw, per school and per roster source."""

    rows_by_school: Mapping[str, int]
    schools_of_source: tuple[str, ...] | None  # None: this roster path never ran before


def disable_limit(max_disable: str, scope_active: int) -> int:
    amount, is_percent = parse_limit(max_disable)
    if is_percent:
        return math.floor(scope_active * amount / 100)
    return int(amount)


def check(plan: Plan, *, max_disable: str, max_shrink: str, last: LastRun,
          school: str | None, student_rows: int) -> list[str]:
    """Every limit the plan breaks, as one-line reasons (empty: safe to apply)."""
    reasons: list[str] = []
    if student_rows == 0 and not plan.row_errors:
        reasons.append("empty roster: it holds no student rows (a truncated export?); "
                       "nothing was written. Override with --force only if every student "
                       "in scope really left")
    if school and school.upper() not in plan.rows_by_school:
        reasons.append(f"school {school.upper()} is missing from the roster entirely; "
                       "override with --force")
    if last.schools_of_source is not None and not school:
        missing = sorted(set(last.schools_of_source) - set(plan.scope))
        if missing:
            reasons.append(f"school(s) {', '.join(missing)} were in this roster's last "
                           "successful run but are missing now; override with --force")
    disables = plan.count(DISABLE)
    limit = disable_limit(max_disable, plan.scope_active)
    if disables > limit:
        reasons.append(
            f"would disable {disables} of {plan.scope_active} active students in scope, "
            f"more than sync.max_disable ({max_disable} = {limit}); check the roster, then "
            "rerun with --max-disable N (or N%) or --force"
        )
    amount, is_percent = parse_limit(max_shrink)
    for code, rows in sorted(plan.rows_by_school.items()):
        before = last.rows_by_school.get(code)
        if not before:
            continue
        fell = before - rows
        allowed = before * amount / 100 if is_percent else amount
        if fell > allowed:
            reasons.append(
                f"school {code}: the roster has {rows} rows, {fell} fewer than the last "
                f"successful run's {before}, more than sync.max_shrink ({max_shrink}); "
                "override with --force"
            )
    return reasons
