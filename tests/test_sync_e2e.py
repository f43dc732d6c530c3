"""The roster sync end to end against the session's slapd, through the CLI."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from pypdf import PdfReader

from mimsdir.connect import network_conn
from tests.sync_helpers import (
    delete_school,
    row,
    run_sync,
    school_entries,
    school_rows,
    write_roster,
)


@pytest.fixture
def school(slapd):  # type: ignore[no-untyped-def]
    code = "Y" + uuid.uuid4().hex[:7].upper()
    yield code
    delete_school(slapd, code)


def slip_passwords(slips_dir: Path) -> dict[str, str]:
    """login ID -> the latest password printed for it, read back from the slip PDFs."""
    found: dict[str, str] = {}
    for pdf in sorted(slips_dir.rglob("*.pdf")):  # names carry a timestamp: later wins
        text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
        for login, pw in re.findall(r"Login ID (\S+)\n(\S+?)Password", text):
            found[login] = pw
    return found


def test_create_then_idempotent(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 6))
    r = run_sync(slapd, roster, tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert r.report["planned"]["create"] == 6 and r.report["applied"]["create"] == 6
    entries = school_entries(slapd, school)
    assert len(entries) == 6
    for e in entries.values():
        assert e["mimsAccountStatus"] == ["active"]
        assert "mimsCredentialPending" not in e
        assert e["pwdReset"] == ["TRUE"]
        assert e["userPassword"][0].startswith("{ARGON2}")
    # Every new student's password is on a slip (mode 0600), and it works (must change).
    slips = list((tmp_path / "slips").rglob("*.pdf"))
    assert slips and all(p.stat().st_mode & 0o777 == 0o600 for p in slips)
    pw = slip_passwords(tmp_path / "slips")
    assert len(pw) == 6
    for e in entries.values():
        with network_conn(slapd) as c:
            out = c.bind_ppolicy(e["entryDN"][0], pw[e["mail"][0]])
            assert out.ok and out.must_change
    # No password in the report or the output.
    blob = r.result.output + str(r.report)
    assert not any(p in blob for p in pw.values())

    again = run_sync(slapd, roster, tmp=tmp_path)
    assert again.code == 0
    assert again.report["planned"] == {**{k: 0 for k in again.report["planned"]},
                                       "unchanged": 6}


def test_every_kind(slapd, make, school, tmp_path):  # type: ignore[no-untyped-def]
    teacher = make.teacher("4A")
    rows = [row(school, 1, "P3", "3A"), row(school, 2, "P4", "4A"), row(school, 3, "P5", "5A"),
            row(school, 4, "P5", "5B"), row(school, 5, "P6", "6A"), row(school, 6, "P2", "2A")]
    assert run_sync(slapd, write_roster(tmp_path / "a.csv", rows), tmp=tmp_path).code == 0
    # Next night: 1 promoted P3->P4 (+teacher), 2 moves class, 3 renamed + new email,
    # 4 left, 5 unchanged, 6 marked left explicitly, 7 new.
    rows2 = [
        row(school, 1, "P4", "4A", form_teacher_email=teacher.mail),
        row(school, 2, "P4", "4B"),
        row(school, 3, "P5", "5A", given_name="Renamed",
            email=f"new.{school.lower()}@students.test.sg"),
        row(school, 5, "P6", "6A"),
        row(school, 6, "P2", "2A", status="left"),
        row(school, 7, "P3", "3A"),
    ]
    r = run_sync(slapd, write_roster(tmp_path / "b.csv", rows2), "--max-disable", "2",
                 tmp=tmp_path)
    assert r.code == 0, r.result.output
    p = r.report["planned"]
    assert (p["promote"], p["move"], p["update"], p["disable"], p["create"], p["unchanged"]) \
        == (1, 1, 1, 2, 1, 1)
    e = school_entries(slapd, school)
    s1 = e[f"{school}001"]
    assert s1["mimsLevel"] == ["P4"] and s1["mimsQnaMustChange"] == ["TRUE"]
    assert s1["pwdPolicySubentry"][0].startswith("cn=upper-primary")
    assert s1["mimsFormTeacher"] == [teacher.dn]
    assert e[f"{school}002"]["mimsClass"] == ["4B"]
    assert e[f"{school}003"]["givenName"] == ["Renamed"]
    assert e[f"{school}003"]["mail"] == [f"new.{school.lower()}@students.test.sg"]
    for gone in ("004", "006"):
        assert e[f"{school}{gone}"]["mimsAccountStatus"] == ["left"]
        assert "mimsLeftAt" in e[f"{school}{gone}"]
    assert e[f"{school}007"]["mimsAccountStatus"] == ["active"]

    # The student who left comes back: re-enabled with everything kept.
    rows3 = [*rows2[:4], row(school, 4, "P5", "5B"), row(school, 6, "P2", "2A"),
             row(school, 7, "P3", "3A")]
    r = run_sync(slapd, write_roster(tmp_path / "c.csv", rows3), tmp=tmp_path)
    assert r.code == 0 and r.report["planned"]["reenable"] == 2
    e = school_entries(slapd, school)
    assert e[f"{school}004"]["mimsAccountStatus"] == ["active"]
    assert "mimsLeftAt" not in e[f"{school}004"]


def test_ict_disabled_student_stays_disabled(slapd, root, school, tmp_path):  # type: ignore[no-untyped-def]
    import ldap

    rows = school_rows(school, 3)
    roster = write_roster(tmp_path / "r.csv", rows)
    assert run_sync(slapd, roster, tmp=tmp_path).code == 0
    dn = f"uid={school}001,ou=students,dc=mims,dc=example"
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "ICT disable")
    r = run_sync(slapd, roster, tmp=tmp_path)
    assert r.code == 0 and r.report["planned"]["reenable"] == 0
    assert school_entries(slapd, school)[f"{school}001"]["mimsAccountStatus"] == ["disabled"]


def test_purge_only_after_retention_and_with_flag(slapd, root, school, tmp_path):  # type: ignore[no-untyped-def]
    import ldap

    roster = write_roster(tmp_path / "r.csv", school_rows(school, 4))
    assert run_sync(slapd, roster, tmp=tmp_path).code == 0
    dn = f"uid={school}001,ou=students,dc=mims,dc=example"
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"left"]),
                     (ldap.MOD_REPLACE, "mimsLeftAt", [b"20200101000000Z"])], "long gone")
    dn2 = f"uid={school}002,ou=students,dc=mims,dc=example"
    root.modify(dn2, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"left"]),
                      (ldap.MOD_REPLACE, "mimsLeftAt", [b"20990101000000Z"])], "recent")
    rows = school_rows(school, 4)[2:]
    roster2 = write_roster(tmp_path / "r2.csv", rows)
    r = run_sync(slapd, roster2, "--force", tmp=tmp_path)
    assert r.report["planned"]["purge"] == 0
    r = run_sync(slapd, roster2, "--purge", "--force", tmp=tmp_path)
    assert r.code == 0 and r.report["planned"]["purge"] == 1
    e = school_entries(slapd, school)
    assert f"{school}001" not in e and f"{school}002" in e


@pytest.mark.parametrize("case", ["max_disable", "shrink", "empty", "blank", "missing_school",
                                  "school_gone"])
def test_guards_refuse_and_write_nothing(slapd, school, tmp_path, case):  # type: ignore[no-untyped-def]
    rows = school_rows(school, 40)
    assert run_sync(slapd, write_roster(tmp_path / "full.csv", rows), tmp=tmp_path).code == 0
    before = school_entries(slapd, school)
    args: list[str] = []
    if case == "max_disable":  # 3 of 40 left: above 5% (= 2)
        roster = write_roster(tmp_path / "full.csv", rows[3:])
        args = ["--max-disable", "2"]
        expect = "sync.max_disable"
    elif case == "shrink":  # same file name, 5 rows fewer (12.5% > 10%), disables allowed
        roster = write_roster(tmp_path / "full.csv", rows[5:])
        args = ["--max-disable", "50%"]
        expect = "max_shrink"
    elif case == "empty":
        roster = tmp_path / "full.csv"
        roster.write_text("student_id,email,given_name,family_name,school_code,level,class\n")
        expect = "empty roster"
    elif case == "blank":
        roster = tmp_path / "full.csv"
        roster.write_bytes(b"")
        expect = "empty"
    elif case == "missing_school":
        roster = write_roster(tmp_path / "other.csv", [row("ZZOTHER", 1)])
        args = ["--school", school]
        expect = "missing from the roster"
    else:  # the last run of this file covered the school; now only another school is there
        roster = write_roster(tmp_path / "full.csv", [row("ZZOTHER", 1)])
        expect = "missing now"
    r = run_sync(slapd, roster, *args, tmp=tmp_path)
    assert r.code == 3, r.result.output
    assert expect in r.result.output
    assert "--force" in r.result.output or case == "blank"
    assert school_entries(slapd, school) == before
    if case in ("max_disable", "shrink"):
        forced = run_sync(slapd, roster, *args, "--force", tmp=tmp_path)
        assert forced.code == 0 and forced.report["forced"] is True
        assert school_entries(slapd, school) != before


def test_level_changes_do_not_count_as_disables(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    rows = school_rows(school, 20)
    assert run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path).code == 0
    up = [{**r, "level": f"P{min(6, int(r['level'][1]) + 1)}"} for r in rows]
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", up), tmp=tmp_path)
    assert r.code == 0
    assert r.report["planned"]["promote"] == 16  # the P6s stay P6


def test_bad_rows_reported_good_rows_applied_named_students_kept(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    rows = school_rows(school, 8)
    assert run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path).code == 0
    other = school_rows(school, 1, start=50)[0]
    bad = [
        {**rows[0], "email": "not-an-email"},              # bad email: must not be disabled
        {**rows[1], "level": "P9"},                         # unknown level
        {**rows[2], "given_name": ""},                      # missing field
        rows[3], {**rows[3], "email": "dup@students.test.sg"},  # duplicate id: both rows
        rows[4], {**other, "email": rows[4]["email"]},      # duplicate email: both rows
        {**other, "student_id": f"{school}051", "email": rows[5]["email"]},  # wait: dup too
        rows[6],
        {**rows[7], "class": "7Z"},                         # a good change
        row(school, 60, "P2", "2A", email=f"{school.lower()}001@students.test.sg"),  # taken
    ]
    path = write_roster(tmp_path / "bad.csv", bad)
    # an invalid UTF-8 row, at a known line
    bad_row = f"{school}070,x{school.lower()}@students.test.sg,B\xe9d,Tan,{school},P3,3A,,\n"
    data = path.read_bytes() + bad_row.encode("latin-1")
    path.write_bytes(data)
    r = run_sync(slapd, path, "--max-disable", "0", tmp=tmp_path)
    assert r.code == 1, r.result.output
    errors = "\n".join(r.report["row_errors"])
    for needle in ("bad.csv:2: email", "bad.csv:3: level", "bad.csv:4: given_name",
                   "bad.csv:5: student_id", "bad.csv:6: student_id", "duplicate",
                   "already the login ID", "bad.csv:13: encoding"):
        assert needle in errors, (needle, errors)
    e = school_entries(slapd, school)
    # Nobody named by a bad row was disabled; the good change applied.
    assert all(v["mimsAccountStatus"] == ["active"] for v in e.values())
    assert e[f"{school}008"]["mimsClass"] == ["7Z"]
    assert r.report["planned"]["disable"] == 0
    assert f"{school}060" not in e


def test_second_run_refused_while_one_runs(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    from mimsdir.sync.runlock import run_lock

    roster = write_roster(tmp_path / "r.csv", school_rows(school, 2))
    with run_lock(slapd.path(slapd.sync.state_dir)):
        r = run_sync(slapd, roster, tmp=tmp_path)
    assert r.code == 2
    assert "another sync is running" in r.result.output and "pid" in r.result.output
    assert run_sync(slapd, roster, tmp=tmp_path).code == 0


def test_dry_run_plan_out_and_apply_plan(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    import ldap

    roster = write_roster(tmp_path / "r.csv", school_rows(school, 5))
    plan = tmp_path / "plan.json"
    r = run_sync(slapd, roster, "--dry-run", "--plan-out", str(plan), tmp=tmp_path)
    assert r.code == 0 and school_entries(slapd, school) == {}
    assert "create" in plan.read_text()
    r = run_sync(slapd, None, "--apply-plan", str(plan), tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert len(school_entries(slapd, school)) == 5
    # A plan made before someone else changed the directory is refused.
    rows = school_rows(school, 5)
    rows[0]["class"] = "9Z"
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), "--dry-run", "--plan-out",
                 str(plan), tmp=tmp_path)
    from mimsdir.directory.server import root_conn

    with root_conn(slapd) as c:
        c.modify(f"uid={school}002,ou=students,dc=mims,dc=example",
                 [(ldap.MOD_REPLACE, "mimsClass", [b"0X"])], "someone else")
    r = run_sync(slapd, None, "--apply-plan", str(plan), tmp=tmp_path)
    assert r.code == 3 and "changed since this plan" in r.result.output
    assert school_entries(slapd, school)[f"{school}001"]["mimsClass"] != ["9Z"]


def test_transfer_between_schools_is_a_move_not_a_disable(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    other = school + "B"
    try:
        assert run_sync(slapd, write_roster(tmp_path / "a.csv", school_rows(school, 3)),
                        tmp=tmp_path).code == 0
        moved = {**school_rows(school, 3)[0], "school_code": other}
        r = run_sync(slapd, write_roster(tmp_path / "b.csv", [moved]), tmp=tmp_path)
        assert r.code == 0, r.result.output
        assert r.report["planned"]["move"] == 1 and r.report["planned"]["disable"] == 0
        assert school_entries(slapd, other)[f"{school}001"]["mimsAccountStatus"] == ["active"]
    finally:
        delete_school(slapd, other)


def test_unreachable_directory_exits_4(slapd, tmp_path):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from mimsdir.cli import main
    from tests.conftest import free_port, write_config

    cfg = write_config(tmp_path / "c.yaml", slapd.state_dir, free_port())
    roster = write_roster(tmp_path / "r.csv", school_rows("QQ", 2))
    res = CliRunner().invoke(main, ["--config", str(cfg), "sync", str(roster)])
    assert res.exit_code == 4 and "unreachable" in res.output


def test_cron_wrapper_logs_and_keeps_the_exit_code(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 2))
    env = {**os.environ, "MIMS_CONFIG": str(Path(slapd.base_path) / "config.yaml"),
           "ROSTER": str(roster), "LOG_DIR": str(tmp_path / "log"),
           "MIMSDIR": str(root / ".venv" / "bin" / "mimsdir")}
    res = subprocess.run([str(root / "scripts" / "mimsdir-sync-cron.sh"), "--slips-dir",
                          str(tmp_path / "slips")], env=env, capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0 and res.stdout == ""
    (log,) = (tmp_path / "log").glob("sync-*.log")
    assert "created" in log.read_text() and "exit 0" in log.read_text()
    assert list((tmp_path / "log").glob("sync-*.json"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    env["ROSTER"] = str(empty)
    res = subprocess.run([str(root / "scripts" / "mimsdir-sync-cron.sh")], env=env,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 3 and "REFUSED" in res.stdout


def test_unwritable_report_is_one_line_not_a_traceback(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 1))
    r = run_sync(slapd, roster, "--report", "/proc/not-here/report.json", tmp=tmp_path)
    assert r.code == 2
    assert "Traceback" not in r.result.output and "/proc/not-here" in r.result.output


def test_progress_bar_only_on_a_terminal(slapd, school, tmp_path):  # type: ignore[no-untyped-def]
    """On a tty, stderr shows a progress bar; in cron (no tty) it does not."""
    import os
    import pty
    import subprocess

    root = Path(__file__).resolve().parent.parent
    cmd = [str(root / ".venv" / "bin" / "mimsdir"), "--config",
           str(Path(slapd.base_path) / "config.yaml"), "sync",
           str(write_roster(tmp_path / "r.csv", school_rows(school, 3))),
           "--slips-dir", str(tmp_path / "slips")]
    leader, follower = pty.openpty()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=follower, check=False)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0 and b"applying" in seen
    rows = school_rows(school, 4)
    res = subprocess.run([*cmd[:4], str(write_roster(tmp_path / "r2.csv", rows)),
                          *cmd[5:]], capture_output=True, check=False)
    assert res.returncode == 0 and b"applying" not in res.stderr
