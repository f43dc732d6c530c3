"""Every guard of ``mimsdir/sync/guards.py`` at its edges, and every reason word for word: an
operator reads these at 2 a.m. and reruns with the override they name (the mutants that the
end-to-end tests let through). Pure: no server."""

from __future__ import annotations

from mimsdir.roster import RowError
from mimsdir.sync import guards
from tests.test_sync_plan import as_dir, plan, roster, state, student

NO_HISTORY = guards.LastRun({}, None)


def school_plan(n: int = 20, keep: int | None = None, school: str = "A", **kw):  # type: ignore[no-untyped-def]
    everyone = [student(i, school=school) for i in range(n)]
    return plan(roster(everyone[: n if keep is None else keep]),
                state([as_dir(s) for s in everyone]), **kw)


def check(p, *, rows: int | None = None, **kw):  # type: ignore[no-untyped-def]
    args = {"max_disable": "100%", "max_shrink": "100%", "last": NO_HISTORY, "school": None,
            "student_rows": sum(p.rows_by_school.values()) if rows is None else rows}
    return guards.check(p, **{**args, **kw})


def test_empty_roster_reason() -> None:
    p = plan(roster([]), state([]))
    assert check(p, rows=0) == [
        "empty roster: it holds no student rows (a truncated export?); nothing was written. "
        "Override with --force only if every student in scope really left"]
    assert check(school_plan(1), rows=1) == []
    # Rows that were all errors are not an empty file: the row errors are the report.
    bad = plan(roster([], errors=(RowError("r.csv", 2, "level", "bad", student_id="S1"),)),
               state([]))
    assert check(bad, rows=0) == []


def test_missing_school_reason() -> None:
    p = school_plan(3)
    assert check(p, school="a") == []  # the option's case does not matter
    assert check(p, school="zz") == [
        "school ZZ is missing from the roster entirely; override with --force"]


def test_missing_since_last_run_reason() -> None:
    p = school_plan(3)
    last = guards.LastRun({}, ("A", "C", "B"))
    assert check(p, last=last) == [
        "school(s) B, C were in this roster's last successful run but are missing now; "
        "override with --force"]
    # With --school the other schools of the file are not this run's business.
    assert check(p, last=last, school="A") == []
    assert check(p, last=guards.LastRun({}, ("A",))) == []


def test_max_disable_reason() -> None:
    p = school_plan(40, keep=37)
    assert check(p, max_disable="5%") == [
        "would disable 3 of 40 active students in scope, more than sync.max_disable "
        "(5% = 2); check the roster, then rerun with --max-disable N (or N%) or --force"]
    assert check(p, max_disable="3") == []


def test_shrink_reason_and_count_limit() -> None:
    last = guards.LastRun({"A": 20}, ("A",))
    p = school_plan(20, keep=16)
    assert check(p, max_shrink="10%", last=last) == [
        "school A: the roster has 16 rows, 4 fewer than the last successful run's 20, more "
        "than sync.max_shrink (10%); override with --force"]
    # A count is rows, not a percentage: 4 fewer is within "4", not within "3".
    assert check(p, max_shrink="4", last=last) == []
    assert len(check(p, max_shrink="3", last=last)) == 1


def test_a_school_without_history_does_not_stop_the_shrink_check() -> None:
    """Schools are checked in order; one never seen before (A) comes before one that shrank."""
    everyone = [student(i, school="A") for i in range(5)] + \
        [student(100 + i, school="B") for i in range(20)]
    p = plan(roster(everyone[:15]), state([as_dir(s) for s in everyone]))
    assert p.rows_by_school == {"A": 5, "B": 10}
    refused = check(p, max_shrink="10%", last=guards.LastRun({"B": 20}, ("A", "B")))
    assert [r.split(":")[0] for r in refused] == ["school B"]
