"""Two providers replicating each other with slapd's own syncrepl (multi-provider): a write on
either appears on the other, hashes and password-policy state included. Both run here on
loopback as two embedded directories."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ldap
import pytest
import yaml

from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import first
from tests.conftest import TEST_TLS, free_port
from tests.ldap_wire import OPS, LoopbackServer, read_message, reply

ROOT = Path(__file__).resolve().parent.parent

# Each test starts a slapd of its own, with TLS: never clock-shifted (tests/conftest.py).
pytestmark = pytest.mark.real_clock


def _config(path: Path, port: int, peer: str, server_id: int, join: bool,
            ldaps_port: int | None = None) -> Path:
    tls = {**TEST_TLS, "ldaps_uri": f"ldaps://127.0.0.1:{ldaps_port}"} if ldaps_port \
        else TEST_TLS
    path.write_text(yaml.safe_dump({
        # TLS required: the replicator's password only ever crosses TLS, and each provider
        # verifies the other's certificate against the CA they share.
        "ldap": {"uri": f"ldap://127.0.0.1:{port}", "tls": tls},
        "directory": {"state_dir": str(path.parent / "state"), "log_level": "stats sync",
                      "replication": {"server_id": server_id, "join": join, "peers": [peer],
                                      "retry": "1 +"}},
    }))
    return path


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not there yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# Every test here starts its own providers: their certificates and checks use the real
# clock.
pytestmark = pytest.mark.real_clock

@pytest.fixture
def pair(tmp_path: Path):  # type: ignore[no-untyped-def]
    pa, pb, pb_ldaps = free_port(), free_port(), free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # A reaches B on its ldaps listener, B reaches A with StartTLS: both forms of a peer.
    a = load_config(_config(tmp_path / "a" / "config.yaml", pa,
                            f"ldaps://127.0.0.1:{pb_ldaps}", 1, join=False))
    b = load_config(_config(tmp_path / "b" / "config.yaml", pb, f"ldap://127.0.0.1:{pa}", 2,
                            join=True, ldaps_port=pb_ldaps))
    server.up(a)
    # The second provider starts with the first one's secrets and CA (docs/replication.md),
    # and nothing else: it issues its own certificate from that CA.
    shutil.copytree(a.secrets_dir, b.secrets_dir)
    b.tls_dir.mkdir(mode=0o700, parents=True)
    for name in ("ca.crt", "ca.key"):
        shutil.copy2(a.tls_dir / name, b.tls_dir / name)
    server.up(b)
    yield a, b
    server.down(b)
    server.down(a)


def students(cfg) -> int:  # type: ignore[no-untyped-def]
    with server.root_conn(cfg) as c:
        return len(c.search(Dns(cfg.ldap.base_dn).students, ldap.SCOPE_ONELEVEL,
                            "(objectClass=mimsStudent)", ["1.1"], "count"))


def test_writes_on_either_provider_reach_the_other(pair) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.directory.loader import load_ldif

    a, b = pair
    dns = Dns(a.ldap.base_dn)
    load_ldif(a, ROOT / "ldap-fixtures" / "demo-school.ldif")
    wait_for("the demo school on B", lambda: students(b) == 40)

    # A write on B (the joined provider) reaches A.
    dn = dns.student("S2614023J")
    with server.root_conn(b) as c:
        c.modify(dn, [(ldap.MOD_REPLACE, "mimsClass", [b"2Z"])], "moving on B")
    def on_a() -> bool:
        with server.root_conn(a) as c:
            return first(c.get(dn, ["mimsClass"], "read") or {}, "mimsClass") == "2Z"
    wait_for("B's change on A", on_a)

    # A password set on A (hashed by A's slapd) signs in on B, and a lockout made on B
    # holds on A.
    with server.root_conn(a) as c:
        c.set_password(dn, "Replicated-pass-1")
        c.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", [])], "settled")
    def binds_on_b() -> bool:
        with network_conn(b) as c:
            return c.bind_ppolicy(dn, "Replicated-pass-1").ok
    wait_for("A's password on B", binds_on_b)
    for _ in range(6):
        with network_conn(b) as c:
            c.bind_ppolicy(dn, "wrong")
    def locked_on_a() -> bool:
        with network_conn(a) as c:
            return c.bind_ppolicy(dn, "Replicated-pass-1").locked
    wait_for("B's lockout on A", locked_on_a)

    # The service accounts are the same on both: the sync can work against either.
    pw = (b.secrets_dir / "sync.pw").read_text()
    with network_conn(b) as c:
        c.bind(dns.service("sync"), pw)

    # Each provider's replicator bound to the other over TLS (slapd logs the bind's ssf),
    # never in clear.
    for provider in (a, b):
        binds = replicator_binds(provider)
        assert binds and all(ssf >= 128 for ssf in binds), binds


def replicator_binds(cfg) -> list[int]:  # type: ignore[no-untyped-def]
    """The ssf of every simple bind as the replicator that this provider's log shows."""
    log = (cfg.state_dir / "slapd.log").read_text(errors="replace")
    return [int(m[1]) for m in re.finditer(
        r'BIND dn="cn=replicator,ou=services,[^"]*" mech=SIMPLE bind_ssf=\d+ ssf=(\d+)', log)]


def test_replication_config_is_checked() -> None:
    from mimsdir.config import ReplicationConfig
    from mimsdir.errors import ConfigError

    with pytest.raises(ConfigError, match="server_id"):
        ReplicationConfig(peers=("ldap://x:389",)).validate("directory.replication")
    with pytest.raises(ConfigError, match="peers"):
        ReplicationConfig(server_id=1, peers=("http://x",)).validate("directory.replication")


def test_a_provider_with_another_ca_is_not_trusted(tmp_path: Path) -> None:
    """Replication verifies the peer: a second provider that made its own CA (nobody copied
    the first one's) cannot replicate from the first, nor the first from it."""
    pa, pb = free_port(), free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = load_config(_config(tmp_path / "a" / "config.yaml", pa, f"ldap://127.0.0.1:{pb}", 1,
                            join=False))
    b = load_config(_config(tmp_path / "b" / "config.yaml", pb, f"ldap://127.0.0.1:{pa}", 2,
                            join=True))
    try:
        server.up(a)
        shutil.copytree(a.secrets_dir, b.secrets_dir)
        server.up(b)
        assert (a.tls_dir / "ca.crt").read_bytes() != (b.tls_dir / "ca.crt").read_bytes()
        for provider, peer in ((a, b), (b, a)):
            log = provider.state_dir / "slapd.log"
            wait_for("a refused certificate", lambda log=log, peer=peer: (
                f"URI={peer.ldap.uri} Error, ldap_start_tls failed"
                in log.read_text(errors="replace")), timeout=15)
        with server.root_conn(b) as c:
            assert c.get(Dns(b.ldap.base_dn).base, ["1.1"], "B's base") is None
        assert replicator_binds(a) == [] and replicator_binds(b) == []
    finally:
        server.down(b)
        server.down(a)


class NoStartTls(LoopbackServer):
    """A peer that answers StartTLS with protocolError, as a server without TLS (or a man in
    the middle stripping it) does, and notes every request it is sent afterwards."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        with conn:
            try:
                while (message := read_message(conn)) is not None:
                    msgid, op, _ = message
                    self.requests.append(OPS.get(op, hex(op)))
                    if op != 0x77:
                        break
                    # protocolError (2) to the ExtendedRequest, as slapd without TLS
                    reply(conn, msgid, op, 2)
            except OSError:
                pass


def test_no_replicator_password_in_clear_when_starttls_fails(tmp_path: Path) -> None:
    """StartTLS is critical: when a peer does not agree to it, the provider gives up and
    retries later; it never goes on to bind (send the replicator's password) in clear."""
    peer = NoStartTls()
    (tmp_path / "a").mkdir()
    a = load_config(_config(tmp_path / "a" / "config.yaml", free_port(), peer.uri, 1,
                            join=False))
    try:
        server.up(a)
        wait_for("two tries", lambda: peer.requests.count("extended") >= 2, timeout=15)
    finally:
        server.down(a)
        peer.close()
    assert "bind" not in peer.requests, peer.requests


# -- uid/gid numbers on two providers (mimsdir/directory/idpool.py) ---------------------------
def _pools(cfg):  # type: ignore[no-untyped-def]
    from mimsdir.directory.idpool import Pools

    return Pools(Dns(cfg.ldap.base_dn), cfg.posix.uid_min, cfg.posix.gid_min)


def _counter(cfg, name: str) -> int | None:  # type: ignore[no-untyped-def]
    with server.root_conn(cfg) as c:
        entry = c.get(Dns(cfg.ldap.base_dn).idpool(name), ["mimsIdNext"], "reading a counter")
    return int(entry["mimsIdNext"][0]) if entry else None


def _has_probe(cfg) -> bool:  # type: ignore[no-untyped-def]
    return _counter(cfg, "probe") is not None


def _add_people(cfg, prefix: str, numbers: list[int]) -> None:  # type: ignore[no-untyped-def]
    dns = Dns(cfg.ldap.base_dn)
    with server.root_conn(cfg) as c:
        for i, n in enumerate(numbers):
            uid = f"{prefix}{i:03d}"
            c.add(dns.student(uid), {
                "objectClass": [b"inetOrgPerson", b"mimsStudent", b"posixAccount"],
                "uid": [uid.encode()], "cn": [b"Kid"], "sn": [b"Kid"],
                "mimsSchoolCode": [b"REPL"], "mimsLevel": [b"P3"],
                "mimsAccountStatus": [b"active"], "uidNumber": [str(n).encode()],
                "gidNumber": [b"900000"], "homeDirectory": [f"/home/repl/{uid}".encode()],
            }, "adding a student with a reserved number")


def _numbers(cfg) -> list[int]:  # type: ignore[no-untyped-def]
    with server.root_conn(cfg) as c:
        res = c.search(Dns(cfg.ldap.base_dn).base, ldap.SCOPE_SUBTREE,
                       "(objectClass=posixAccount)", ["uidNumber"], "reading every uidNumber")
    return sorted(int(first(a, "uidNumber") or 0) for _, a in res)


def test_two_providers_reserving_at_once_never_hand_out_a_number_twice(pair) -> None:  # type: ignore[no-untyped-def]
    """Four callers on each provider reserve uid numbers (and add groups) at the same time,
    long before replication can settle between them: every number is handed out once, each
    provider's from its own partition (uid_min + k * 64 + server id), and afterwards both
    providers hold both counters."""

    from mimsdir.directory.idpool import UID, Group, ensure_groups, reserve
    from mimsdir.posix import ID_STRIDE
    from tests.conftest import service_conn

    a, b = pair
    wait_for("the id pools on B", lambda: _has_probe(b))
    got: dict[int, list[int]] = {1: [], 2: []}
    gids: dict[int, list[int]] = {1: [], 2: []}
    errors: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(cfg, sid: int, k: int) -> None:  # type: ignore[no-untyped-def]
        try:
            with service_conn(cfg, "sync") as c:
                start.wait()
                for i in range(15):
                    numbers = reserve(c, _pools(cfg), UID, 1 + (i * 3 + k) % 5)
                    with lock:
                        got[sid].extend(numbers)
                group = ensure_groups(c, _pools(cfg), [Group(f"g-{sid}-{k}", "test")])
                with lock:
                    gids[sid].extend(group.values())
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(cfg, sid, k))
               for cfg, sid in ((a, 1), (b, 2)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = got[1] + got[2]
    assert len(every) == 2 * sum(1 + (i * 3 + k) % 5 for k in range(4) for i in range(15))
    assert len(set(every)) == len(every)
    assert all((n - a.posix.uid_min) % ID_STRIDE == 1 for n in got[1])
    assert all((n - a.posix.uid_min) % ID_STRIDE == 2 for n in got[2])
    all_gids = gids[1] + gids[2]
    assert len(set(all_gids)) == len(all_gids) == 8
    assert all((n - a.posix.gid_min) % ID_STRIDE == sid for sid in (1, 2) for n in gids[sid])
    # Replication settles: each provider holds the other's counters, as they last were.
    for name in ("uid-1", "uid-2", "gid-1", "gid-2"):
        wait_for(f"{name} in step", lambda n=name: _counter(a, n) == _counter(b, n) is not None)


def test_a_provider_cut_off_from_the_other_still_hands_out_only_new_numbers(pair) -> None:  # type: ignore[no-untyped-def]
    """A network partition, made deterministic: A reserves and uses numbers while B is down;
    then B runs alone, from a copy that never saw them, and reserves and uses fewer. When
    both are back, the directory holds no number twice, and each goes on above what it
    handed out (a counter shared by both would now be at B's lower value: replication keeps
    the later write)."""
    from mimsdir.directory.idpool import UID, reserve
    from tests.conftest import service_conn

    a, b = pair
    wait_for("the id pools on B", lambda: _has_probe(b))
    with service_conn(b, "sync") as c:  # B's counter exists and has replicated to A
        reserve(c, _pools(b), UID, 1)
    wait_for("B's counter on A", lambda: _counter(a, "uid-2") == _counter(b, "uid-2"))

    server.down(b)
    with service_conn(a, "sync") as c:
        on_a = reserve(c, _pools(a), UID, 10)
    _add_people(a, "PARTA", on_a)
    server.down(a)
    server.up(b)  # alone: A is down, so B never hears of A's numbers
    with service_conn(b, "sync") as c:
        on_b = reserve(c, _pools(b), UID, 4)
    _add_people(b, "PARTB", on_b)
    server.up(a)

    wait_for("both partitions' students on both", lambda: len(_numbers(a)) == 14
             and _numbers(a) == _numbers(b), timeout=60)
    assert len(set(_numbers(a))) == 14
    with service_conn(a, "sync") as c:
        more_a = reserve(c, _pools(a), UID, 5)
    with service_conn(b, "sync") as c:
        more_b = reserve(c, _pools(b), UID, 5)
    assert not set(more_a + more_b) & set(on_a + on_b)
    assert min(more_a) > max(on_a) and min(more_b) > max(on_b)
