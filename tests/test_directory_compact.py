"""`mimsdir directory compact`: the stopped directory's LMDB files copied without their free
pages (docs/performance.md, "What makes writes dearer after bulk writes"), the entries and
sign-ins unchanged."""

from __future__ import annotations

from pathlib import Path

import ldap
import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory import compact, server
from mimsdir.directory.slapdconf import Dns
from tests.conftest import free_port, write_config

pytestmark = pytest.mark.real_clock  # a slapd of its own


def cli(cfg_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(cfg_path), "directory", *args])


def test_compact_drops_the_free_pages_and_keeps_every_entry(tmp_path: Path) -> None:
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port())
    cfg = load_config(cfg_path)
    server.up(cfg)
    try:
        dns = Dns(cfg.ldap.base_dn)
        hashed = server.hash_password(cfg, "Compact-pass-31").encode()
        with server.root_conn(cfg) as c:
            for i in range(300):  # then most of them deleted: the pages they took are freed
                c.add(dns.student(f"C{i:04d}"), {
                    "objectClass": [b"inetOrgPerson", b"mimsStudent"],
                    "uid": [f"C{i:04d}".encode()], "cn": [b"Kid"], "sn": [b"Tan"],
                    "mail": [f"c{i}@students.test.sg".encode()], "userPassword": [hashed],
                    "mimsSchoolCode": [b"CMP"], "mimsLevel": [b"P4"],
                    "mimsAccountStatus": [b"active"]}, "adding")
            for i in range(0, 300, 4):
                c.modify(dns.student(f"C{i:04d}"),
                         [(ldap.MOD_REPLACE, "description", [b"x" * 3000])], "growing")
            for i in range(300):
                if i % 3:
                    c.delete(dns.student(f"C{i:04d}"), "deleting")
        entries = server.status(cfg).entries

        res = cli(cfg_path, "compact")  # refused while slapd runs: its files are open
        assert res.exit_code == 2 and "stop the directory first" in res.output, res.output
        server.down(cfg)
        _, _, free = compact.pages(cfg.state_dir / "data")
        assert free > 20
        # A copy an earlier run left behind (killed in the middle) is no obstacle.
        (cfg.state_dir / "data" / "compact.tmp").mkdir()
        (cfg.state_dir / "data" / "compact.tmp" / "data.mdb").write_bytes(b"half a copy")

        res = cli(cfg_path, "compact")
        assert res.exit_code == 0, res.output
        assert f"data: {free} free pages -> 0," in res.output
        assert "accesslog: " in res.output
        data = cfg.state_dir / "data"
        assert compact.pages(data)[2] == 0
        assert (data / "data.mdb").stat().st_mode & 0o777 == 0o600
        assert not (data / "compact.tmp").exists()

        server.up(cfg)
        assert server.status(cfg).entries == entries
        with server.root_conn(cfg) as c:
            left = c.search(dns.students, ldap.SCOPE_ONELEVEL, "(mimsSchoolCode=CMP)",
                            ["uid", "description"], "the students left")
        assert sorted(a["uid"][0].decode() for _, a in left) == [
            f"C{i:04d}" for i in range(0, 300, 3)]
        assert sum(1 for _, a in left if a.get("description") == [b"x" * 3000]) == 25
        with network_conn(cfg) as c:
            assert c.bind_ppolicy(dns.student("C0003"), "Compact-pass-31").ok
        # A write after it works (the copy is a whole environment, not a snapshot to read).
        with server.root_conn(cfg) as c:
            c.delete(dns.student("C0003"), "deleting after the compaction")

        res = cli(cfg_path, "compact", "--restart")  # stops it, compacts, starts it again
        assert res.exit_code == 0 and "directory up again after" in res.output, res.output
        assert server.status(cfg).running
    finally:
        server.down(cfg)


def test_a_failed_compaction_with_restart_leaves_the_directory_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port())
    cfg = load_config(cfg_path)
    server.up(cfg)
    try:
        monkeypatch.setattr(compact, "MDB_COPY", "/bin/false")  # the copy fails
        res = cli(cfg_path, "compact", "--restart")
        assert res.exit_code == 4 and "mdb_copy -c failed, nothing changed" in res.output, \
            res.output
        assert "directory up again after" in res.output
        assert server.status(cfg).running
        assert not (cfg.state_dir / "data" / "compact.tmp").exists()
    finally:
        server.down(cfg)
