"""A slapd that dies mid-run: the sync exits 4 (or reconnects if it comes back in time), and
the next run converges. Uses its own throwaway directory, so it can be killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from mimsdir.config import load_config
from mimsdir.directory import server
from tests.conftest import free_port, write_config
from tests.sync_helpers import school_entries, school_rows, write_roster

# Each test starts a slapd of its own (tests/conftest.py: no clock shift).
pytestmark = pytest.mark.real_clock

MIMSDIR = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "mimsdir"


@pytest.fixture
def own_directory(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port(),
                            sync={"retries": 2})
    cfg = load_config(cfg_path)
    server.up(cfg)
    yield cfg_path, cfg
    server.down(cfg)


def _sync(cfg_path: Path, roster: Path, report: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(MIMSDIR), "--config", str(cfg_path), "sync", str(roster),
                             "--report", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_writes(cfg, school: str, at_least: int, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(school_entries(cfg, school)) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError("the sync never started writing")


def test_directory_dies_mid_run_exit_4_then_converges(own_directory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg_path, cfg = own_directory
    school = "O" + uuid.uuid4().hex[:6].upper()
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 60))
    proc = _sync(cfg_path, roster, tmp_path / "1.json")
    _wait_for_writes(cfg, school, 1)
    os.kill(server.status(cfg).pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err.decode()
    assert "directory" in err.decode() and "rerun" in err.decode()
    # The report says what was done before the directory went away.
    report = json.loads((tmp_path / "1.json").read_text())
    assert report["exit_code"] == 4 and "went away" in report["interrupted"]
    assert "applied" in report and "INTERRUPTED" in err.decode()

    server.up(cfg)
    proc = _sync(cfg_path, roster, tmp_path / "2.json")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    entries = school_entries(cfg, school)
    assert len(entries) == 60
    assert not any("mimsCredentialPending" in e for e in entries.values())


def test_directory_back_within_the_retries_run_completes(own_directory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg_path, cfg = own_directory
    school = "R" + uuid.uuid4().hex[:6].upper()
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 60))
    proc = _sync(cfg_path, roster, tmp_path / "1.json")
    _wait_for_writes(cfg, school, 1)
    server.down(cfg)
    server.up(cfg)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    report = json.loads((tmp_path / "1.json").read_text())
    assert report["reconnects"] >= 1
    assert len(school_entries(cfg, school)) == 60
