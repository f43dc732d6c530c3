"""Read-only replicas near the schools (issue 10): two providers and one consumer on loopback,
all with TLS required, started once for the module (docs/replication.md, "Consumers").

- the consumer takes everything from the providers (syncrepl refreshAndPersist from each):
  a student made on a provider reads and signs in there, the device account finds them;
- it writes nothing of its own: not its host's root, not the sync, not the id pools, not an
  ICT admin, not a form teacher's reset; a student's other writes are the provider's ACLs';
- a portal reset on a provider signs in on the consumer within a measured bound;
- wrong passwords on the consumer count and lock on every server (ppolicy forwards its
  writes through the chain overlay), a success there clears them, and a lockout made on a
  provider (wrong passwords there, or ICT's lock) refuses the bind on the consumer;
- a student's own password change on the consumer (an ordinary one, and the must-change
  answer after a reset) is made on a provider, as the student;
- clients with several URIs skip an unreachable one (not a TLS failure);
- the consumer killed with SIGKILL while a sync writes to a provider: restarted, it catches
  up, and all three hold the same data tree (dumps compared);
- a provider killed with SIGKILL mid-sync: the sync finishes on the other provider, the
  portal and the CLI go on there too, and when the killed one comes back all three hold the
  same data tree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap
import pytest
import yaml
from click.testing import CliRunner

from mimsdir import connect
from mimsdir.cli import main
from mimsdir.config import Config, ReplicationConfig, load_config
from mimsdir.connect import network_conn, service_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns, render_config
from mimsdir.errors import (
    AccessDenied,
    ConfigError,
    DirectoryError,
    DirectoryUnavailable,
    MimsError,
    NotFound,
    TlsRefused,
)
from mimsdir.ldapio import Conn, first, values
from mimsdir.portal.directory import PortalDirectory, ServicePool
from tests.conftest import TEST_TLS, free_port
from tests.ldap_wire import OPS, LoopbackServer, is_starttls, read_message, reply
from tests.sync_helpers import school_entries, school_rows, write_roster
from tests.test_replication import NoStartTls, wait_for

MIMSDIR = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "mimsdir"
#: What the test allows between a write on a provider and its effect on the consumer
#: (measured: tens of milliseconds on loopback, see docs/replication.md).
BOUND_SECONDS = 10.0
#: Five wrong passwords lock, as in production (config.PolicyConfig's default).
FAILURES = 5


class ClearTextTrap(LoopbackServer):
    """A provider whose TLS is broken, or a man in the middle who strips it: StartTLS is
    refused (protocolError, as slapd without TLS answers), and anything else is accepted
    (a bind succeeds; other operations are answered "unwilling") and noted, so a client
    that goes on in clear is seen sending what it would send: passwords, changes."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            try:
                while (message := read_message(conn)) is not None:
                    msgid, op, body = message
                    starttls = is_starttls(op, body)
                    name = "starttls" if starttls else OPS.get(op, hex(op))
                    self.requests.append((name, body))
                    if op == 0x42:
                        return
                    # protocolError to StartTLS, success to a bind, unwilling to the rest
                    reply(conn, msgid, op, 2 if starttls else 0 if op == 0x60 else 53)
            except OSError:
                pass

    def in_clear(self) -> list[tuple[str, bytes]]:
        """What reached it besides StartTLS and unbind."""
        return [(n, b) for n, b in self.requests if n not in ("starttls", "unbind")]


@dataclass
class Trio:
    a: Config  # provider, server id 1
    b: Config  # provider, server id 2
    c: Config  # the consumer of a (StartTLS) and b (ldaps)
    client: Config  # the sync, CLI and portal: ldap.uri lists a then b
    teacher: str
    admin: str
    # The consumer's third provider: a server that refuses StartTLS (a provider whose TLS
    # is broken, or a man in the middle stripping it). Nothing may reach it in clear.
    trap: ClearTextTrap


def _write(path: Path, data: dict) -> Config:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def _directory(base: Path, name: str, port: int, replication: dict,
               ldaps_port: int | None = None) -> Config:
    tls = {**TEST_TLS, "ldaps_uri": f"ldaps://127.0.0.1:{ldaps_port}"} if ldaps_port \
        else TEST_TLS
    policy = {"max_failures": FAILURES, "lockout_seconds": 600, "failure_window_seconds": 600}
    return _write(base / name / "config.yaml", {
        "ldap": {"uri": f"ldap://127.0.0.1:{port}", "tls": tls},
        "directory": {"state_dir": str(base / name / "state"), "log_level": "stats sync",
                      "replication": {**replication, "retry": "1 +"}},
        "policies": {"lower_primary": policy, "upper_primary": policy},
    })


def _copy_ca(src: Config, dst: Config) -> None:
    dst.tls_dir.mkdir(mode=0o700, parents=True)
    for name in ("ca.crt", "ca.key"):
        shutil.copy2(src.tls_dir / name, dst.tls_dir / name)


def _person(root: Conn, dn: str, attrs: dict[str, list[bytes]], password: str) -> None:
    root.add(dn, attrs, "adding a test person")
    root.set_password(dn, password)
    root.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", [])], "settling the password")


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    base = tmp_path_factory.mktemp("replicas")
    pa, pb, pb_ldaps, pc = free_port(), free_port(), free_port(), free_port()
    uri_a, uri_b = f"ldap://127.0.0.1:{pa}", f"ldap://127.0.0.1:{pb}"
    a = _directory(base, "a", pa, {"server_id": 1, "peers": [uri_b]})
    b = _directory(base, "b", pb, {"server_id": 2, "peers": [uri_a], "join": True},
                   ldaps_port=pb_ldaps)
    # The consumer reaches a with StartTLS and b on its ldaps listener: both forms, for
    # replication and for the chain.
    trap = ClearTextTrap()
    c = _directory(base, "c", pc, {"role": "consumer", "providers": [
        uri_a, f"ldaps://127.0.0.1:{pb_ldaps}", trap.uri]})
    started: list[Config] = []
    try:
        server.up(a)
        started.append(a)
        # docs/replication.md: a provider gets the first one's secrets and CA; a consumer
        # gets the CA and only the replicator's and the chain account's passwords.
        shutil.copytree(a.secrets_dir, b.secrets_dir)
        _copy_ca(a, b)
        server.up(b)
        started.append(b)
        _copy_ca(a, c)
        c.secrets_dir.mkdir(mode=0o700, parents=True)
        for name in ("replicator.pw", "chain.pw"):
            shutil.copy2(a.secrets_dir / name, c.secrets_dir / name)
        server.up(c)
        started.append(c)

        dns = Dns(a.ldap.base_dn)
        admin = f"uid=ADM{uuid.uuid4().hex[:6]},{dns.staff}"
        teacher = f"uid=TCH{uuid.uuid4().hex[:6]},{dns.staff}"
        with server.root_conn(a) as root:
            for dn, cls in ((admin, b"ICT"), (teacher, b"4A")):
                uid = dn.split(",")[0].split("=")[1]
                _person(root, dn, {
                    "objectClass": [b"inetOrgPerson", b"mimsStaff"], "uid": [uid.encode()],
                    "cn": [b"Staff " + uid.encode()], "sn": [b"Staff"],
                    "mail": [f"{uid.lower()}@staff.test.sg".encode()],
                    "mimsSchoolCode": [b"REPLICA"], "mimsClass": [cls],
                    "pwdPolicySubentry": [dns.policy("staff").encode()]}, "Admin-pass-1234")
            root.add(dns.admins, {"objectClass": [b"groupOfNames"], "cn": [b"ict-admins"],
                                  "member": [admin.encode()]}, "adding the admin group")
        (base / "admin.pw").write_text("Admin-pass-1234", encoding="utf-8")
        # The sync, the CLI and the portal run on a host of their own: no directory there,
        # the providers in ldap.uri (a first), the providers' CA and service passwords.
        client = _write(base / "client" / "config.yaml", {
            "ldap": {"uri": [uri_a, uri_b], "secrets_dir": str(a.secrets_dir),
                     "admin_dn": admin, "admin_password_file": str(base / "admin.pw"),
                     "tls": {"mode": "off", "starttls": True,
                             "ca_file": str(a.tls_dir / "ca.crt")}},
            "directory": {"state_dir": str(base / "client" / "no-directory")},
            "sync": {"state_dir": str(base / "client" / "sync"), "retries": 3,
                     "slips_dir": str(base / "client" / "slips")},
        })
        wait_for("the teacher on the consumer", lambda: _get(c, teacher, "uid") is not None)
        yield Trio(a, b, c, client, teacher, admin, trap)
    finally:
        for cfg in reversed(started):
            server.down(cfg)
        trap.close()
    # Replication and the chain tried it (StartTLS), and sent it nothing in clear: no bind,
    # no password change, no lockout state.
    assert trap.in_clear() == [], trap.in_clear()[:3]
    assert any(n == "starttls" for n, _ in trap.requests), trap.requests[:3]


def _get(cfg: Config, dn: str, attr: str) -> list[str] | None:
    """The values of ``attr`` as this server's host root reads them (None: no entry)."""
    with server.root_conn(cfg) as root:
        entry = root.get(dn, [attr], f"reading {attr}")
    return None if entry is None else values(entry, attr)


def _student(trio: Trio, password: str = "Start-pass-1234") -> str:
    """A new student of the teacher's class, added on provider a, present on the consumer."""
    dns = Dns(trio.a.ldap.base_dn)
    uid = f"R{uuid.uuid4().hex[:8].upper()}"
    dn = dns.student(uid)
    with server.root_conn(trio.a) as root:
        _person(root, dn, {
            "objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [uid.encode()],
            "cn": [b"Kid " + uid.encode()], "sn": [b"Kid"],
            "mail": [f"{uid.lower()}@students.test.sg".encode()],
            "mimsSchoolCode": [b"REPLICA"], "mimsLevel": [b"P4"], "mimsClass": [b"4A"],
            "mimsAccountStatus": [b"active"], "mimsFormTeacher": [trio.teacher.encode()],
            "pwdPolicySubentry": [dns.policy("upper-primary").encode()]}, password)
    wait_for("the student on the consumer", lambda: _signs_in(trio.c, dn, password))
    return dn


def _signs_in(cfg: Config, dn: str, password: str) -> bool:
    with network_conn(cfg, uri=cfg.ldap.listen_uri) as conn:
        return conn.bind_ppolicy(dn, password).ok


def _locked(cfg: Config, dn: str, password: str) -> bool:
    with network_conn(cfg, uri=cfg.ldap.listen_uri) as conn:
        return conn.bind_ppolicy(dn, password).locked


def _at(cfg: Config, dn: str | None = None, password: str | None = None) -> Conn:
    """A connection to this one server (never another of a list), bound if asked, over TLS."""
    conn = network_conn(cfg, uri=cfg.ldap.listen_uri)
    if dn is not None and password is not None:
        conn.bind(dn, password)
    return conn


def _writers(trio: Trio, logfilter: str) -> set[str]:
    """Who made the writes that ``logfilter`` finds in the providers' audit logs. A forwarded
    write is made on whichever provider the chain reached (the first that answers): it is
    in that one's log as its writer, and in the other's as replicated (by the rootDN, which
    is left out here, as is every write the test made as the host's root)."""
    found: set[str] = set()
    for cfg in (trio.a, trio.b):
        with server.root_conn(cfg) as root:
            found |= {first(e, "reqAuthzID") or "" for _, e in root.search(
                "cn=accesslog", ldap.SCOPE_ONELEVEL, logfilter, ["reqAuthzID"],
                "reading the audit log")}
    return found - {Dns(trio.a.ldap.base_dn).root}


def _failures(cfg: Config, dn: str) -> int:
    return len(_get(cfg, dn, "pwdFailureTime") or [])


# -- the consumer --------------------------------------------------------------------------
@pytest.mark.real_clock
def test_a_student_made_on_a_provider_reads_and_signs_in_on_the_consumer(trio: Trio) -> None:
    dns = Dns(trio.a.ldap.base_dn)
    # It built no tree of its own: the base entry is the providers' (same entryUUID).
    assert _get(trio.c, dns.base, "entryUUID") == _get(trio.a, dns.base, "entryUUID")
    assert _get(trio.c, dns.service("chain"), "cn") == ["chain"]

    dn = _student(trio)  # added on a; signs in on the consumer
    uid = dn.split(",")[0].split("=")[1]
    # A device pointed at the consumer finds the student with the device account.
    device_pw = (trio.a.secrets_dir / "device.pw").read_text().strip()
    with _at(trio.c, dns.service("device"), device_pw) as conn:
        found = conn.search(dns.students, ldap.SCOPE_ONELEVEL,
                            f"(mail={uid.lower()}@students.test.sg)", ["uid", "cn"],
                            "a device looks the student up")
    assert [first(e, "uid") for _, e in found] == [uid]

    # A change reaches it from both providers, and is applied once (by its entryCSN).
    with server.root_conn(trio.a) as root:
        root.modify(dn, [(ldap.MOD_REPLACE, "mimsClass", [b"4B"])], "moving class")
    wait_for("the move on the consumer", lambda: _get(trio.c, dn, "mimsClass") == ["4B"])
    assert _get(trio.c, dn, "entryCSN") == _get(trio.a, dn, "entryCSN")


@pytest.mark.real_clock
def test_up_leaves_the_service_accounts_authzto_alone_once_slapd_holds_it(trio: Trio) -> None:
    """`up` writes a service's authzTo only when it differs from what it should be: a value
    slapd holds (written over LDAP: ordered, "{0}...", and escaped, "%7C") is the same. A
    rewrite on every start would be a replicated write from every provider that starts."""
    from mimsdir.directory.slapdconf import service_authz

    dns = Dns(trio.a.ldap.base_dn)
    with server.root_conn(trio.a) as root:
        for name, authz in service_authz(dns).items():
            root.modify(dns.service(name), [(ldap.MOD_REPLACE, "authzTo",
                                             [v.encode() for v in authz])],
                        "writing authzTo as an upgrade does")
    held = _get(trio.a, dns.service("chain"), "authzTo") or []
    assert held and all(v.startswith("{") for v in held)
    wait_for("the write on b", lambda: _get(trio.b, dns.service("chain"), "authzTo") == held)
    csn = _get(trio.a, dns.service("chain"), "entryCSN")
    assert server.ensure_policies(trio.a) == [] and server.ensure_policies(trio.b) == []
    assert _get(trio.a, dns.service("chain"), "entryCSN") == csn


@pytest.mark.real_clock
def test_writes_at_the_consumer_other_than_a_persons_own_are_refused(trio: Trio,
                                                                       tmp_path: Path) -> None:
    """Nothing writes to a consumer's data but replication, and the chain forwards only a
    person's own writes (the provider's ACLs decide them, as the person)."""
    dns = Dns(trio.a.ldap.base_dn)
    dn = _student(trio, "Start-pass-1234")
    move = [(ldap.MOD_REPLACE, "mimsClass", [b"9Z"])]
    # Its host's root: the data's rootDN is another DN there, and the chain refuses to
    # forward anyone but students and staff (the real error, not a referral).
    with server.root_conn(trio.c) as root, pytest.raises(
            AccessDenied, match=r"read-only replica .*\(INAPPROPRIATE_AUTH\)"):
        root.modify(dn, move, "writing on the consumer")
    # The sync account, whose id pool reservation is refused there.
    from mimsdir.directory.idpool import UID, Pools, reserve

    sync_pw = (trio.a.secrets_dir / "sync.pw").read_text().strip()
    with _at(trio.c, dns.service("sync"), sync_pw) as conn, pytest.raises(
            AccessDenied, match="read-only"):
        reserve(conn, Pools(dns, 1000000, 900000), UID, 3)
    assert _get(trio.a, dns.idpool("uid-0"), "mimsIdNext") is None
    # The student: forwarded as the student, refused by the provider's ACLs.
    with _at(trio.c, dn, "Start-pass-1234") as conn, pytest.raises(
            AccessDenied, match="access control"):
        conn.modify(dn, move, "a student moving class")
    # An ICT admin: the chain may not act as one (the provider's authzTo for cn=chain).
    with _at(trio.c, trio.admin, "Admin-pass-1234") as conn, pytest.raises(
            DirectoryError, match="PROXIED_AUTHORIZATION_DENIED"):
        conn.modify(dn, move, "an admin on the consumer")
    # The student's form teacher: forwarded as the teacher, but a forwarded write reaches
    # only the writer's own entry (schema/acl.in, realdn of the chain): no reset there.
    with _at(trio.c, trio.teacher, "Admin-pass-1234") as conn, pytest.raises(
            AccessDenied, match="access control"):
        conn.set_password(dn, "Teacher-set-8812", doing="a teacher's reset on the consumer")
    # Anonymous: refused before anything.
    with _at(trio.c) as conn, pytest.raises(AccessDenied, match="sign in first"):
        conn.modify(dn, move, "anonymous")
    assert _get(trio.a, dn, "mimsClass") == ["4A"] and _get(trio.c, dn, "mimsClass") == ["4A"]
    assert _signs_in(trio.a, dn, "Start-pass-1234")

    # mimsdir says so before trying: the sync, a load, the portal, staff commands as root.
    roster = write_roster(tmp_path / "r.csv", school_rows("CONS", 2))
    cfg_c = str(Path(trio.c.base_path) / "config.yaml")
    for argv in (["sync", str(roster)], ["directory", "load", str(roster)],
                 ["directory", "load", "--offline", str(roster)],
                 ["directory", "posix-backfill"], ["directory", "device", "add", "CONS"],
                 ["student", "show", "S1"]):
        res = CliRunner().invoke(main, ["--config", cfg_c, *argv])
        assert res.exit_code == 2, (argv, res.output)
        assert "read-only consumer" in res.output
    # The portal in a process of its own: were it to start, it would serve until killed.
    try:
        portal = subprocess.run([str(MIMSDIR), "--config", cfg_c, "sspr", "serve",
                                 "--listen", f"127.0.0.1:{free_port()}"],
                                capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the portal started on a consumer's config")
    assert portal.returncode == 2 and "read-only consumer" in portal.stderr + portal.stdout


@pytest.mark.real_clock
def test_a_portal_reset_on_a_provider_signs_in_on_the_consumer_within_the_bound(
        trio: Trio) -> None:
    dn = _student(trio)
    portal = PortalDirectory(trio.client)
    took = []
    try:
        for i in range(5):
            password = f"Reset-{uuid.uuid4().hex[:8]}-{i}"
            portal.teacher_reset(trio.teacher, dn, password)
            started = time.monotonic()
            while not _signs_in(trio.c, dn, password):
                assert time.monotonic() - started < BOUND_SECONDS, "not on the consumer"
                time.sleep(0.005)
            took.append(time.monotonic() - started)
    finally:
        portal.close()
    print(f"reset on a provider -> sign-in on the consumer: median "
          f"{statistics.median(took) * 1000:.0f} ms, max {max(took) * 1000:.0f} ms")
    assert max(took) < BOUND_SECONDS


@pytest.mark.real_clock
def test_wrong_passwords_on_the_consumer_count_and_lock_everywhere(trio: Trio) -> None:
    dns = Dns(trio.a.ldap.base_dn)
    # Two wrong passwords, then the right one: the failures reach both providers, and the
    # success at the consumer clears them there (ppolicy forwards both writes).
    dn = _student(trio, "Right-pass-1234")
    for n in (1, 2):
        with _at(trio.c) as conn:
            assert not conn.bind_ppolicy(dn, f"wrong-{n}").ok
    for cfg in (trio.a, trio.b):
        wait_for("two failures on the providers", lambda cfg=cfg: _failures(cfg, dn) == 2)
    wait_for("two failures back on the consumer", lambda: _failures(trio.c, dn) == 2)
    assert _signs_in(trio.c, dn, "Right-pass-1234")
    for cfg in (trio.a, trio.b, trio.c):
        wait_for("the failures cleared", lambda cfg=cfg: _failures(cfg, dn) == 0)

    # Enough of them lock the student on every server.
    dn = _student(trio, "Right-pass-1234")
    for n in range(1, FAILURES + 1):
        with _at(trio.c) as conn:
            assert not conn.bind_ppolicy(dn, f"wrong-{n}").ok
        # Each failure is written on a provider and comes back: the consumer counts them.
        wait_for(f"failure {n} back on the consumer", lambda n=n: _failures(trio.c, dn) == n)
    for cfg in (trio.a, trio.b, trio.c):
        wait_for(f"the lockout on {cfg.ldap.listen_uri}",
                 lambda cfg=cfg: bool(_get(cfg, dn, "pwdAccountLockedTime")))
        assert _locked(cfg, dn, "Right-pass-1234")
    # The failures were written by the chain account, on a provider, which it reached over
    # TLS only (slapd logs each bind's strength).
    assert _writers(trio, f"(&(reqDN={dn})(reqMod=pwdFailureTime:+*))") == {
        dns.service("chain")}
    strengths = [int(m[1]) for cfg in (trio.a, trio.b) for m in re.finditer(
        r'BIND dn="cn=chain,ou=services,[^"]*" mech=SIMPLE bind_ssf=\d+ ssf=(\d+)',
        (cfg.state_dir / "slapd.log").read_text(errors="replace"))]
    assert strengths and min(strengths) >= 128, strengths

    # A teacher's failure on the consumer is recorded on the providers too.
    with _at(trio.c) as conn:
        assert not conn.bind_ppolicy(trio.teacher, "not-the-teachers").ok
    try:
        wait_for("the teacher's failure on b", lambda: _failures(trio.b, trio.teacher) == 1)
    finally:
        with server.root_conn(trio.a) as root:
            root.modify(trio.teacher, [(ldap.MOD_REPLACE, "pwdFailureTime", [])], "clearing")

    portal = PortalDirectory(trio.client)
    try:
        portal.teacher_unlock(trio.teacher, dn)
    finally:
        portal.close()
    wait_for("the unlock on the consumer", lambda: _signs_in(trio.c, dn, "Right-pass-1234"),
             timeout=BOUND_SECONDS)


@pytest.mark.real_clock
def test_a_lockout_made_on_a_provider_refuses_the_bind_on_the_consumer(trio: Trio) -> None:
    # Wrong passwords typed at a device that uses provider b.
    dn = _student(trio, "Right-pass-1234")
    for n in range(FAILURES):
        with _at(trio.b) as conn:
            assert not conn.bind_ppolicy(dn, f"wrong-{n}").ok
    wait_for("b's lockout on the consumer", lambda: _locked(trio.c, dn, "Right-pass-1234"),
             timeout=BOUND_SECONDS)
    # ICT's lock on provider a (pwdAccountLockedTime 000001010000Z: until unlocked).
    dn = _student(trio, "Right-pass-1234")
    with server.root_conn(trio.a) as root:
        root.modify(dn, [(ldap.MOD_ADD, "pwdAccountLockedTime", [b"000001010000Z"])],
                    "locking a student")
    wait_for("a's lock on the consumer", lambda: _locked(trio.c, dn, "Right-pass-1234"),
             timeout=BOUND_SECONDS)
    with server.root_conn(trio.a) as root:
        root.modify(dn, [(ldap.MOD_DELETE, "pwdAccountLockedTime", None)], "unlocking")
    wait_for("a's unlock on the consumer", lambda: _signs_in(trio.c, dn, "Right-pass-1234"),
             timeout=BOUND_SECONDS)


@pytest.mark.real_clock
def test_a_password_changed_on_the_consumer_is_changed_on_a_provider_as_the_student(
        trio: Trio) -> None:
    dn = _student(trio, "Old-pass-1234")
    with _at(trio.c, dn, "Old-pass-1234") as conn:
        conn.set_password(dn, "Koala-climbs-58", old="Old-pass-1234")
    for cfg in (trio.a, trio.b, trio.c):
        wait_for(f"the new password on {cfg.ldap.listen_uri}",
                 lambda cfg=cfg: _signs_in(cfg, dn, "Koala-climbs-58"), timeout=BOUND_SECONDS)
    # Set by the host's root on a (the test's student), then changed as the student.
    assert _writers(trio, f"(&(reqDN={dn})(reqMod=userPassword:=*))") == {dn.lower()}
    # The provider's password policy applied: a password from the history is refused.
    with _at(trio.c, dn, "Koala-climbs-58") as conn, pytest.raises(MimsError):
        conn.set_password(dn, "Old-pass-1234", old="Koala-climbs-58")

    # The chain account acts as students and form teachers only, never as an ICT admin.
    chain_pw = (trio.c.secrets_dir / "chain.pw").read_text().strip()
    dns = Dns(trio.a.ldap.base_dn)
    with _at(trio.a, dns.service("chain"), chain_pw) as conn:
        conn.act_as(dn)
        assert conn.whoami() == f"dn:{dn.lower()}"
        conn.act_as(trio.teacher)
        assert conn.whoami() == f"dn:{trio.teacher.lower()}"
        conn.act_as(trio.admin)
        with pytest.raises(ldap.LDAPError) as refused:
            conn.lo.whoami_s(ldap.controls.RequestControlTuples(conn._proxy))
        assert isinstance(refused.value, ldap.PROXIED_AUTHORIZATION_DENIED)


@pytest.mark.real_clock
def test_a_reset_student_answers_must_change_on_the_consumer(trio: Trio) -> None:
    """The device's must-change flow (docs/devices.md) at a consumer: the teacher's reset is
    made on a provider, the student signs in at the consumer with the default password, is
    told to change it, and changes it there; the change is made on a provider and clears
    the must-change everywhere."""
    dn = _student(trio)
    portal = PortalDirectory(trio.client)
    try:
        portal.teacher_reset(trio.teacher, dn, "Panda-default-3344")
    finally:
        portal.close()
    wait_for("the reset on the consumer", lambda: _get(trio.c, dn, "pwdReset") == ["TRUE"])
    with _at(trio.c) as conn:
        outcome = conn.bind_ppolicy(dn, "Panda-default-3344")
        assert outcome.ok and outcome.must_change
        conn.set_password(dn, "Giraffe-runs-4471", old="Panda-default-3344")
    for cfg in (trio.a, trio.b, trio.c):
        wait_for(f"the change on {cfg.ldap.listen_uri}", lambda cfg=cfg: (
            _get(cfg, dn, "pwdReset") is None or _get(cfg, dn, "pwdReset") == [])
            and _signs_in(cfg, dn, "Giraffe-runs-4471"), timeout=BOUND_SECONDS)
    with _at(trio.c) as conn:
        assert not conn.bind_ppolicy(dn, "Giraffe-runs-4471").must_change


# -- a device pointed at the consumer, the providers after it ----------------------------------
def _posix_student(trio: Trio, password: str) -> tuple[str, str]:
    """A student with posix attributes (numbers from provider a's pools), as the sync makes
    them; (dn, mail), present on the consumer."""
    from mimsdir.directory.idpool import UID, Group, Pools, ensure_groups, reserve
    from mimsdir.posix import home_directory, school_group

    dns = Dns(trio.a.ldap.base_dn)
    p = trio.a.posix
    uid = f"D{uuid.uuid4().hex[:8].upper()}"
    dn, mail = dns.student(uid), f"{uid.lower()}@students.test.sg"
    with server.root_conn(trio.a) as root:
        pools = Pools(dns, p.uid_min, p.gid_min)
        gid = ensure_groups(root, pools, [Group(school_group("REPLICA"), "test")])
        (number,) = reserve(root, pools, UID, 1)
        _person(root, dn, {
            "objectClass": [b"inetOrgPerson", b"mimsStudent", b"posixAccount"],
            "uid": [uid.encode()], "cn": [b"Kid " + uid.encode()], "sn": [b"Kid"],
            "mail": [mail.encode()], "mimsSchoolCode": [b"REPLICA"], "mimsLevel": [b"P4"],
            "mimsClass": [b"4A"], "mimsAccountStatus": [b"active"],
            "pwdPolicySubentry": [dns.policy("upper-primary").encode()],
            "uidNumber": [str(number).encode()],
            "gidNumber": [str(gid[school_group("REPLICA")]).encode()],
            "homeDirectory": [home_directory(p.home_template, uid, "REPLICA").encode()],
            "loginShell": [p.shell.encode()]}, password)
    wait_for("the student on the consumer", lambda: _signs_in(trio.c, dn, password))
    return dn, mail


def _binds_in_log(cfg: Config, dn: str) -> int:
    log = (cfg.state_dir / "slapd.log").read_text(errors="replace")
    return len(re.findall(rf'BIND dn="{re.escape(dn)}" mech=SIMPLE', log, re.I))


@pytest.mark.real_clock
@pytest.mark.parametrize("stack", ["nslcd", "sssd"])
def test_a_device_signs_in_at_the_consumer_and_at_a_provider_when_it_is_down(
        trio: Trio, stack: str) -> None:
    """The device files of docs/devices.md with the consumer first and a provider after it
    (docs/devices.md, "Several directories"): nslcd takes several URIs on its uri line,
    SSSD a comma-separated ldap_uri. Sign-ins go to the consumer; with it down, to the
    provider; a wrong password at the consumer is counted on the providers."""
    from tests.devices import Device

    dn, mail = _posix_student(trio, "Kite-river-482")
    consumer, provider = trio.c.ldap.listen_uri, trio.a.ldap.listen_uri
    uris = f"{consumer} {provider}" if stack == "nslcd" else f"{consumer}, {provider}"
    device_cfg = dataclasses.replace(trio.client, ldap=dataclasses.replace(
        trio.client.ldap, uri=uris))
    with Device(stack, device_cfg) as device:
        before = _binds_in_log(trio.c, dn), _binds_in_log(trio.a, dn)
        res = device.pamtester(mail, "Kite-river-482", "authenticate", "acct_mgmt")
        assert res.rc == 0 and "successfully authenticated" in res.out, (res, device.log())
        assert device.getent("passwd", mail) is not None
        assert _binds_in_log(trio.c, dn) > before[0]
        assert _binds_in_log(trio.a, dn) == before[1]
        assert device.pamtester(mail, "Not-the-password-1", "authenticate").rc != 0
        for cfg in (trio.a, trio.b):
            wait_for("the device's failure on the providers",
                     lambda cfg=cfg: _failures(cfg, dn) == 1, timeout=BOUND_SECONDS)

        server.down(trio.c)
        try:
            res = device.pamtester(mail, "Kite-river-482", "authenticate", "acct_mgmt")
            assert res.rc == 0 and "successfully authenticated" in res.out, (res, device.log())
            assert _binds_in_log(trio.a, dn) >= before[1] + 1
        finally:
            server.up(trio.c)


# -- the centre cut off -----------------------------------------------------------------------
@pytest.mark.real_clock
def test_with_every_provider_down_the_consumer_still_signs_people_in(trio: Trio) -> None:
    """docs/replication.md, "Every provider unreachable": sign-ins go on at the consumer
    (also one whose earlier failure it cannot clear); a wrong password is refused but not
    counted (nowhere to write it); a password change is refused as unavailable, nothing
    changed."""
    dn = _student(trio, "Right-pass-1234")
    other = _student(trio, "Right-pass-1234")
    with _at(trio.c) as conn:
        assert not conn.bind_ppolicy(other, "wrong-1").ok
    wait_for("the failure on the consumer", lambda: _failures(trio.c, other) == 1)
    server.down(trio.a)
    server.down(trio.b)
    try:
        assert _signs_in(trio.c, dn, "Right-pass-1234")
        assert _signs_in(trio.c, other, "Right-pass-1234")
        with _at(trio.c) as conn:
            assert not conn.bind_ppolicy(dn, "wrong-1").ok
        assert _failures(trio.c, dn) == 0
        tried = len(trio.trap.requests)
        with _at(trio.c, dn, "Right-pass-1234") as conn, pytest.raises(
                MimsError, match="setting a password"):
            conn.set_password(dn, "Koala-climbs-58", old="Right-pass-1234")
        # The chain went on to the third provider (the trap), and sent it nothing in clear:
        # not the old and new passwords, not the failure above.
        assert len(trio.trap.requests) > tried
        assert trio.trap.in_clear() == [], trio.trap.in_clear()[:3]
    finally:
        server.up(trio.a)
        server.up(trio.b)
    assert _signs_in(trio.c, dn, "Right-pass-1234")
    wait_for("the earlier failure cleared, once a provider is back",
             lambda: _signs_in(trio.c, other, "Right-pass-1234")
             and _failures(trio.a, other) == 0)


# -- clients fail over ------------------------------------------------------------------------
@pytest.mark.real_clock
def test_clients_go_on_to_the_next_uri_only_when_one_is_unreachable(
        trio: Trio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect, "_down_until", {})
    tried: list[str] = []
    real = connect.Conn

    def recording(uri: str, **kw: object) -> Conn:
        tried.append(uri)
        return real(uri, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(connect, "Conn", recording)
    dead = f"ldap://127.0.0.1:{free_port()}"
    live = trio.a.ldap.listen_uri
    cfg = dataclasses.replace(trio.client, ldap=dataclasses.replace(
        trio.client.ldap, uri=f"{dead} {live}"))
    with network_conn(cfg) as conn:
        assert conn.uri == live
    assert tried == [dead, live]
    # The unreachable one is tried last for a while: no wait on it for every connection.
    tried.clear()
    with service_conn(cfg, "sync") as conn:
        assert conn.whoami().startswith("dn:cn=sync,")
    assert tried == [live]
    only_dead = dataclasses.replace(cfg, ldap=dataclasses.replace(cfg.ldap, uri=dead))
    with pytest.raises(DirectoryUnavailable, match="unreachable"):
        network_conn(only_dead)
    # A directory that answers but cannot give TLS is an error, never skipped in silence.
    peer = NoStartTls()
    try:
        refusing = dataclasses.replace(cfg, ldap=dataclasses.replace(
            cfg.ldap, uri=f"{peer.uri} {live}"))
        with pytest.raises(TlsRefused):
            network_conn(refusing)
    finally:
        peer.close()


# -- servers killed mid-sync ------------------------------------------------------------------
IGNORED = {"contextcsn"}  # the base entry's replication state: each server's own view


def _dump(cfg: Config) -> dict[str, dict[str, list[bytes]]]:
    """The data tree as the host's root reads it, operational attributes included."""
    dns = Dns(cfg.ldap.base_dn)
    with server.root_conn(cfg) as root:
        return {dn.lower(): {k.lower(): sorted(v) for k, v in e.items()
                             if k.lower() not in IGNORED}
                for dn, e in root.search_paged(dns.base, ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                               ["*", "+"], "dumping the data tree")}


def _converge(trio: Trio, timeout: float = 60) -> dict[str, dict[str, list[bytes]]]:
    """Poll until a, b and the consumer hold the same data tree; fail naming what differs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            dumps = [_dump(cfg) for cfg in (trio.a, trio.b, trio.c)]
        except (DirectoryUnavailable, NotFound):  # restarting; or empty, its base not there yet
            dumps = []
        if dumps and dumps[0] == dumps[1] == dumps[2]:
            return dumps[2]
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert dumps, "a server did not answer"
    for name, other in (("b", dumps[1]), ("the consumer", dumps[2])):
        differ = {dn: sorted(k for k in set(dumps[0].get(dn, {})) | set(other.get(dn, {}))
                             if dumps[0].get(dn, {}).get(k) != other.get(dn, {}).get(k))
                  for dn in set(dumps[0]) | set(other) if dumps[0].get(dn) != other.get(dn)}
        assert differ == {}, f"a and {name} differ: {dict(list(differ.items())[:5])}"
    raise AssertionError("unreachable")


def _sync(trio: Trio, tmp_path: Path, school: str, count: int) -> subprocess.Popen[bytes]:
    roster = write_roster(tmp_path / f"{school}.csv", school_rows(school, count))
    client_cfg = str(Path(trio.client.base_path) / "config.yaml")
    return subprocess.Popen([str(MIMSDIR), "--config", client_cfg, "sync", str(roster),
                             "--report", str(tmp_path / "report.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    """wait_for, polling fast: catches a sync in the middle of its batch."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@contextmanager
def _killed_mid_sync(proc: subprocess.Popen[bytes], victim: Config, name: str, school: str,
                     tmp_path: Path) -> Iterator[dict[str, Any]]:
    """SIGKILL ``victim`` once the sync's first students have reached it; the sync must
    still finish (exit 0): its report, while the victim is down. The victim is started
    again on the way out, whatever happened."""
    killed = False
    try:
        _until(f"the sync's first students on {name}",
               lambda: len(school_entries(victim, school)) >= 1)
        os.kill(server.status(victim).pid, signal.SIGKILL)  # type: ignore[arg-type]
        killed = True
        assert proc.poll() is None, f"the sync ended before {name} was killed"
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode() + out.decode()
        yield json.loads((tmp_path / "report.json").read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if killed:
            server.up(victim)


def _school_students(tree: dict[str, dict[str, list[bytes]]], school: str
                     ) -> list[dict[str, list[bytes]]]:
    return [e for e in tree.values()
            if [v.decode() for v in e.get("mimsschoolcode", [])] == [school]]


@pytest.mark.real_clock
def test_the_consumer_killed_mid_sync_catches_up_when_restarted(trio: Trio,
                                                                  tmp_path: Path) -> None:
    school = "C" + uuid.uuid4().hex[:6].upper()
    count = 80
    proc = _sync(trio, tmp_path, school, count)
    # Some of the batch has reached the consumer, and the sync is still writing.
    with _killed_mid_sync(proc, trio.c, "the consumer", school, tmp_path) as report:
        assert report["applied"]["create"] == count and report["reconnects"] == 0
    assert len(_school_students(_converge(trio), school)) == count
    # `directory status` shows how far each copy goes: the same contextCSN values now.
    assert server.status(trio.c).context_csns == server.status(trio.a).context_csns != ()
    res = CliRunner().invoke(main, ["--config", str(Path(trio.c.base_path) / "config.yaml"),
                                    "directory", "status"])
    assert "role:     read-only consumer of" in res.output
    assert all(f"csn:      {csn}" in res.output for csn in server.status(trio.a).context_csns)


@pytest.mark.real_clock
def test_a_consumer_reinitialised_from_empty_takes_everything_again(trio: Trio) -> None:
    """docs/replication.md, "Reinitialise a consumer": down, its data folder removed, up."""
    dn = _student(trio)
    server.down(trio.c)
    shutil.rmtree(trio.c.state_dir / "data")
    server.up(trio.c)
    tree = _converge(trio)
    assert dn.lower() in tree
    assert _signs_in(trio.c, dn, "Start-pass-1234")


@pytest.mark.real_clock
def test_a_provider_killed_mid_sync_the_sync_and_clients_fail_over_then_all_converge(
        trio: Trio, tmp_path: Path) -> None:
    school = "K" + uuid.uuid4().hex[:6].upper()
    count = 60
    proc = _sync(trio, tmp_path, school, count)
    client_cfg = str(Path(trio.client.base_path) / "config.yaml")
    with _killed_mid_sync(proc, trio.a, "a", school, tmp_path) as report:
        # It went on with b: finished, nothing failed.
        assert report["reconnects"] >= 1 and report["write_failures"] == []
        assert report["applied"]["create"] == count
        assert len(school_entries(trio.b, school)) == count

        # The consumer goes on: it signs people in (it replicates from b too), and forwards
        # what a sign-in writes to b.
        dn = Dns(trio.b.ldap.base_dn).student(next(iter(school_entries(trio.b, school))))
        with _at(trio.c) as conn:
            assert not conn.bind_ppolicy(dn, "wrong-while-a-is-down").ok
        wait_for("the failure on b", lambda: _failures(trio.b, dn) == 1, timeout=BOUND_SECONDS)

        # The portal's pool and the CLI (a read, and ICT's unlock) go on with b as well.
        pool = ServicePool(trio.client, 2)
        conn = pool.borrow()
        assert conn.uri == trio.b.ldap.listen_uri
        pool.give_back(conn)
        uid = next(iter(school_entries(trio.b, school)))
        res = CliRunner().invoke(main, ["--config", client_cfg, "student", "show", uid])
        assert res.exit_code == 0, res.output
        assert uid in res.output
        res = CliRunner().invoke(main, ["--config", client_cfg, "student", "unlock", uid])
        assert res.exit_code == 0, res.output

    # a is back: all three hold the same data tree, nothing lost.
    students = _school_students(_converge(trio), school)
    assert len(students) == count
    assert not any("mimscredentialpending" in e for e in students)


# -- no slapd of its own ------------------------------------------------------------------------
def test_replication_roles_are_checked(tmp_path: Path) -> None:
    """Every refusal of directory.replication names its key; the YAML's form of each too."""
    def check(**kw: object) -> None:
        ReplicationConfig(**kw).validate("directory.replication")  # type: ignore[arg-type]

    check(role="consumer", providers=("ldap://p1:389", "ldaps://p2:636"))
    check(role="provider", server_id=1, peers=("ldap://p2:389",))
    for kw, key, why in (
            ({"role": "replica"}, "role", "one of provider, consumer"),
            ({"role": "consumer"}, "providers", "at least one provider"),
            ({"role": "consumer", "providers": ("http://p1",)}, "providers", "not an ldap"),
            ({"role": "consumer", "providers": ('ldap://p1 "x"',)}, "providers", "not an ldap"),
            # Nothing but scheme://host[:port]: no DN, filter, user or second URL.
            ({"role": "consumer", "providers": ("ldap://p1/dc=x",)}, "providers", "the form"),
            ({"role": "consumer", "providers": ("ldap://p1:389??sub",)}, "providers",
             "the form"),
            ({"role": "consumer", "providers": ("ldap://cn=x@p1",)}, "providers", "the form"),
            ({"role": "consumer", "providers": ("ldap://p1,ldap://p2",)}, "providers",
             "the form"),
            ({"role": "consumer", "providers": ("ldap://p1:70000",)}, "providers", "the form"),
            ({"role": "consumer", "providers": ("ldap://P1:389", "ldap://p1:389/")},
             "providers", "listed twice"),
            ({"role": "consumer", "providers": ("ldap://p1",), "server_id": 3}, "server_id",
             "has none"),
            ({"role": "consumer", "providers": ("ldap://p1",), "peers": ("ldap://p2",)},
             "peers", "no peers"),
            ({"role": "consumer", "providers": ("ldap://p1",), "join": True}, "join",
             "leave join out"),
            ({"server_id": 1, "providers": ("ldap://p1",)}, "providers",
             "only for role: consumer")):
        with pytest.raises(ConfigError, match=rf"directory\.replication\.{key}: .*{why}"):
            check(**kw)

    def load(replication: object, uri: str = "ldap://127.0.0.1:3390") -> Config:
        return _write(tmp_path / "config.yaml", {
            "ldap": {"uri": uri, "tls": {**TEST_TLS, "ldaps_uri": "ldaps://127.0.0.1:6360"}},
            "directory": {"replication": replication}})

    assert load({"role": "consumer", "providers": ["ldap://p1:389"]}).directory.replication \
        .providers == ("ldap://p1:389",)
    for replication, why in (
            ({"role": "consumer", "providers": "ldap://p1:389"},
             r"replication\.providers: expected a list"),
            ({"role": "consumer", "providers": ["ldap://p1:389", 7]},
             r"replication\.providers: not an ldap:// or ldaps:// URL of the form "
             r"scheme://host\[:port\]: '7'"),
            ({"role": "consumer", "providers": ["ldap://127.0.0.1:3390/"]},
             r"replication\.providers: ldap://127\.0\.0\.1:3390 is this consumer's own"),
            ({"role": "consumer", "providers": ["LDAPS://127.0.0.1:6360"]},
             "this consumer's own"),
            ({"role": "secondary", "providers": ["ldap://p1"]}, r"replication\.role"),
            ({"role": "consumer", "providers": ["ldap://p1"], "replicas": 2},
             r"replication\.replicas: unknown key")):
        with pytest.raises(ConfigError, match=why):
            load(replication)


def test_ldap_uri_may_list_the_providers(tmp_path: Path) -> None:
    def load(uri: object, **tls: object) -> Config:
        return _write(tmp_path / "config.yaml", {"ldap": {"uri": uri, **(
            {"tls": tls} if tls else {})}})

    for given in (["ldap://p1:389", "ldaps://p2:636"], "ldap://p1:389 ldaps://p2:636",
                  "ldap://p1:389, ldaps://p2:636"):
        cfg = load(given)
        assert cfg.ldap.uris == ("ldap://p1:389", "ldaps://p2:636")
        assert cfg.ldap.listen_uri == "ldap://p1:389"
    assert load("ldap://one:389").ldap.uris == ("ldap://one:389",)
    for bad, why in ((["ldap://p1", "http://p2"], r"ldap\.uri: must start with .*'http://p2'"),
                     (["ldap://p1", "ldapi://%2Fsock"], r"ldap\.uri: ldapi:// cannot be one"),
                     ([], r"ldap\.uri: expected a URI or a list of URIs"),
                     (["ldap://p1", 389], r"ldap\.uri: expected a URI or a list of URIs"),
                     ("", r"ldap\.uri: expected a URI or a list of URIs"),
                     (" , ", r"ldap\.uri: expected a URI or a list of URIs")):
        with pytest.raises(ConfigError, match=why):
            load(bad)
    # TLS required and one ldap:// URI among them: clients must do StartTLS on it.
    assert load(["ldaps://p1:636", "ldap://p2:389"], mode="generate", require=True).ldap.tls \
        .client_starttls
    with pytest.raises(ConfigError, match=r"ldap\.tls\.starttls: must be on"):
        load(["ldaps://p1:636", "ldap://p2:389"], mode="generate", require=True,
             starttls=False)


def _consumer_config(tmp_path: Path) -> Config:
    return _write(tmp_path / "config.yaml", {
        "ldap": {"uri": "ldap://127.0.0.1:3390", "tls": TEST_TLS},
        "directory": {"state_dir": str(tmp_path / "state"), "replication": {
            "role": "consumer", "providers": ["ldap://p1:389", "ldaps://p2:636"]}}})


def test_a_consumers_provider_urls_are_written_in_one_form(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "config.yaml", {
        "ldap": {"uri": "ldap://127.0.0.1:3390", "tls": TEST_TLS},
        "directory": {"state_dir": str(tmp_path / "state"), "replication": {
            "role": "consumer", "providers": ["LDAP://Dir1.Example:389/", "ldaps://DIR2"]}}})
    text = render_config(cfg, "replicator-secret", "chain-secret")
    want = ["ldap://dir1.example:389", "ldaps://dir2"]
    assert re.findall(r"^olcUpdateRef: (.*)$", text, re.M) == want
    assert re.findall(r"^olcDbURI: (.*)$", text, re.M) == want
    assert re.findall(r"provider=(\S+)", text) == want


def test_a_consumers_cn_config(tmp_path: Path) -> None:
    """What makes a consumer (docs/replication.md): syncrepl from every provider over
    TLS, writes referred to the providers and chained as the writer, ppolicy's state
    forwarded, its data written by replication only, and no server id."""
    cfg = _consumer_config(tmp_path)
    text = render_config(cfg, "replicator-secret", "chain-secret")
    dns = Dns(cfg.ldap.base_dn)
    syncrepl = re.findall(r"^olcSyncrepl: .*$", text, re.M)
    assert len(syncrepl) == 2
    for line, provider in zip(syncrepl, ("ldap://p1:389", "ldaps://p2:636"), strict=True):
        assert f"provider={provider} " in line
        for option in ("type=refreshAndPersist", 'searchbase="dc=mims,dc=example"',
                       "tls_reqcert=demand", f'binddn="{dns.service("replicator")}"',
                       'credentials="replicator-secret"'):
            assert option in line
        # Whole entries, not the providers' audit logs (docs/replication.md, "Why not
        # delta-syncrepl").
        assert "syncdata" not in line
    assert "starttls=critical" in syncrepl[0]
    assert re.findall(r"^olcUpdateRef: (.*)$", text, re.M) == ["ldap://p1:389",
                                                               "ldaps://p2:636"]
    # The chain's databases carry the very text of the referrals, unquoted: slapo-chain
    # finds a referral's database by comparing the two, and follows a URL it does not find
    # anonymously in clear (the trap in the trio fixture catches that).
    assert re.findall(r"^olcDbURI: (.*)$", text, re.M) == ["ldap://p1:389", "ldaps://p2:636"]
    assert "olcPPolicyForwardUpdates: TRUE" in text
    assert "olcModuleLoad: {7}back_ldap" in text
    assert "dn: olcOverlay={0}chain,olcDatabase={-1}frontend,cn=config" in text
    assert "olcChainReturnError: TRUE" in text
    binds = re.findall(r"^olcDbIDAssertBind: .*$", text, re.M)
    assert len(binds) == 2
    for bind in binds:
        for option in (f'binddn="{dns.service("chain")}"', 'credentials="chain-secret"',
                       "mode=self", "flags=prescriptive,proxy-authz-critical",
                       "tls_reqcert=demand"):
            assert option in bind
    assert "starttls=critical" in binds[0]
    assert re.findall(r"^olcDbIDAssertAuthzFrom: (.*)$", text, re.M) == [
        f"dn.onelevel:{dns.students}", f"dn.subtree:{dns.staff}"] * 2
    assert re.findall(r"^olcDbStartTLS: (\S+)", text, re.M) == ["start", "ldaps"]
    # The data is written by replication only: its rootDN is not the host's root.
    data = text.split(f"olcSuffix: {dns.base}", 1)[1]
    assert re.search(r"^olcRootDN: (.*)$", data, re.M)[1] == dns.replication_root  # type: ignore[index]
    assert "olcServerID" not in text and "olcMultiProvider" not in text


def test_a_provider_gives_nobody_its_audit_log(tmp_path: Path) -> None:
    """Consumers replicate the data, not the providers' audit logs: the replicator (whose
    password every consumer holds) reads nothing of cn=accesslog, and a provider's
    cn=config carries nothing of a consumer's (no chain, no referrals)."""
    cfg = _write(tmp_path / "config.yaml", {"directory": {"state_dir": str(tmp_path / "s")}})
    text = render_config(cfg)
    accesslog = text.split("olcSuffix: cn=accesslog", 1)[1].split("olcDatabase={2}mdb", 1)[0]
    assert "replicator" not in accesslog and "syncprov" not in accesslog
    assert "chain" not in text.lower().replace("cn=chain", "")
    assert "olcUpdateRef" not in text and "olcPPolicyForwardUpdates" not in text
    data = text.split(f"olcSuffix: {Dns(cfg.ldap.base_dn).base}", 1)[1]
    assert re.search(r"^olcRootDN: (.*)$", data, re.M)[1] == Dns(cfg.ldap.base_dn).root  # type: ignore[index]


def test_a_consumer_needs_the_providers_secrets(tmp_path: Path) -> None:
    cfg = _consumer_config(tmp_path)
    with pytest.raises(ConfigError, match=r"replicator\.pw: missing.*copy replicator\.pw, "
                                          r"chain\.pw from a provider"):
        server.build(cfg)
    # It generates neither (a password of its own would match no provider's).
    assert not (cfg.secrets_dir / "replicator.pw").exists()
    (cfg.secrets_dir / "replicator.pw").write_text("from-a-provider", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"chain\.pw: missing"):
        server.build(cfg)
    assert not (cfg.secrets_dir / "chain.pw").exists()
    assert sorted(p.name for p in cfg.secrets_dir.iterdir()) == ["replicator.pw"]
