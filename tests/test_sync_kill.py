"""A sync killed with SIGKILL at random moments, then run normally, converges: the directory
holds exactly the roster, and every student's password is on a slip that works."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from mimsdir.cli import main
from mimsdir.connect import network_conn
from tests.sync_helpers import delete_school, school_entries, school_rows, write_roster

# Kill moments stratified over an uninterrupted run's length: case k dies somewhere in the
# k-th twelfth of it, so a dozen cases cover the start, the writes and the slips evenly
# (twenty purely random moments left gaps and cost a quarter of a minute more).
SEEDS = range(12)
ROOT = Path(__file__).resolve().parent.parent
MIMSDIR = ROOT / ".venv" / "bin" / "mimsdir"


def latest_passwords(slips: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for pdf in sorted(slips.rglob("*.pdf")):  # names sort by time of writing
        text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
        for login, pw in re.findall(r"Login ID (\S+)\n(\S+?)Password", text):
            found[login] = pw
    return found


def sync_cmd(slapd, roster: Path, slips: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(MIMSDIR), "--config", str(Path(slapd.base_path) / "config.yaml"), "sync",
            str(roster), "--slips-dir", str(slips), "--max-disable", "100%", "--force"]


def in_process(cmd: list[str]) -> None:
    """The same command through click's runner: no interpreter start-up per call."""
    res = CliRunner().invoke(main, cmd[1:])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def full_run_seconds(slapd, tmp_path_factory) -> float:  # type: ignore[no-untyped-def]
    """How long an uninterrupted run of the test roster takes here: kills land within it."""
    tmp = tmp_path_factory.mktemp("timing")
    school = "K" + uuid.uuid4().hex[:7].upper()
    roster = write_roster(tmp / "r.csv", [{**r, "class": "4A"} for r in school_rows(school, 12)])
    t0 = time.monotonic()
    subprocess.run(sync_cmd(slapd, roster, tmp / "slips"), check=True, capture_output=True)
    elapsed = time.monotonic() - t0
    delete_school(slapd, school)
    return elapsed


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_run_then_normal_run_converges(slapd, tmp_path, seed, full_run_seconds):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    school = "K" + uuid.uuid4().hex[:7].upper()
    try:
        # One class (plus the one three students move to): a slip PDF per class costs time.
        first = [{**r, "class": "4A"} for r in school_rows(school, 12)]
        # Some history first, so the killed run has updates and disables to do too.
        in_process(sync_cmd(slapd, write_roster(tmp_path / "r0.csv", first[:8]),
                            tmp_path / "slips"))
        rows = [*first[2:], *({**r, "class": "4A"} for r in school_rows(school, 4, start=40))]
        for r in rows[:3]:
            r["class"] = "9X"
        roster = write_roster(tmp_path / "r.csv", rows)
        proc = subprocess.Popen(sync_cmd(slapd, roster, tmp_path / "slips"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05 + full_run_seconds * (seed + rng.random()) / len(SEEDS))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        in_process(sync_cmd(slapd, roster, tmp_path / "slips"))

        entries = school_entries(slapd, school)
        want = {r["student_id"]: r for r in rows}
        active = {uid for uid, e in entries.items() if e["mimsAccountStatus"] == ["active"]}
        assert active == set(want)
        for uid, r in want.items():
            e = entries[uid]
            assert e["mimsClass"] == [r["class"]] and e["mail"] == [r["email"]]
            assert "mimsCredentialPending" not in e
        gone = set(entries) - set(want)
        assert all(entries[u]["mimsAccountStatus"] == ["left"] for u in gone)
        # Every student ever created has a working password on a slip.
        passwords = latest_passwords(tmp_path / "slips")
        for uid, e in entries.items():
            if e["mimsAccountStatus"] != ["active"]:
                continue
            pw = passwords.get(e["mail"][0])
            assert pw, f"{uid}: no slip"
            with network_conn(slapd) as c:
                assert c.bind_ppolicy(e["entryDN"][0], pw).ok, f"{uid}: slip password fails"
        # And a third run has nothing left to do.
        report = tmp_path / "again.json"
        in_process([*sync_cmd(slapd, roster, tmp_path / "slips"), "--dry-run", "--report",
                    str(report)])
        planned = json.loads(report.read_text())["planned"]
        assert planned == {**{k: 0 for k in planned}, "unchanged": 16}
    finally:
        delete_school(slapd, school)
