"""`mimsdir directory posix-backfill` (and `directory load`, which runs it) on a throwaway
instance: the demo school's staff and students get their posix attributes, a sync of its
roster then finds nothing to do, a second back-fill changes nothing, and an older directory
without the id pools gets them from `up`."""

from __future__ import annotations

from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.config import load_config
from mimsdir.directory import server
from mimsdir.directory.idpool import read_groups
from mimsdir.directory.slapdconf import Dns
from mimsdir.posix import ID_STRIDE
from tests.conftest import free_port, write_config
from tests.sync_helpers import run_sync

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "ldap-fixtures"
# Each test starts its own slapd, whose certificate and checks run on the real clock.
pytestmark = pytest.mark.real_clock

# Each test starts a slapd of its own, with TLS: never clock-shifted (tests/conftest.py).
pytestmark = pytest.mark.real_clock


@pytest.fixture
def instance(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port(),
                            sync={"state_dir": str(tmp_path / "sync")})
    cfg = load_config(cfg_path)
    server.up(cfg)
    yield cfg
    server.down(cfg)


def cli(cfg, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(Path(cfg.base_path) / "config.yaml"),
                                     *args])


def people(cfg):  # type: ignore[no-untyped-def]
    dns = Dns(cfg.ldap.base_dn)
    with server.root_conn(cfg) as c:
        found = {}
        for base in (dns.staff, dns.students):
            for dn, a in c.search(base, ldap.SCOPE_ONELEVEL, "(uid=*)", ["*"], "reading"):
                found[dn] = {k: [v.decode() for v in vs] for k, vs in a.items()}
        return found, read_groups(c, dns)


def test_load_back_fills_then_the_sync_has_nothing_to_do(instance, tmp_path) -> None:  # type: ignore[no-untyped-def]
    res = cli(instance, "directory", "load", str(DEMO / "demo-school.ldif"))
    assert res.exit_code == 0, res.output
    assert "posix attributes: 7 staff and 40 students got them" in res.output
    assert "groups: mims-staff, school-demops" in res.output
    found, groups = people(instance)
    numbers = [int(e["uidNumber"][0]) for e in found.values()]
    assert len(found) == 47 and len(set(numbers)) == 47
    assert all((n - instance.posix.uid_min) % ID_STRIDE == 0 for n in numbers)
    teacher = found["uid=T4471253,ou=staff,dc=mims,dc=example"]
    assert teacher["gidNumber"] == [str(groups["mims-staff"])]
    assert teacher["homeDirectory"] == ["/home/staff/t4471253"]
    assert teacher["loginShell"] == ["/bin/bash"]
    student = found["uid=S2614023J,ou=students,dc=mims,dc=example"]
    assert student["gidNumber"] == [str(groups["school-demops"])]
    assert student["homeDirectory"] == ["/home/demops/s2614023j"]
    assert "posixAccount" in student["objectClass"]

    # The nightly job: the roster matches what was loaded, posix attributes included.
    r = run_sync(instance, DEMO / "demo-school.csv", tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert r.report["planned"]["unchanged"] == 40
    assert sum(v for k, v in r.report["planned"].items() if k != "unchanged") == 0

    again = cli(instance, "directory", "posix-backfill")
    assert again.exit_code == 0
    assert "0 staff and 0 students got them" in again.output
    assert people(instance) == (found, groups)


def test_backfill_fills_only_who_lacks_it(instance) -> None:  # type: ignore[no-untyped-def]
    dns = Dns(instance.ldap.base_dn)
    with server.root_conn(instance) as c:
        c.add(f"uid=NEWSTAFF,{dns.staff}", {
            "objectClass": [b"inetOrgPerson"], "uid": [b"NEWSTAFF"], "cn": [b"New Staff"],
            "sn": [b"Staff"], "mail": [b"new.staff@demo.edu.sg"]}, "adding staff by hand")
    dry = cli(instance, "directory", "posix-backfill", "--dry-run")
    assert dry.exit_code == 0 and "1 staff and 0 students would get them" in dry.output
    assert "uidNumber" not in people(instance)[0][f"uid=NEWSTAFF,{dns.staff}"]
    res = cli(instance, "directory", "posix-backfill")
    assert res.exit_code == 0 and "1 staff and 0 students got them" in res.output
    entry = people(instance)[0][f"uid=NEWSTAFF,{dns.staff}"]
    assert entry["homeDirectory"] == ["/home/staff/newstaff"]  # no school code: "staff"


def test_up_gives_an_older_directory_its_id_pools(instance) -> None:  # type: ignore[no-untyped-def]
    dns = Dns(instance.ldap.base_dn)
    with server.root_conn(instance) as c:
        c.delete(dns.idpool("probe"), "making an older directory")
        c.delete(dns.idpools, "making an older directory")
        c.delete(dns.posixgroups, "making an older directory")
    changed = server.ensure_policies(instance)
    assert {"ou=idpools", "ou=posixgroups", "probe"} <= set(changed)
    assert server.ensure_policies(instance) == []
    res = cli(instance, "directory", "load", str(DEMO / "demo-school.ldif"))
    assert res.exit_code == 0 and "7 staff and 40 students got them" in res.output
