"""`mimsdir directory load --offline`: slapadd into the stopped directory, and the national data
set of `make bench` (benchmarks/national.py) that it loads."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from benchmarks import national
from mimsdir.cli import main
from mimsdir.config import load_config
from mimsdir.directory import loader, server
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import DirectoryError, UsageError
from mimsdir.sync.run import SyncOptions, run
from tests.conftest import free_port, page_cached, write_config

pytestmark = pytest.mark.real_clock  # a slapd of its own

N = 1200  # two schools, P1-P6, classes of 30


@pytest.fixture
def stopped(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A directory made once (cn=config, base tree, secrets) and stopped again."""
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port())
    cfg = load_config(cfg_path)
    server.up(cfg)
    server.down(cfg)
    yield cfg_path
    server.down(cfg)


def test_the_national_data_set_loads_offline_and_is_what_a_sync_would_have_made(
        stopped: Path, tmp_path: Path) -> None:
    cfg = load_config(stopped)
    rows = list(national.rows(N))
    roster = national.write_roster(tmp_path / "roster.csv", rows)
    ldif = tmp_path / "national.ldif"
    entries = national.write_ldif(ldif, roster, cfg.ldap.base_dn,
                                  server.hash_password(cfg, "Bench-Only-1"), cfg.posix)
    res = CliRunner().invoke(main, ["--config", str(stopped), "directory", "load", "--offline",
                                    str(ldif)])
    assert res.exit_code == 0, res.output
    assert f"{entries} entries loaded" in res.output
    # On disk and out of the page cache (slapd's writes into slapadd's large folios cost it
    # a third more CPU a sign-in: mimsdir/disk.py, uncache).
    assert page_cached(cfg.state_dir / "data" / "data.mdb") <= 8 * 4096
    server.up(cfg)
    # A sync of the same roster finds nothing to do: the entries are exactly the sync's own.
    out = run(cfg, SyncOptions(roster=roster))
    assert out.plan.counts()["unchanged"] == N
    assert [c.kind for c in out.plan.changes] == []
    with server.root_conn(cfg) as c:
        dns = Dns(cfg.ldap.base_dn)
        got = c.search(dns.students, ldap.SCOPE_ONELEVEL, "(uid=T0000031)",
                       ["entryUUID", "entryCSN", "uidNumber", "mimsFormTeacher"], "one student")
        attrs = got[0][1]
        # slapadd stamped the operational attributes; the form teacher is a staff entry.
        assert attrs["entryUUID"] and attrs["entryCSN"]
        teacher = attrs["mimsFormTeacher"][0].decode()
        assert c.get(teacher, ["mail"], "the form teacher") is not None
    # Names in every community's script arrive intact.
    with roster.open(encoding="utf-8") as fh:
        names = {r[2] for r in csv.reader(fh)}
    assert any("\u0b80" <= ch <= "\u0bff" for n in names for ch in n)  # Tamil
    assert any("\u4e00" <= ch <= "\u9fff" for n in names for ch in n)  # Han


def test_the_data_set_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    a = national.write_roster(tmp_path / "a.csv", national.rows(500))
    b = national.write_roster(tmp_path / "b.csv", national.rows(500))
    assert a.read_bytes() == b.read_bytes()
    moved, which = national.class_moves(list(national.rows(500)), 0.1)
    assert 20 < len(which) < 80 and len(moved) == 500
    night = national.next_night(list(national.rows(2000)), 0.1)
    ids = {r.student_id for r in night}
    assert any(i.startswith("N") for i in ids) and len(ids) == len(night)


def test_offline_load_refuses_a_running_directory_and_names_the_line_of_a_bad_entry(
        stopped: Path, tmp_path: Path) -> None:
    cfg = load_config(stopped)
    base = cfg.ldap.base_dn
    good = (f"dn: cn=one,ou=services,{base}\nobjectClass: applicationProcess\ncn: one\n\n")
    bad = good + (f"dn: cn=two,ou=services,{base}\nobjectClass: applicationProcess\ncn: two\n"
                  f"mimsNoSuchAttribute: x\n\n")
    path = tmp_path / "bad.ldif"
    path.write_text(bad)
    with pytest.raises(DirectoryError, match=r"bad\.ldif:5: slapadd refused the load"):
        loader.load_offline(cfg, path)
    server.up(cfg)
    with pytest.raises(UsageError, match="stop the directory first"):
        loader.load_offline(cfg, path)


def test_an_offline_load_is_on_disk_before_it_returns(
        stopped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """slapadd -q writes through MDB_WRITEMAP with MDB_NOSYNC and never syncs: the load
    must fsync the database file (and its folder) itself before it says "loaded"."""
    import os

    cfg = load_config(stopped)
    base = cfg.ldap.base_dn
    path = tmp_path / "one.ldif"
    path.write_text(f"dn: cn=one,ou=services,{base}\nobjectClass: applicationProcess\n"
                    f"cn: one\n\n")
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    assert loader.load_offline(cfg, path).entries == 1
    data = cfg.state_dir / "data"
    assert str((data / "data.mdb").resolve()) in synced
    assert str(data.resolve()) in synced


def test_offline_load_needs_a_directory_made_first(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path / "config.yaml", tmp_path / "state", free_port()))
    path = tmp_path / "x.ldif"
    path.write_text("dn: cn=x,dc=mims,dc=example\nobjectClass: device\ncn: x\n\n")
    with pytest.raises(UsageError, match="no directory here yet"):
        loader.load_offline(cfg, path)
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_count_entries_counts_records_across_block_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "many.ldif"
    record = "dn: cn=x{i},dc=mims,dc=example\nobjectClass: device\ncn: x{i}\n" + "d: " + \
             "y" * 5000 + "\n\n"
    path.write_text("".join(record.format(i=i) for i in range(2000)))
    assert loader.count_entries(path) == 2000
