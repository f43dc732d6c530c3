"""The state of the directory per school, level and class: one streaming pass.

Why streaming: a national directory holds ~500,000 students. The report reads them with one
paged search (``search_paged``, only the attributes it counts) and adds each entry into
counters as it arrives; no entry is kept, so memory grows with the number of classes, not of
students. ``ReportAggregator`` is pure (records in, counters out) and tested without a server.

What is counted (``COLUMNS``): students by status; then, for active students only (a disabled
or departed account's lock or answers concern nobody): locked now, waiting to change a reset
password (``pwdReset``), challenge answers in three exclusive states, and passwords set that
no slip has carried (``mimsCredentialPending``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mimsdir.staff.model import LEVELS, StudentRecord

#: Attributes the report reads: nothing else crosses the wire.
REPORT_ATTRS: tuple[str, ...] = (
    "mimsSchoolCode", "mimsLevel", "mimsClass", "mimsAccountStatus", "pwdAccountLockedTime",
    "pwdPolicySubentry", "pwdReset", "mimsChallenge", "mimsChallengeOrigin",
    "mimsQnaMustChange", "mimsCredentialPending",
)

#: (key, table heading, meaning) in display order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("active", "active", "active accounts (can sign in)"),
    ("left", "left", "left the school (per the roster)"),
    ("disabled", "disabled", "disabled by ICT staff"),
    ("locked", "locked", "active, locked out right now (too many wrong passwords)"),
    ("must_change", "reset", "active, waiting to change a reset password (pwdReset)"),
    ("qna_ok", "qna-ok", "active, challenge answers registered"),
    ("qna_card_upper", "card-P4+", "active P4-P6 still using the answers of their P2-P3 card"),
    ("qna_missing", "qna-none", "active, no challenge answers (or they must be replaced)"),
    ("credential_pending", "pending", "active, a password was set that no slip has carried"),
)
KEYS: tuple[str, ...] = tuple(c[0] for c in COLUMNS)


@dataclass
class Counts:
    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KEYS, 0))

    def add(self, other: Counts) -> None:
        for key in KEYS:
            self.values[key] += other.values[key]

    @property
    def students(self) -> int:
        return self.values["active"] + self.values["left"] + self.values["disabled"]


def _level_key(level: str) -> tuple[int, str]:
    return (LEVELS.index(level) if level in LEVELS else len(LEVELS), level)


class ReportAggregator:
    """Counters per (school, level, class). ``lockout_seconds`` maps a policy DN to its
    lockout duration, to tell a lock in force from a stale pwdAccountLockedTime."""

    def __init__(self, now: datetime, lockout_seconds: Callable[[str | None], int | None]):
        self.now = now
        self._lockout = lockout_seconds
        self._cells: dict[tuple[str, str, str], Counts] = {}

    def add(self, s: StudentRecord) -> None:
        key = (s.school or "?", s.level or "?", s.class_name or "?")
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Counts()
        v = cell.values
        if s.status in ("left", "disabled"):
            v[s.status] += 1
            return
        # anything else (active, or an unknown value) is counted as active: it may sign in
        v["active"] += 1
        if s.has_lock_record and s.locked_now(self.now, self._lockout(s.policy_dn)):
            v["locked"] += 1
        if s.must_change:
            v["must_change"] += 1
        v[{"ok": "qna_ok", "card-upper": "qna_card_upper", "missing": "qna_missing"}[
            s.qna_state]] += 1
        if s.credential_pending:
            v["credential_pending"] += 1

    def add_all(self, students: Iterable[StudentRecord]) -> ReportAggregator:
        for s in students:
            self.add(s)
        return self

    def report(self) -> Report:
        schools: dict[str, dict[str, dict[str, Counts]]] = {}
        for (school, level, cls), counts in self._cells.items():
            schools.setdefault(school, {}).setdefault(level, {})[cls] = counts
        return Report(self.now, schools)


@dataclass
class Report:
    generated_at: datetime
    schools: dict[str, dict[str, dict[str, Counts]]]

    def ordered(self) -> list[tuple[str, list[tuple[str, list[tuple[str, Counts]]]]]]:
        return [
            (school, [(level, sorted(classes.items(), key=lambda kv: kv[0].upper()))
                      for level, classes in sorted(levels.items(),
                                                   key=lambda kv: _level_key(kv[0]))])
            for school, levels in sorted(self.schools.items())
        ]

    def to_json(self) -> dict[str, object]:
        total = Counts()
        schools_out = []
        for school, levels in self.ordered():
            school_total = Counts()
            levels_out = []
            for level, classes in levels:
                level_total = Counts()
                for _cls, counts in classes:
                    level_total.add(counts)
                school_total.add(level_total)
                levels_out.append({
                    "level": level, "totals": dict(level_total.values),
                    "classes": [{"class": c, **counts.values} for c, counts in classes],
                })
            total.add(school_total)
            schools_out.append({"school": school, "totals": dict(school_total.values),
                                "levels": levels_out})
        return {
            "generated_at": self.generated_at.astimezone().isoformat(),
            "columns": {key: meaning for key, _h, meaning in COLUMNS},
            "totals": dict(total.values),
            "schools": schools_out,
        }

    def to_table(self) -> str:
        heads = ["school", "level", "class", *(h for _k, h, _m in COLUMNS)]
        rows: list[list[str]] = []
        total = Counts()

        def nums(c: Counts) -> list[str]:
            return [str(c.values[k]) for k in KEYS]

        for school, levels in self.ordered():
            school_total = Counts()
            for level, classes in levels:
                level_total = Counts()
                for cls, counts in classes:
                    rows.append([school, level, cls, *nums(counts)])
                    level_total.add(counts)
                rows.append([school, level, "all", *nums(level_total)])
                school_total.add(level_total)
            rows.append([school, "all", "", *nums(school_total)])
            rows.append([])
            total.add(school_total)
        if not rows:
            return "no students in scope\n"
        rows.append(["all schools", "", "", *nums(total)])
        widths = [max(len(r[i]) for r in [heads, *rows] if r) for i in range(len(heads))]

        def fmt(r: list[str]) -> str:
            cells = [r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i])
                     for i in range(len(heads))]
            return "  ".join(cells).rstrip()

        out = [fmt(heads)]
        out += [fmt(r) if r else "" for r in rows]
        out.append("")
        out += [f"  {h:<9} {m}" for _k, h, m in COLUMNS]
        return "\n".join(out) + "\n"
