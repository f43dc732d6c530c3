"""`directory up` leaves no half-started slapd behind (issue 8, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimsdir.config import load_config
from mimsdir.directory import server
from mimsdir.errors import DirectoryError
from tests.conftest import free_port, write_config

# Each test starts a slapd of its own (tests/conftest.py: no clock shift).
pytestmark = pytest.mark.real_clock


def _slapds_of(state_dir: Path) -> list[int]:
    """Every running slapd whose command line names this state dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            status = (proc / "stat").read_text()
        except OSError:
            continue
        zombie = status.split(") ", 1)[-1].startswith("Z")
        if b"slapd" in cmdline and str(state_dir).encode() in cmdline and not zombie:
            found.append(int(proc.name))
    return found


def test_up_stops_the_slapd_it_started_when_a_later_step_fails(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    cfg = load_config(write_config(tmp_path / "c.yaml", state, free_port()))

    def broken(_cfg):  # type: ignore[no-untyped-def]
        assert _slapds_of(state), "slapd should be running when the policies are written"
        raise DirectoryError("updating the lower-primary policy: refused")

    monkeypatch.setattr(server, "ensure_policies", broken)
    with pytest.raises(DirectoryError, match="refused"):
        server.up(cfg)
    assert _slapds_of(state) == []
    assert server.status(cfg).running is False
    assert not (state / "slapd.pid").exists()
    monkeypatch.undo()
    # Nothing half-done is left in the way: the next `up` starts normally.
    try:
        status, started = server.up(cfg)
        assert started and status.running
    finally:
        server.down(cfg)
    assert _slapds_of(state) == []


def test_up_upgrades_an_older_directory(slapd, root, dns):  # type: ignore[no-untyped-def]
    """A directory made before the check module and the decoy: `up` (ensure_policies) adds
    pwdPolicyChecker and the module's attributes to the policies, and the decoy with its
    policy."""
    import ldap

    policy = dns.policy("lower-primary")
    root.modify(policy, [(ldap.MOD_DELETE, "pwdCheckModule", None),
                         (ldap.MOD_DELETE, "pwdCheckModuleArg", None),
                         (ldap.MOD_DELETE, "objectClass", [b"pwdPolicyChecker"])], "downgrading")
    root.delete(dns.service("decoy"), "removing the decoy")
    root.delete(dns.policy("decoy"), "removing the decoy policy")
    changed = server.ensure_policies(slapd)
    assert {"lower-primary", "decoy"} <= set(changed)
    attrs = root.get(policy, ["objectClass", "pwdCheckModule"], "reading the policy")
    assert b"pwdPolicyChecker" in attrs["objectClass"]
    assert attrs["pwdCheckModule"] == [slapd.directory.pwcheck_module.encode()]
    decoy = root.get(dns.service("decoy"), ["pwdPolicySubentry", "userPassword"], "decoy")
    assert decoy["pwdPolicySubentry"] == [dns.policy("decoy").encode()]
    assert server.ensure_policies(slapd) == []
