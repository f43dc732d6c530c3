"""`mimsdir directory up|down|status|load` on a second, throwaway instance."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import NotFound
from tests.conftest import free_port, write_config

# Most tests start a slapd of their own (tests/conftest.py: no clock shift).
pytestmark = pytest.mark.real_clock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def instance(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port())
    yield cfg_path
    server.down(load_config(cfg_path))


def run(cfg_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(cfg_path), *args])


def test_up_is_idempotent_status_load_down(instance: Path) -> None:
    res = run(instance, "directory", "status")
    assert res.exit_code == 4 and "not running" in res.output

    res = run(instance, "directory", "up")
    assert res.exit_code == 0, res.output
    assert "directory started" in res.output
    res = run(instance, "directory", "up")
    assert res.exit_code == 0 and "already running" in res.output

    cfg = load_config(instance)
    state = cfg.state_dir
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for name in ("sync", "sspr", "device"):
        pw_file = cfg.secrets_dir / f"{name}.pw"
        assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
        secret = pw_file.read_text()
        # Never in the log, nor in what the command printed.
        assert secret not in (state / "slapd.log").read_text(errors="replace")
        assert secret not in res.output

    fixtures = ROOT / "ldap-fixtures" / "demo-school.ldif"
    res = run(instance, "directory", "load", str(fixtures))
    assert res.exit_code == 0, res.output
    assert "48 added, 0 already present" in res.output
    res = run(instance, "directory", "load", str(fixtures))
    assert "0 added, 48 already present" in res.output

    res = run(instance, "directory", "status")
    assert res.exit_code == 0 and cfg.ldap.uri in res.output
    assert "students:" not in res.output  # counting them reads them all: only when asked
    # The entry count is slapd's own (cn=Monitor), and it is the real one.
    with server.root_conn(cfg) as c:
        real = len(c.search(cfg.ldap.base_dn, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                            "counting every entry"))
    assert f"entries:  {real}\n" in res.output
    res = run(instance, "directory", "status", "--count-students")
    assert res.exit_code == 0 and "students: 40" in res.output
    # Nobody but the host's root reads the monitor.
    with network_conn(cfg) as c:
        c.bind(f"cn=sync,ou=services,{cfg.ldap.base_dn}",
               (cfg.secrets_dir / "sync.pw").read_text().strip())
        with pytest.raises(NotFound):  # not even that it exists
            c.search("cn=Monitor", ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                     "reading the monitor")

    res = run(instance, "directory", "down")
    assert res.exit_code == 0 and "stopped" in res.output
    assert not server.status(cfg).running
    res = run(instance, "directory", "down")
    assert "was not running" in res.output

    # Restart keeps the data, and a changed policy in config.yaml reaches the directory.
    text = instance.read_text().replace("lockout_seconds: 2", "lockout_seconds: 7")
    instance.write_text(text)
    res = run(instance, "directory", "up")
    assert res.exit_code == 0, res.output
    cfg = load_config(instance)
    with server.root_conn(cfg) as c:
        dns = Dns(cfg.ldap.base_dn)
        assert len(c.search(dns.students, ldap.SCOPE_ONELEVEL, "(uid=*)", ["1.1"], "count")) == 40
        pol = c.get(dns.policy("lower-primary"), ["pwdLockoutDuration"], "policy")
        assert pol["pwdLockoutDuration"] == [b"7"]


def test_bad_ldif_names_the_file(instance: Path, tmp_path: Path) -> None:
    run(instance, "directory", "up")
    bad = tmp_path / "bad.ldif"
    bad.write_text("dn: uid=x,ou=students,dc=mims,dc=example\nobjectClass: inetOrgPerson\n"
                   "uid: x\ncn: x\n")  # no sn: a schema violation
    res = run(instance, "directory", "load", str(bad))
    assert res.exit_code != 0
    assert str(bad) in res.output and "Traceback" not in res.output


def test_unreachable_directory_exits_4(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "nowhere", free_port())
    res = run(cfg_path, "directory", "load", str(ROOT / "ldap-fixtures" / "demo-school.ldif"))
    assert res.exit_code == 4
    assert "unreachable" in res.output


def test_help_has_examples() -> None:
    for cmd in (["directory", "up"], ["directory", "down"], ["directory", "status"],
                ["directory", "load"]):
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output


def test_port_in_use_fails_fast_with_the_reason(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "state", busy.getsockname()[1])
        t0 = time.monotonic()
        res = run(cfg_path, "directory", "up")
        assert res.exit_code == 4
        assert "Address already in use" in res.output
        assert time.monotonic() - t0 < 10
