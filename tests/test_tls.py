"""TLS owned by the project (issue 10): slapd serves StartTLS and LDAPS with a certificate that
`directory up` makes (or is given), requires TLS for everything but StartTLS on its network
listeners, and every client verifies it. The session's slapd runs this way
(tests/conftest.py: ``ldap.tls: {mode: generate, require: true}``), so every other test binds
over TLS too; here are the rules themselves."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import ssl
import stat
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ldap
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mimsdir.cli import main
from mimsdir.config import Config, load_config
from mimsdir.connect import network_conn, service_conn
from mimsdir.directory import server, tls
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import ConfigError, DirectoryUnavailable
from mimsdir.ldapio import Conn, TlsClient
from mimsdir.portal.directory import PortalDirectory
from tests.conftest import TEST_TLS, free_port, write_config
from tests.ldap_wire import LoopbackServer

# slapd, libldap and OpenSSL check certificates on the real clock (tests/conftest.py).
pytestmark = pytest.mark.real_clock

ROOT = Path(__file__).resolve().parent.parent
STARTTLS_REQUEST = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + b"1.3.6.1.4.1.1466.20037"


def _host_port(uri: str) -> tuple[str, int]:
    parts = urlsplit(uri)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _recv_ldap_message(sock: socket.socket) -> bytes:
    head = sock.recv(2)
    length = head[1]
    if length & 0x80:  # long form
        extra = sock.recv(length & 0x7F)
        head += extra
        length = int.from_bytes(extra, "big")
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk, "connection closed mid-message"
        body += chunk
    return head + body


def served_cert(uri: str, ca_file: Path) -> x509.Certificate:
    """The certificate a new connection to ``uri`` is shown (StartTLS on ldap://, TLS from the
    start on ldaps://), verified with ``ca_file`` as a client would."""
    host, port = _host_port(uri)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, port), timeout=5) as raw:
        if uri.startswith("ldap://"):
            raw.sendall(STARTTLS_REQUEST)
            assert b"\x0a\x01\x00" in _recv_ldap_message(raw)  # resultCode success
        with ctx.wrap_socket(raw, server_hostname=host) as t:
            der = t.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def clear_text(cfg: Config) -> ldap.ldapobject.LDAPObject:
    """A python-ldap connection to the network listener with no TLS at all."""
    lo = ldap.initialize(cfg.ldap.uri)
    lo.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    return lo


def other_ca(tmp_path: Path) -> Path:
    """A CA that has nothing to do with the directory's."""
    cert, _key = tls.make_ca(datetime.now(UTC), "elsewhere")
    path = tmp_path / "other-ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# -- the session's slapd (TLS required) ------------------------------------------------------
def test_starttls_and_ldaps_with_the_directory_ca(slapd: Config, dns: Dns) -> None:
    pw = (slapd.secrets_dir / "device.pw").read_text()
    assert slapd.ldap.tls.ldaps_uri
    for uri in (slapd.ldap.uri, slapd.ldap.tls.ldaps_uri):
        with network_conn(slapd, uri=uri) as c:
            assert c.encrypted
            c.bind(dns.service("device"), pw)
            assert c.whoami() == f"dn:{dns.service('device')}"
    # The certificate served is the one in the state dir, for the listener's address.
    cert = served_cert(slapd.ldap.uri, slapd.tls_dir / "ca.crt")
    assert cert == tls.load_certs(slapd.tls_dir / "server.crt")[0]


def test_nothing_but_starttls_in_clear(slapd: Config, make, root) -> None:  # type: ignore[no-untyped-def]
    """tls.require: a bind with the right password, an anonymous search, a WhoAmI and a
    password change are all refused on a connection without TLS, before slapd looks at the
    password (no failure is recorded against the student)."""
    student = make.student(password="Clear-text-9")
    lo = clear_text(slapd)
    with pytest.raises(ldap.CONFIDENTIALITY_REQUIRED):
        lo.simple_bind_s(student.dn, "Clear-text-9")
    with pytest.raises(ldap.CONFIDENTIALITY_REQUIRED):
        lo.search_s("", ldap.SCOPE_BASE, "(objectClass=*)")
    with pytest.raises(ldap.CONFIDENTIALITY_REQUIRED):
        lo.whoami_s()
    with pytest.raises((ldap.CONFIDENTIALITY_REQUIRED, ldap.STRONG_AUTH_REQUIRED)):
        lo.passwd_s(student.dn, "Clear-text-9", "Another-pass-77")
    lo.unbind_s()
    attrs = root.get(student.dn, ["pwdFailureTime"], "failures") or {}
    assert "pwdFailureTime" not in attrs
    # The same over StartTLS: the bind works and so does the change.
    with network_conn(slapd) as c:
        assert c.bind_ppolicy(student.dn, "Clear-text-9").ok
        c.set_password(student.dn, "Another-pass-77", old="Clear-text-9")
    # Our adapter says what to do about it, and never sends a password in clear.
    with Conn(slapd.ldap.uri, timeout=5) as plain, pytest.raises(ConfigError, match="TLS"):
        plain.bind(student.dn, "Another-pass-77")


def test_the_host_root_over_ldapi_still_works(slapd: Config, make, root) -> None:  # type: ignore[no-untyped-def]
    """ldapi is not a network listener: root (SASL EXTERNAL) reads, writes, sets passwords
    and reads cn=config there with tls.require on."""
    student = make.student(password=None)
    root.set_password(student.dn, "Root-set-pass-5")
    root.modify(student.dn, [(ldap.MOD_REPLACE, "mimsClass", [b"4Z"])], "moving")
    config = root.get("cn=config", ["olcSecurity", "olcLocalSSF"], "reading cn=config")
    assert config == {"olcSecurity": [b"ssf=128"], "olcLocalSSF": [b"128"]}
    assert root.whoami() == f"dn:{Dns(slapd.ldap.base_dn).root}"


def test_old_tls_versions_are_refused(slapd: Config) -> None:
    """TLS 1.0 and 1.1 are refused (olcTLSCipherSuite: GnuTLS ignores olcTLSProtocolMin)."""
    assert slapd.ldap.tls.ldaps_uri
    host, port = _host_port(slapd.ldap.tls.ldaps_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl's own, for the old versions
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(str(slapd.tls_ca_file))
            ctx.set_ciphers("DEFAULT@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection((host, port), timeout=5) as raw, \
                    pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname=host)
    ctx = ssl.create_default_context(cafile=str(slapd.tls_ca_file))
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as t:
        assert t.version() == "TLSv1.2"


class Tls11Server(LoopbackServer):
    """A listener that speaks only TLS 1.1, with a certificate for 127.0.0.1 from the given
    CA: ``handshakes`` lists each handshake that completed."""

    def __init__(self, ca: x509.Certificate, ca_key: Any, tmp_path: Path, port: int = 0) -> None:
        now = datetime.now(UTC)
        leaf, key = tls.make_server_cert(ca, ca_key, ["localhost"],
                                         [ipaddress.ip_address("127.0.0.1")], now)
        (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "leaf.key").write_bytes(tls._key_pem(key))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # ssl's, for TLS 1.1
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.minimum_version = self.ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        self.ctx.set_ciphers("DEFAULT@SECLEVEL=0")
        self.ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
        self.handshakes: list[str] = []
        super().__init__(port, scheme="ldaps")

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as t:
                self.handshakes.append(str(t.version()))
        except (OSError, ssl.SSLError):
            conn.close()


def test_clients_refuse_old_tls_versions(tmp_path: Path) -> None:
    ca, ca_key = tls.make_ca(datetime.now(UTC), "test")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    old = Tls11Server(ca, ca_key, tmp_path)
    try:
        with pytest.raises(DirectoryUnavailable, match="no TLS session"):
            Conn(old.uri, timeout=3, tls=TlsClient(ca_file=str(tmp_path / "ca.pem")))
    finally:
        old.close()
    assert old.handshakes == []


def test_replication_refuses_old_tls_versions(tmp_path: Path) -> None:
    """A provider whose peer offers only TLS 1.1 (with a certificate from the right CA)
    never completes a handshake with it."""
    peer_port = free_port()
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tmp_path / "state", free_port(),
        directory={"state_dir": str(tmp_path / "state"), "log_level": "stats sync",
                   "replication": {"server_id": 1, "peers": [f"ldaps://127.0.0.1:{peer_port}"],
                                   "retry": "1 +"}}))
    tls.prepare(cfg)  # the CA, so the peer's certificate can come from it
    old = Tls11Server(tls.load_certs(cfg.tls_dir / "ca.crt")[0],
                      tls.load_key(cfg.tls_dir / "ca.key"), tmp_path, port=peer_port)
    try:
        server.up(cfg)
        log = cfg.state_dir / "slapd.log"
        deadline = time.monotonic() + 15
        while log.read_text(errors="replace").count(f"URI={old.uri} ") < 2:
            assert time.monotonic() < deadline, "no replication attempt in the log"
            time.sleep(0.2)
    finally:
        server.down(cfg)
        old.close()
    assert old.handshakes == []


def test_a_client_refuses_a_certificate_from_another_ca(slapd: Config, tmp_path: Path,
                                                        dns: Dns) -> None:
    """Every client the project ships goes through the adapter, which demands a certificate
    from the configured CA: the CLI and the sync (service_conn), the portal's sign-in, an ICT
    admin's bind. A man in the middle with another CA's certificate gets no password."""
    stranger = other_ca(tmp_path)
    for uri in (slapd.ldap.uri, slapd.ldap.tls.ldaps_uri):
        assert uri
        with pytest.raises(DirectoryUnavailable, match="not trusted for this host"):
            Conn(uri, timeout=5, tls=TlsClient(ca_file=str(stranger)))
    # Nor the system's CAs: the directory's is private.
    with pytest.raises(DirectoryUnavailable, match="not trusted"):
        Conn(slapd.ldap.uri, timeout=5, tls=TlsClient(ca_file=None))
    cfg = dataclasses.replace(slapd, ldap=dataclasses.replace(
        slapd.ldap, tls=dataclasses.replace(slapd.ldap.tls, ca_file=str(stranger))))
    with pytest.raises(DirectoryUnavailable):
        service_conn(cfg, "sync")
    with pytest.raises(DirectoryUnavailable):
        PortalDirectory(cfg).sign_in(dns.service("device"), "whatever")


def test_libldap_defaults_cannot_weaken_the_check(slapd: Config, tmp_path: Path) -> None:
    """A host whose ldap.conf, ~/.ldaprc or LDAPTLS_REQCERT says "allow" (or never): our
    connections still demand a certificate from the configured CA."""
    stranger = other_ca(tmp_path)
    before = ldap.get_option(ldap.OPT_X_TLS_REQUIRE_CERT)
    ldap.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_ALLOW)
    try:
        with pytest.raises(DirectoryUnavailable, match="not trusted"):
            Conn(slapd.ldap.uri, timeout=5, tls=TlsClient(ca_file=str(stranger)))
    finally:
        ldap.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, before)


def test_an_ldaps_uri_works_everywhere(slapd: Config, tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    """ldap.uri: ldaps://... for the sync (CLI), the portal's sign-in and staff commands."""
    assert slapd.ldap.tls.ldaps_uri
    cfg_path = tmp_path / "ldaps.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "ldap": {"uri": slapd.ldap.tls.ldaps_uri,
                 "tls": {"mode": "files", "ca_file": str(slapd.tls_ca_file)},
                 "secrets_dir": str(slapd.secrets_dir)},
        "directory": {"state_dir": str(slapd.state_dir)},
        "sync": {"state_dir": str(tmp_path / "sync")},
        "cli": {"operator_log": str(tmp_path / "ops.jsonl")}}))
    cfg = load_config(cfg_path)
    student = make.student(password="Ldaps-pass-42")
    assert PortalDirectory(cfg).sign_in(student.dn, "Ldaps-pass-42").ok
    with service_conn(cfg, "sync") as c:
        assert c.encrypted and c.whoami().startswith("dn:cn=sync")
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,email,given_name,family_name,school_code,level,class\n"
                      f"{student.uid},{student.mail},A,Student,{make.school},P4,4A\n")
    res = CliRunner().invoke(main, ["--config", str(cfg_path), "sync", str(roster),
                                    "--dry-run"])
    assert res.exit_code == 0, res.output


def test_tls_show_prints_the_ca(slapd: Config, tmp_path: Path) -> None:
    cfg_path = Path(slapd.base_path) / "config.yaml"
    res = CliRunner().invoke(main, ["--config", str(cfg_path), "directory", "tls", "show"])
    assert res.exit_code == 0, res.output
    assert res.output == (slapd.tls_dir / "ca.crt").read_text()
    assert x509.load_pem_x509_certificate(res.output.encode()).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    assert "PRIVATE KEY" not in res.output
    res = CliRunner().invoke(main, ["--config", str(cfg_path), "directory", "status"])
    assert "tls:      required" in res.output and "days)" in res.output
    # Without TLS there is no CA to show: a configuration error, exit 2.
    off = write_config(tmp_path / "off.yaml", tmp_path / "st", free_port(), tls=None)
    res = CliRunner().invoke(main, ["--config", str(off), "directory", "tls", "show"])
    assert res.exit_code == 2 and "ldap.tls.mode is off" in res.output


# -- an instance of its own: renewal and rebuilds -----------------------------------------------
@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Path]:
    cfg_path = write_config(tmp_path / "config.yaml", tmp_path / "state", free_port(),
                            tls={**TEST_TLS, "ldaps_uri": f"ldaps://127.0.0.1:{free_port()}"})
    yield cfg_path
    server.down(load_config(cfg_path))


def test_renewal_without_a_restart(instance: Path) -> None:
    """`directory tls renew`: a new certificate from the same CA, served to every new
    connection by the same slapd process; connections already open carry on, and clients
    need no change (they trust the CA)."""
    cfg = load_config(instance)
    server.up(cfg)
    pid = server.status(cfg).pid
    ca = cfg.tls_dir / "ca.crt"
    ca_before = ca.read_bytes()
    old = served_cert(cfg.ldap.uri, ca)
    dns = Dns(cfg.ldap.base_dn)
    open_conn = service_conn(cfg, "device")

    res = CliRunner().invoke(main, ["--config", str(instance), "directory", "tls", "renew"])
    assert res.exit_code == 0, res.output
    assert "no restart" in res.output
    assert "PRIVATE" not in res.output
    on_disk = tls.load_certs(cfg.tls_dir / "server.crt")[0]
    assert on_disk.serial_number != old.serial_number
    assert f"{on_disk.serial_number:x}" in res.output
    assert server.status(cfg).pid == pid
    for uri in (cfg.ldap.uri, cfg.ldap.tls.ldaps_uri):
        assert uri
        new = served_cert(uri, ca)
        assert new.serial_number == on_disk.serial_number
        assert new.not_valid_after_utc > old.not_valid_after_utc - timedelta(seconds=1)
    assert ca.read_bytes() == ca_before
    assert stat.S_IMODE((cfg.tls_dir / "server.key").stat().st_mode) == 0o600
    # The open connection is still the old session, and works; a new one verifies as before.
    assert open_conn.whoami() == f"dn:{dns.service('device')}"
    open_conn.close()
    with service_conn(cfg, "sync") as c:
        assert c.encrypted
    # The next `up` (a restart) keeps the renewed certificate.
    server.down(cfg)
    server.up(cfg)
    assert served_cert(cfg.ldap.uri, ca).serial_number == on_disk.serial_number


def test_up_on_a_running_directory_says_when_tls_changed(instance: Path) -> None:
    res = CliRunner().invoke(main, ["--config", str(instance), "directory", "up"])
    assert res.exit_code == 0 and "TLS required" in res.output
    res = CliRunner().invoke(main, ["--config", str(instance), "directory", "up"])
    assert "already running" in res.output and "note:" not in res.output
    data = yaml.safe_load(instance.read_text())
    data["ldap"]["tls"]["require"] = False
    instance.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(main, ["--config", str(instance), "directory", "up"])
    assert "already running" in res.output
    assert "directory down && mimsdir directory up` applies it" in res.output


def test_tls_survives_every_rebuild(instance: Path) -> None:
    """cn=config is rebuilt from the templates whenever the rendering changes; TLS is part of
    that rendering, so it is there after each `up`, with the same CA and certificate."""
    cfg = load_config(instance)
    server.up(cfg)
    serial = served_cert(cfg.ldap.uri, cfg.tls_ca_file or Path()).serial_number
    for log_level in ("stats sync", "stats"):  # a changed config: cn=config is rebuilt
        server.down(cfg)
        data = yaml.safe_load(instance.read_text())
        data["directory"]["log_level"] = log_level
        instance.write_text(yaml.safe_dump(data))
        cfg = load_config(instance)
        server.up(cfg)
        assert f"olcLogLevel: {log_level}" in (cfg.state_dir / "config.ldif").read_text()
        assert served_cert(cfg.ldap.uri, cfg.tls_ca_file or Path()).serial_number == serial
        with server.root_conn(cfg) as root:
            got = root.get("cn=config", ["olcTLSCertificateFile", "olcSecurity"], "read")
        assert got == {"olcTLSCertificateFile": [str(cfg.tls_dir / "server.crt").encode()],
                       "olcSecurity": [b"ssf=128"]}
        with pytest.raises(ldap.CONFIDENTIALITY_REQUIRED):
            clear_text(cfg).simple_bind_s(Dns(cfg.ldap.base_dn).service("sync"),
                                          (cfg.secrets_dir / "sync.pw").read_text())


def test_ldaps_as_the_only_network_listener(tmp_path: Path) -> None:
    """ldap.uri: ldaps://...: slapd listens there only, and the sync's account, a sign-in and
    the readiness check all use it."""
    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "state", free_port())
    data = yaml.safe_load(cfg_path.read_text())
    data["ldap"]["uri"] = data["ldap"]["uri"].replace("ldap://", "ldaps://")
    cfg_path.write_text(yaml.safe_dump(data))
    cfg = load_config(cfg_path)
    try:
        server.up(cfg)
        with service_conn(cfg, "sync") as c:
            assert c.encrypted and c.uri.startswith("ldaps://")
        assert served_cert(cfg.ldap.uri, cfg.tls_dir / "ca.crt") == tls.load_certs(
            cfg.tls_dir / "server.crt")[0]
        assert not PortalDirectory(cfg).sign_in(Dns(cfg.ldap.base_dn).service("decoy"),
                                                "a-wrong-guess").ok
    finally:
        server.down(cfg)


def test_up_refuses_files_it_cannot_serve(tmp_path: Path) -> None:
    """mode: files with a key that is not the certificate's: `up` says so and starts nothing
    (slapd would exit, or serve no TLS at all)."""
    now = datetime.now(UTC)
    ca, ca_key = tls.make_ca(now, "school")
    leaf, _ = tls.make_server_cert(ca, ca_key, ["localhost"], [], now)
    _, other_key = tls.make_server_cert(ca, ca_key, ["localhost"], [], now)
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(tls._key_pem(other_key))
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tmp_path / "state", free_port(),
        tls={"mode": "files", "cert_file": "cert.pem", "key_file": "key.pem"}))
    with pytest.raises(ConfigError, match="not the private key"):
        server.up(cfg)
    assert not server.status(cfg).running
    assert not (cfg.state_dir / "slapd.d").exists()


def test_up_fails_when_clients_would_refuse_the_certificate(tmp_path: Path) -> None:
    """A certificate that is valid and matches its key but does not name the address in
    ldap.uri: `up` checks each listener as a client would, fails, and leaves nothing
    running."""
    now = datetime.now(UTC)
    ca, ca_key = tls.make_ca(now, "school")
    leaf, key = tls.make_server_cert(ca, ca_key, ["dir.school.sg"], [], now)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(tls._key_pem(key))
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tmp_path / "state", free_port(),
        tls={"mode": "files", "cert_file": "cert.pem", "key_file": "key.pem",
             "ca_file": "ca.pem", "require": True}))
    with pytest.raises(DirectoryUnavailable, match="not trusted for this host"):
        server.up(cfg)
    assert not server.status(cfg).running


def test_files_mode_end_to_end(tmp_path: Path) -> None:
    """The operator's own certificate (a school CA here), renewed in place by them and loaded
    with `tls renew`, no restart."""
    now = datetime.now(UTC)
    ca, ca_key = tls.make_ca(now, "school")
    ip = ipaddress.ip_address("127.0.0.1")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue() -> int:
        leaf, key = tls.make_server_cert(ca, ca_key, ["localhost"], [ip], now)
        (tmp_path / "key.pem").write_bytes(tls._key_pem(key))
        os.chmod(tmp_path / "key.pem", 0o600)
        (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        return leaf.serial_number

    first = issue()
    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "state", free_port(),
                            tls={"mode": "files", "cert_file": "cert.pem", "key_file": "key.pem",
                                 "ca_file": "ca.pem", "require": True})
    cfg = load_config(cfg_path)
    try:
        server.up(cfg)
        assert served_cert(cfg.ldap.uri, tmp_path / "ca.pem").serial_number == first
        pid = server.status(cfg).pid
        second = issue()
        res = CliRunner().invoke(main, ["--config", str(cfg_path), "directory", "tls", "renew"])
        assert res.exit_code == 0, res.output
        assert served_cert(cfg.ldap.uri, tmp_path / "ca.pem").serial_number == second
        assert server.status(cfg).pid == pid
        with service_conn(cfg, "sync") as c:
            assert c.encrypted
    finally:
        server.down(cfg)
