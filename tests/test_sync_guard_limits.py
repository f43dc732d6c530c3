"""The sync's safety limits at their edges (issue 8, item 9): the configured
``sync.max_disable`` when no ``--max-disable`` is given (what the cron wrapper does), the
shrink guard on every school of a multi-school roster, and a percentage limit that rounds
down. Each test fails if its rule is broken."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.sync import guards
from mimsdir.sync.model import DISABLE
from tests.conftest import write_config
from tests.sync_helpers import delete_school, run_sync, school_entries, school_rows, write_roster
from tests.test_sync_plan import as_dir, plan, roster, state, student

ROOT = Path(__file__).resolve().parent.parent


# -- pure: the guard function -----------------------------------------------------------------

@pytest.mark.parametrize(("limit", "active", "allowed"), [
    ("5%", 30, 1),    # 1.5: one may be disabled, not two
    ("5%", 39, 1),    # 1.95: still one
    ("5%", 40, 2),    # exactly 2
    ("5%", 50, 2),    # 2.5: two (round-half-even would agree; ceil would not)
    ("5%", 19, 0),    # 0.95: none
    ("10%", 25, 2),   # 2.5
    ("0%", 100, 0),
    ("100%", 7, 7),
    ("3", 1000, 3),   # a count is a count, whatever the scope
    ("0", 10, 0),
])
def test_percentage_limit_rounds_down(limit: str, active: int, allowed: int) -> None:
    assert guards.disable_limit(limit, active) == allowed


def _disabling(active: int, leaving: int):  # type: ignore[no-untyped-def]
    """A plan over ``active`` students of school A of which ``leaving`` left the roster."""
    everyone = [student(i) for i in range(active)]
    p = plan(roster(everyone[leaving:]), state([as_dir(s) for s in everyone]))
    assert p.scope_active == active and p.count(DISABLE) == leaving
    return p


def _check(p, **kw):  # type: ignore[no-untyped-def]
    args = {"max_disable": "5%", "max_shrink": "100%", "last": guards.LastRun({}, None),
            "school": None, "student_rows": sum(p.rows_by_school.values())}
    return guards.check(p, **{**args, **kw})


def test_guard_refuses_two_disables_of_thirty_at_five_percent() -> None:
    refused = _check(_disabling(30, 2))
    assert len(refused) == 1 and "would disable 2 of 30" in refused[0]
    assert "(5% = 1)" in refused[0]
    assert _check(_disabling(30, 1)) == []  # the boundary itself is allowed


def test_shrink_guard_checks_every_school_of_the_file() -> None:
    everyone = [student(i, school="A") for i in range(20)] + \
        [student(100 + i, school="B") for i in range(20)]
    current = state([as_dir(s) for s in everyone])
    last = guards.LastRun({"A": 20, "B": 20}, ("A", "B"))
    # Only the second school (in file order and in sorted order) shrank, by 15%.
    p = plan(roster(everyone[:37]), current)
    assert p.rows_by_school == {"A": 20, "B": 17}
    refused = _check(p, max_disable="100%", max_shrink="10%", last=last)
    assert len(refused) == 1 and refused[0].startswith("school B:")
    # And only the first: refused too, naming A.
    p = plan(roster(everyone[3:]), current)
    refused = _check(p, max_disable="100%", max_shrink="10%", last=last)
    assert len(refused) == 1 and refused[0].startswith("school A:")
    # Both shrank: both named.
    p = plan(roster(everyone[3:37]), current)
    refused = _check(p, max_disable="100%", max_shrink="10%", last=last)
    assert [r.split(":")[0] for r in refused] == ["school A", "school B"]
    # Within the limit (10% = 2 rows each): nothing refused.
    p = plan(roster(everyone[2:38]), current)
    assert _check(p, max_disable="100%", max_shrink="10%", last=last) == []


# -- end to end, through the CLI and the session's slapd --------------------------------------

@pytest.fixture
def school(slapd):  # type: ignore[no-untyped-def]
    code = "G" + uuid.uuid4().hex[:7].upper()
    yield code
    delete_school(slapd, code)


def config_with(slapd, path: Path, **sync: str) -> Path:  # type: ignore[no-untyped-def]
    """A config file for the session's slapd with these ``sync`` settings (and its own
    last-run memory, so the shrink guard stays out of the way unless asked)."""
    port = urlsplit(slapd.ldap.uri).port
    assert port
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_config(path, slapd.state_dir, port,
                        sync={"max_shrink": "50%", "state_dir": str(path.parent / "sync"),
                              **sync})


def cli(config: Path, roster_path: Path, tmp: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(config), "sync", str(roster_path),
                                     "--slips-dir", str(tmp / "slips"), *args])


def test_configured_max_disable_applies_without_the_option(slapd, school, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = school_rows(school, 40)
    assert run_sync(slapd, write_roster(tmp_path / "full.csv", rows), tmp=tmp_path).code == 0
    before = school_entries(slapd, school)
    # Stricter than the default: 1, where the default 5% of 40 would allow the 2 that left.
    strict = config_with(slapd, tmp_path / "strict" / "config.yaml", max_disable="1")
    two_left = write_roster(tmp_path / "two-left.csv", rows[2:])
    res = cli(strict, two_left, tmp_path)
    assert res.exit_code == 3, res.output
    assert "would disable 2 of 40" in res.output and "sync.max_disable (1 = 1)" in res.output
    assert school_entries(slapd, school) == before
    # The cron wrapper passes no --max-disable either: the same refusal.
    env = {**os.environ, "MIMS_CONFIG": str(strict), "ROSTER": str(two_left),
           "LOG_DIR": str(tmp_path / "log"), "MIMSDIR": str(ROOT / ".venv" / "bin" / "mimsdir")}
    cron = subprocess.run([str(ROOT / "scripts" / "mimsdir-sync-cron.sh"), "--slips-dir",
                           str(tmp_path / "slips")], env=env, capture_output=True, text=True,
                          check=False)
    assert cron.returncode == 3 and "REFUSED" in cron.stdout
    (log,) = (tmp_path / "log").glob("sync-*.log")
    assert "sync.max_disable (1 = 1)" in log.read_text()
    assert school_entries(slapd, school) == before
    # The option still overrides the configured value for one run.
    res = cli(strict, two_left, tmp_path, "--max-disable", "2", "--dry-run")
    assert res.exit_code == 0, res.output
    # More lenient than the default: 10% of 40 = 4 lets 3 go, where 5% (2) would refuse.
    lenient = config_with(slapd, tmp_path / "lenient" / "config.yaml", max_disable="10%")
    three_left = write_roster(tmp_path / "three-left.csv", rows[3:])
    res = cli(lenient, three_left, tmp_path)
    assert res.exit_code == 0, res.output
    after = school_entries(slapd, school)
    assert sorted(uid for uid, e in after.items() if e["mimsAccountStatus"] == ["left"]) == \
        [r["student_id"] for r in rows[:3]]


def test_shrink_of_the_second_school_refuses_the_run(slapd, school, tmp_path) -> None:  # type: ignore[no-untyped-def]
    second = school + "Z"  # sorts after the first, and comes after it in the file
    try:
        rows = school_rows(school, 20) + school_rows(second, 20)
        path = tmp_path / "two-schools.csv"
        assert run_sync(slapd, write_roster(path, rows), tmp=tmp_path).code == 0
        before = {**school_entries(slapd, school), **school_entries(slapd, second)}
        # The first school is whole; the second lost 3 of 20 rows (15% > 10%).
        r = run_sync(slapd, write_roster(path, rows[:37]), "--max-disable", "50%",
                     tmp=tmp_path)
        assert r.code == 3, r.result.output
        assert f"school {second}: the roster has 17 rows" in r.result.output
        assert f"school {school}:" not in r.result.output
        assert {**school_entries(slapd, school), **school_entries(slapd, second)} == before
    finally:
        delete_school(slapd, second)


def test_five_percent_of_thirty_allows_one_disable_not_two(slapd, school, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = school_rows(school, 30)
    assert run_sync(slapd, write_roster(tmp_path / "full.csv", rows), tmp=tmp_path).code == 0
    before = school_entries(slapd, school)
    # The session's config keeps the default, 5%: 1.5 of 30 is one student, not two.
    r = run_sync(slapd, write_roster(tmp_path / "full.csv", rows[2:]), tmp=tmp_path)
    assert r.code == 3, r.result.output
    assert "would disable 2 of 30" in r.result.output and "(5% = 1)" in r.result.output
    assert school_entries(slapd, school) == before
    r = run_sync(slapd, write_roster(tmp_path / "full.csv", rows[1:]), tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert school_entries(slapd, school)[rows[0]["student_id"]]["mimsAccountStatus"] == \
        ["left"]
