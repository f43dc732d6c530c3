"""``mimsdir student ...`` against the session's slapd: show, find, reset-password, unlock,
disable, enable, and the exit codes of design-notes §6."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.connect import network_conn
from mimsdir.ldapio import first
from tests.conftest import free_port, write_config
from tests.staff_helpers import (
    bind,
    config_path,
    make_class,
    run,
    slip_chunks,
    slip_password,
)

PASSWORD_RE = re.compile(r"new password: (\S+)")


def lock_out(slapd, person) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):  # the test policy locks after 3 failures
        assert not bind(slapd, person.dn, "wrong-guess-1").ok
    assert bind(slapd, person.dn, person.password).locked


def test_reset_show_forces_change_clears_lockouts(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3", class_name="3A")
    lock_out(slapd, s)
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprFailures", [b"4"]),
                       (ldap.MOD_REPLACE, "mimsSsprLockedUntil", [b"20991231000000Z"])], "sspr")

    res = run(config_path(slapd), "student", "reset-password", s.mail, "--show")
    assert res.exit_code == 0, res.output
    (password,) = PASSWORD_RE.findall(res.stdout)
    assert len(password) >= 9 and password != s.password
    attrs = root.get(s.dn, ["pwdReset", "pwdAccountLockedTime", "pwdFailureTime",
                            "mimsSsprFailures", "mimsSsprLockedUntil", "mimsCredentialPending"],
                     "reading")
    assert attrs == {"pwdReset": [b"TRUE"]}

    out = bind(slapd, s.dn, password)
    assert out.ok and out.must_change
    with network_conn(slapd, timeout=5) as c:
        assert c.bind_ppolicy(s.dn, password).must_change
        c.set_password(s.dn, "Brand-new-pw-7", old=password)
    out = bind(slapd, s.dn, "Brand-new-pw-7")
    assert out.ok and not out.must_change


def test_reset_a_class_into_slips(slapd, make, root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kids = make_class(make, 3, "P2", "2B")
    other = make.student(level="P2", class_name="2C")
    gone = make.student(level="P2", class_name="2B", status="disabled")
    pdf = tmp_path / "slips.pdf"
    res = run(config_path(slapd), "student", "reset-password", "--school", make.school,
              "--class", "2b", "-o", str(pdf))
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(pdf).st_mode) == 0o600
    assert not (tmp_path / ".slips.pdf.pending").exists()
    chunks = list(slip_chunks(pdf))
    assert len(chunks) == 3
    by_mail = {k.mail: k for k in kids}
    for chunk in chunks:
        (mail,) = [m for m in by_mail if m in chunk]
        password = slip_password(chunk)
        assert password not in res.output
        out = bind(slapd, by_mail.pop(mail).dn, password)
        assert out.ok and out.must_change
        assert "MUST change" in chunk
    assert bind(slapd, other.dn, other.password).ok  # another class untouched
    assert first(root.get(gone.dn, ["pwdReset"], "r") or {}, "pwdReset") is None


def test_reset_usage_and_row_errors(slapd, make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5", class_name="5A")
    cfg = config_path(slapd)
    for args in ([s.uid], [s.uid, "--show", "-o", str(tmp_path / "x.pdf")],
                 [s.uid, "--school", make.school, "--show"], ["--school", make.school, "--show"]):
        res = run(cfg, "student", "reset-password", *args)
        assert res.exit_code == 2, (args, res.output)
    # an output folder that does not exist: refused before any password changes
    res = run(cfg, "student", "reset-password", s.uid, "-o", str(tmp_path / "no" / "x.pdf"))
    assert res.exit_code == 2 and "does not exist" in res.stderr
    assert bind(slapd, s.dn, s.password).ok
    # an unknown ID is a row error: the others are still reset, exit 1
    res = run(cfg, "student", "reset-password", "S-NOBODY", s.uid, "--show")
    assert res.exit_code == 1
    assert "S-NOBODY: no student with ID or login ID 'S-NOBODY'" in res.stderr
    assert bind(slapd, s.dn, PASSWORD_RE.findall(res.stdout)[0]).must_change


def test_show_and_find(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher(class_name="4A")
    s = make.student(level="P4", class_name="4A", teacher=teacher, displayName=["陈伟玲".encode()])
    quiet = make.student(level="P4", class_name="4A",
                         mimsChallenge=[b"first-soft-toy$$argon2id$dummy"],
                         mimsChallengeOrigin=[b"student"])
    left = make.student(level="P6", class_name="6A", status="left")
    lock_out(slapd, s)
    root.set_password(quiet.dn, "Reset-by-root-1")
    cfg = config_path(slapd)

    res = run(cfg, "student", "show", s.mail)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert f"student ID          {s.uid}" in out and "陈伟玲" in out
    assert re.search(r"locked now\s+YES, since", out)
    assert re.search(r"failed sign-ins\s+3", out)
    assert f"Teacher {teacher.uid} <{teacher.mail}>" in out
    assert re.search(r"answers\s+none", out) and "upper-primary" in out
    data = json.loads(run(cfg, "student", "show", quiet.uid, "--json").stdout)
    assert data["must_change"] and data["answers"] == 1 and data["answers_origin"] == "student"
    assert "argon2" not in json.dumps(data)

    res = run(cfg, "student", "show", "nobody@nowhere.sg")
    assert res.exit_code == 1
    assert res.stderr.strip() == ("mimsdir: no student with ID or login ID "
                                  "'nobody@nowhere.sg'")

    def found(*args: str) -> set[str]:
        r = run(cfg, "student", "find", "--school", make.school, *args, "--json")
        assert r.exit_code == 0, r.output
        return {row["id"] for row in json.loads(r.stdout)}

    assert found() == {s.uid, quiet.uid, left.uid}
    assert found("--class", "4a") == {s.uid, quiet.uid}
    assert found("--locked") == {s.uid}
    assert found("--must-change") == {quiet.uid}
    assert found("--qna-pending", "--status", "active") == {s.uid}
    assert found("--status", "left", "--level", "p6") == {left.uid}
    table = run(cfg, "student", "find", "--school", make.school, "--class", "4A").stdout
    assert "locked" in table and "2 student(s)" in table


def test_unlock_disable_enable(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P2", class_name="2A")
    t = make.student(level="P2", class_name="2A", status="left")
    lock_out(slapd, s)
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsSsprLockedUntil", [b"20991231000000Z"])], "x")
    cfg = config_path(slapd)

    res = run(cfg, "student", "unlock", s.uid)
    assert res.exit_code == 0 and f"unlocked {s.uid}" in res.stdout
    assert root.get(s.dn, ["pwdAccountLockedTime", "mimsSsprLockedUntil"], "r") == {}
    assert bind(slapd, s.dn, s.password).ok

    res = run(cfg, "student", "disable", s.uid)
    assert res.exit_code == 0
    assert not bind(slapd, s.dn, s.password).ok
    res = run(cfg, "student", "disable", s.uid, t.uid)
    assert res.exit_code == 0 and "already disabled" in res.stdout and "left" in res.stdout
    res = run(cfg, "student", "enable", s.uid, t.uid)
    assert res.exit_code == 1 and f"{t.uid}: left the school" in res.stderr
    assert bind(slapd, s.dn, s.password).ok
    assert run(cfg, "student", "unlock").exit_code == 2  # an ID is required


def test_every_staff_command_has_help_with_an_example() -> None:
    commands = [["student", c] for c in ("show", "find", "reset-password", "unlock", "disable",
                                         "enable")]
    commands += [["qna", "cards"], ["qna", "reset"], ["requests", "import"], ["report"],
                 ["audit"]]
    for cmd in commands:
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output, cmd
    assert "lower primary" in CliRunner().invoke(main, ["qna", "cards", "--help"]).output


def test_directory_unreachable_exits_4(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "no-state", free_port())
    for args in (["student", "show", "S1"], ["report"], ["student", "unlock", "S1"]):
        res = run(cfg, *args)
        assert res.exit_code == 4, res.output
        assert "unreachable" in res.stderr


@pytest.mark.parametrize("args", [["student", "find", "--level", "P9"],
                                  ["student", "find", "--status", "gone"]])
def test_bad_options_are_usage_errors(slapd, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert run(config_path(slapd), *args).exit_code == 2
