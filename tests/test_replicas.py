"""Read-only replicas near the schools (issue 10): two providers and one consumer on loopback,
all with TLS required, started once for the module.

- the consumer takes everything from the providers (delta-syncrepl over their audit logs)
  and writes nothing of its own: not its host's root, not the sync, not the id pools;
- a portal reset on a provider signs in on the consumer within a measured bound;
- wrong passwords on the consumer lock the student on every server (ppolicy forwards its
  writes through the chain overlay), and an unlock on a provider opens the consumer;
- a student's own password change on the consumer is made on a provider, as the student;
- a provider killed with SIGKILL mid-sync: the sync finishes on the other provider, the
  portal and the CLI go on there too, and when the killed one comes back all three hold the
  same data tree (dumps compared).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap
import pytest
import yaml
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.config import Config, ReplicationConfig, load_config
from mimsdir.connect import network_conn, service_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns, render_config
from mimsdir.errors import AccessDenied, ConfigError, DirectoryUnavailable, TlsRefused
from mimsdir.ldapio import Conn, first, values
from mimsdir.portal.directory import PortalDirectory, ServicePool
from tests.conftest import TEST_TLS, free_port
from tests.sync_helpers import school_entries, school_rows, write_roster
from tests.test_replication import NoStartTls, wait_for

MIMSDIR = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "mimsdir"
#: What the test allows between a write on a provider and its effect on the consumer
#: (measured: tens of milliseconds on loopback, see docs/replication.md).
BOUND_SECONDS = 10.0
#: Five wrong passwords lock, as in production (config.PolicyConfig's default).
FAILURES = 5


@dataclass
class Trio:
    a: Config  # provider, server id 1
    b: Config  # provider, server id 2
    c: Config  # the consumer of a (StartTLS) and b (ldaps)
    client: Config  # the sync, CLI and portal: ldap.uri lists a then b
    teacher: str
    admin: str


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
    c = _directory(base, "c", pc, {"role": "consumer",
                                   "providers": [uri_a, f"ldaps://127.0.0.1:{pb_ldaps}"]})
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
        yield Trio(a, b, c, client, teacher, admin)
    finally:
        for cfg in reversed(started):
            server.down(cfg)


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


# -- the consumer --------------------------------------------------------------------------
@pytest.mark.real_clock
def test_the_consumer_takes_the_providers_tree_by_delta_and_writes_nothing(trio: Trio,
                                                                           tmp_path: Path) -> None:
    dns = Dns(trio.a.ldap.base_dn)
    # It built no tree of its own: the base entry is the providers' (same entryUUID).
    assert _get(trio.c, dns.base, "entryUUID") == _get(trio.a, dns.base, "entryUUID")
    assert _get(trio.c, dns.service("chain"), "cn") == ["chain"]

    # A change reaches it as a delta from a provider's audit log, not as a whole entry.
    dn = _student(trio)
    with server.root_conn(trio.a) as root:
        root.modify(dn, [(ldap.MOD_REPLACE, "mimsClass", [b"4B"])], "moving class")
    wait_for("the move on the consumer", lambda: _get(trio.c, dn, "mimsClass") == ["4B"])
    log = (trio.c.state_dir / "slapd.log").read_text(errors="replace")
    assert re.search(rf"syncrepl_message_to_op: rid=\d+ be_modify {re.escape(dn)} \(0\)", log)

    # Nothing writes to it but replication: not its host's root (the data's rootDN is
    # another DN there, and the chain refuses to forward anyone but students and staff:
    # the real error, not a referral) ...
    with server.root_conn(trio.c) as root, pytest.raises(
            AccessDenied, match=r"read-only replica .*\(INAPPROPRIATE_AUTH\)"):
        root.modify(dn, [(ldap.MOD_REPLACE, "mimsClass", [b"9Z"])], "writing on the consumer")
    # ... nor the sync account, whose id pool reservation is refused there ...
    from mimsdir.directory.idpool import UID, Pools, reserve

    sync_pw = (trio.a.secrets_dir / "sync.pw").read_text().strip()
    with network_conn(trio.c, uri=trio.c.ldap.listen_uri) as conn:
        conn.bind(dns.service("sync"), sync_pw)
        with pytest.raises(AccessDenied, match="read-only"):
            reserve(conn, Pools(dns, 1000000, 900000), UID, 3)
    assert _get(trio.a, dns.idpool("uid-0"), "mimsIdNext") is None
    assert _get(trio.a, dn, "mimsClass") == ["4B"]
    # ... and mimsdir says so before trying: the sync and a load refuse a consumer's config.
    roster = write_roster(tmp_path / "r.csv", school_rows("CONS", 2))
    cfg_c = str(Path(trio.c.base_path) / "config.yaml")
    for argv in (["sync", str(roster)], ["directory", "load", str(roster)],
                 ["directory", "posix-backfill"], ["student", "show", "S1"],
                 ["sspr", "serve"]):
        res = CliRunner().invoke(main, ["--config", cfg_c, *argv])
        assert res.exit_code == 2, res.output
        assert "read-only consumer" in res.output


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
def test_wrong_passwords_on_the_consumer_lock_everywhere_and_an_unlock_opens_it(
        trio: Trio) -> None:
    dn = _student(trio, "Right-pass-1234")
    for n in range(1, FAILURES + 1):
        with network_conn(trio.c, uri=trio.c.ldap.listen_uri) as conn:
            assert not conn.bind_ppolicy(dn, f"wrong-{n}").ok
        # Each failure is written on a provider and comes back: the consumer counts them.
        wait_for(f"failure {n} back on the consumer",
                 lambda n=n: len(_get(trio.c, dn, "pwdFailureTime") or []) == n)
    for cfg in (trio.a, trio.b, trio.c):
        wait_for(f"the lockout on {cfg.ldap.listen_uri}",
                 lambda cfg=cfg: bool(_get(cfg, dn, "pwdAccountLockedTime")))
        assert _locked(cfg, dn, "Right-pass-1234")
    # A teacher's failure on the consumer is recorded on the providers too.
    with network_conn(trio.c, uri=trio.c.ldap.listen_uri) as conn:
        assert not conn.bind_ppolicy(trio.teacher, "not-the-teachers").ok
    try:
        wait_for("the teacher's failure on b",
                 lambda: len(_get(trio.b, trio.teacher, "pwdFailureTime") or []) == 1)
    finally:
        with server.root_conn(trio.a) as root:
            root.modify(trio.teacher, [(ldap.MOD_REPLACE, "pwdFailureTime", [])], "clearing")
    # The failures were written by the chain account, on a provider.
    with server.root_conn(trio.a) as root:
        writers = {first(e, "reqAuthzID") for _, e in root.search(
            "cn=accesslog", ldap.SCOPE_ONELEVEL, f"(&(reqDN={dn})(reqMod=pwdFailureTime:+*))",
            ["reqAuthzID"], "who recorded the failures")}
    assert writers == {Dns(trio.a.ldap.base_dn).service("chain")}

    portal = PortalDirectory(trio.client)
    try:
        portal.teacher_unlock(trio.teacher, dn)
    finally:
        portal.close()
    wait_for("the unlock on the consumer", lambda: _signs_in(trio.c, dn, "Right-pass-1234"),
             timeout=BOUND_SECONDS)


@pytest.mark.real_clock
def test_a_password_changed_on_the_consumer_is_changed_on_a_provider_as_the_student(
        trio: Trio) -> None:
    dn = _student(trio, "Old-pass-1234")
    with network_conn(trio.c, uri=trio.c.ldap.listen_uri) as conn:
        conn.bind(dn, "Old-pass-1234")
        conn.set_password(dn, "Koala-climbs-58", old="Old-pass-1234")
    for cfg in (trio.a, trio.b, trio.c):
        wait_for(f"the new password on {cfg.ldap.listen_uri}",
                 lambda cfg=cfg: _signs_in(cfg, dn, "Koala-climbs-58"), timeout=BOUND_SECONDS)
    with server.root_conn(trio.a) as root:
        change = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL,
                             f"(&(reqDN={dn})(reqMod=userPassword:=*))", ["reqAuthzID"],
                             "who changed the password")
    assert [first(e, "reqAuthzID") for _, e in change][-1] == dn.lower()

    # The chain account acts as students and form teachers only, never as an ICT admin.
    chain_pw = (trio.c.secrets_dir / "chain.pw").read_text().strip()
    dns = Dns(trio.a.ldap.base_dn)
    with network_conn(trio.a, uri=trio.a.ldap.listen_uri) as conn:
        conn.bind(dns.service("chain"), chain_pw)
        conn.act_as(dn)
        assert conn.whoami() == f"dn:{dn.lower()}"
        conn.act_as(trio.teacher)
        assert conn.whoami() == f"dn:{trio.teacher.lower()}"
        conn.act_as(trio.admin)
        with pytest.raises(ldap.LDAPError) as refused:
            conn.lo.whoami_s(ldap.controls.RequestControlTuples(conn._proxy))  # noqa: SLF001
        assert isinstance(refused.value, ldap.PROXIED_AUTHORIZATION_DENIED)


# -- a provider killed mid-sync ----------------------------------------------------------------
IGNORED = {"contextcsn"}  # the base entry's replication state: each server's own view


def _dump(cfg: Config) -> dict[str, dict[str, list[bytes]]]:
    """The data tree as the host's root reads it, operational attributes included."""
    dns = Dns(cfg.ldap.base_dn)
    with server.root_conn(cfg) as root:
        return {dn.lower(): {k.lower(): sorted(v) for k, v in e.items()
                             if k.lower() not in IGNORED}
                for dn, e in root.search_paged(dns.base, ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                               ["*", "+"], "dumping the data tree")}


@pytest.mark.real_clock
def test_a_provider_killed_mid_sync_the_sync_and_clients_fail_over_then_all_converge(
        trio: Trio, tmp_path: Path) -> None:
    school = "K" + uuid.uuid4().hex[:6].upper()
    count = 60
    roster = write_roster(tmp_path / f"{school}.csv", school_rows(school, count))
    client_cfg = str(Path(trio.client.base_path) / "config.yaml")
    proc = subprocess.Popen([str(MIMSDIR), "--config", client_cfg, "sync", str(roster),
                             "--report", str(tmp_path / "report.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = False
    try:
        wait_for("the sync's first writes on a",
                 lambda: len(school_entries(trio.a, school)) >= 1, timeout=30)
        os.kill(server.status(trio.a).pid, signal.SIGKILL)
        killed = True
        out, err = proc.communicate(timeout=120)
        # It went on with b: finished, nothing failed.
        assert proc.returncode == 0, err.decode() + out.decode()
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["reconnects"] >= 1 and report["write_failures"] == []
        assert report["applied"]["create"] == count
        assert len(school_entries(trio.b, school)) == count

        # The portal's pool and the CLI go on with b as well.
        pool = ServicePool(trio.client, 2)
        conn = pool.borrow()
        assert conn.uri == trio.b.ldap.listen_uri
        pool.give_back(conn)
        uid = next(iter(school_entries(trio.b, school)))
        res = CliRunner().invoke(main, ["--config", client_cfg, "student", "show", uid])
        assert res.exit_code == 0, res.output
        assert uid in res.output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if killed:
            server.up(trio.a)

    # a is back: all three hold the same data tree, nothing lost.
    deadline = time.monotonic() + 60
    while True:
        dumps = [_dump(cfg) for cfg in (trio.a, trio.b, trio.c)]
        if dumps[0] == dumps[1] == dumps[2] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name, other in (("b", dumps[1]), ("consumer", dumps[2])):
        differ = sorted(dn for dn in set(dumps[0]) | set(other)
                        if dumps[0].get(dn) != other.get(dn))
        detail = {dn: {k: (dumps[0].get(dn, {}).get(k), other.get(dn, {}).get(k)) for k in set(dumps[0].get(dn, {})) | set(other.get(dn, {})) if dumps[0].get(dn, {}).get(k) != other.get(dn, {}).get(k)} for dn in differ[:5]}
        assert differ == [], f"a and {name} differ: {detail}"
    students = [e for e in dumps[2].values() if [v.decode() for v in e.get(
        "mimsschoolcode", [])] == [school]]
    assert len(students) == count
    assert not any("mimscredentialpending" in e for e in students)


# -- no slapd of its own ------------------------------------------------------------------------
def test_replication_roles_are_checked() -> None:
    def check(**kw: object) -> None:
        ReplicationConfig(**kw).validate("directory.replication")  # type: ignore[arg-type]

    check(role="consumer", providers=("ldap://p1:389", "ldaps://p2:636"))
    for kw, key in (({"role": "replica"}, "role"),
                    ({"role": "consumer"}, "providers"),
                    ({"role": "consumer", "providers": ("http://p1",)}, "providers"),
                    ({"role": "consumer", "providers": ("ldap://p1",), "server_id": 3},
                     "server_id"),
                    ({"role": "consumer", "providers": ("ldap://p1",), "peers": ("ldap://p2",)},
                     "peers"),
                    ({"role": "consumer", "providers": ("ldap://p1",), "join": True}, "join"),
                    ({"server_id": 1, "providers": ("ldap://p1",)}, "providers")):
        with pytest.raises(ConfigError, match=rf"directory\.replication\.{key}"):
            check(**kw)


def test_ldap_uri_may_list_the_providers(tmp_path: Path) -> None:
    def load(uri: object) -> Config:
        return _write(tmp_path / "config.yaml", {"ldap": {"uri": uri}})

    for given in (["ldap://p1:389", "ldaps://p2:636"], "ldap://p1:389 ldaps://p2:636",
                  "ldap://p1:389, ldaps://p2:636"):
        cfg = load(given)
        assert cfg.ldap.uris == ("ldap://p1:389", "ldaps://p2:636")
        assert cfg.ldap.listen_uri == "ldap://p1:389"
    assert load("ldap://one:389").ldap.uris == ("ldap://one:389",)
    for bad, why in ((["ldap://p1", "http://p2"], "must start with"),
                     (["ldap://p1", "ldapi://%2Fsock"], "ldapi"), ([], "list of URIs")):
        with pytest.raises(ConfigError, match=why):
            load(bad)


def _consumer_config(tmp_path: Path) -> Config:
    return _write(tmp_path / "config.yaml", {
        "ldap": {"uri": "ldap://127.0.0.1:3390", "tls": TEST_TLS},
        "directory": {"state_dir": str(tmp_path / "state"), "replication": {
            "role": "consumer", "providers": ["ldap://p1:389", "ldaps://p2:636"]}}})


def test_a_consumers_cn_config(tmp_path: Path) -> None:
    """What makes a consumer (docs/replication.md): delta-syncrepl from every provider over
    TLS, writes referred to the providers and chained as the writer, ppolicy's state
    forwarded, its data written by replication only, and no server id."""
    cfg = _consumer_config(tmp_path)
    text = render_config(cfg, "replicator-secret", "chain-secret")
    dns = Dns(cfg.ldap.base_dn)
    syncrepl = re.findall(r"^olcSyncrepl: .*$", text, re.M)
    assert len(syncrepl) == 2
    for line, provider in zip(syncrepl, ("ldap://p1:389", "ldaps://p2:636"), strict=True):
        assert f"provider={provider} " in line
        for option in ("type=refreshAndPersist", "syncdata=accesslog", 'logbase="cn=accesslog"',
                       'logfilter="(&(objectClass=auditWriteObject)(reqResult=0))"',
                       "tls_reqcert=demand", f'binddn="{dns.service("replicator")}"'):
            assert option in line
    assert "starttls=critical" in syncrepl[0]
    assert re.findall(r"^olcUpdateRef: (.*)$", text, re.M) == ["ldap://p1:389",
                                                               "ldaps://p2:636"]
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


def test_a_providers_cn_config_serves_delta_syncrepl(tmp_path: Path) -> None:
    """The providers' audit log is what consumers replicate from: the replicator reads it,
    without limits, through syncprov."""
    cfg = _write(tmp_path / "config.yaml", {"directory": {"state_dir": str(tmp_path / "s")}})
    text = render_config(cfg)
    accesslog = text.split("olcSuffix: cn=accesslog", 1)[1].split("olcDatabase={2}mdb", 1)[0]
    replicator = Dns(cfg.ldap.base_dn).service("replicator")
    assert f'by dn.exact="{replicator}" read' in accesslog
    assert f'dn.exact="{replicator}" size=unlimited time=unlimited' in accesslog
    assert "dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config" in accesslog
    assert "chain" not in text.lower().replace("cn=chain", "")


def test_a_consumer_needs_the_providers_secrets(tmp_path: Path) -> None:
    cfg = _consumer_config(tmp_path)
    with pytest.raises(ConfigError, match=r"replicator\.pw.*copy replicator\.pw, chain\.pw"):
        server.build(cfg)
    assert not (cfg.secrets_dir / "replicator.pw").exists()


# -- clients fail over (the session's directory as the one that answers) ---------------------
@pytest.mark.real_clock
def test_clients_go_on_to_the_next_uri_only_when_one_is_unreachable(slapd: Config,
                                                                     tmp_path: Path) -> None:
    import dataclasses

    dead = f"ldap://127.0.0.1:{free_port()}"
    cfg = dataclasses.replace(slapd, ldap=dataclasses.replace(
        slapd.ldap, uri=f"{dead} {slapd.ldap.uri}"))
    with network_conn(cfg) as conn:
        assert conn.uri == slapd.ldap.uri
    with service_conn(cfg, "sync") as conn:
        assert conn.whoami().startswith("dn:cn=sync,")
    only_dead = dataclasses.replace(cfg, ldap=dataclasses.replace(cfg.ldap, uri=dead))
    with pytest.raises(DirectoryUnavailable, match="unreachable"):
        network_conn(only_dead)
    # A directory that answers but cannot give TLS is an error, never skipped in silence.
    peer = NoStartTls()
    try:
        refusing = dataclasses.replace(cfg, ldap=dataclasses.replace(
            cfg.ldap, uri=f"{peer.uri} {slapd.ldap.uri}"))
        with pytest.raises(TlsRefused):
            network_conn(refusing)
    finally:
        peer.close()
