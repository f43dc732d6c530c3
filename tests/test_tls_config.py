"""ldap.tls without a running slapd: the configuration, what clients verify with, the rendered
cn=config (slapd's TLS settings, tls.require, replication's TLS), and the certificates that
`directory up` makes or is given (mimsdir/directory/tls.py)."""

from __future__ import annotations

import dataclasses
import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from mimsdir.config import Config, TlsConfig, load_config
from mimsdir.connect import client_tls
from mimsdir.directory import tls
from mimsdir.directory.slapdconf import render_config
from mimsdir.errors import ConfigError
from mimsdir.ldapio import TlsClient


@pytest.mark.parametrize(("text", "mode"), [
    ("ldap:\n  tls: generate\n", "generate"),
    ("ldap:\n  tls: off\n", "off"),
    ("ldap:\n  tls: {mode: off}\n", "off"),
    ("ldap:\n  tls: {mode: files, ca_file: ca.pem}\n", "files"),
    ("ldap: {uri: 'ldap://h:389'}\n", "off"),
])
def test_tls_modes_and_the_short_form(tmp_path: Path, text: str, mode: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    assert load_config(tmp_path / "config.yaml").ldap.tls.mode == mode


@pytest.mark.parametrize(("text", "message"), [
    ("ldap:\n  tls: sometimes\n", "ldap.tls.mode: one of off, generate, files"),
    ("ldap:\n  tls: {mode: generate, cert_file: c.pem}\n", "ldap.tls.cert_file: only with"),
    ("ldap:\n  tls: {mode: files, cert_file: c.pem}\n", "cert_file and key_file go together"),
    ("ldap:\n  tls: {require: true}\n", "ldap.tls.require: needs TLS"),
    ("ldap:\n  tls: {mode: generate, require: true, starttls: false}\n",
     "ldap.tls.starttls: must be on with require"),
    ("ldap:\n  tls: {mode: generate, ldaps_uri: 'ldap://h:636'}\n", "not an ldaps:// URL"),
    ("ldap:\n  tls: {ldaps_uri: 'ldaps://h:636'}\n", "ldap.tls.ldaps_uri: needs TLS"),
    ("ldap:\n  tls: {mode: generate, names: ['a b']}\n", "ldap.tls.names: not a host name"),
    ("ldap:\n  tls: {mode: generate, require: yes please}\n", "expected true or false"),
    ("ldap:\n  tls: {mode: generate, verify: false}\n", "ldap.tls.verify: unknown key"),
])
def test_tls_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "config.yaml")


def test_what_clients_verify_with(tmp_path: Path) -> None:
    def cfg(**tls_cfg: object) -> Config:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(
            {"ldap": {"tls": tls_cfg}, "directory": {"state_dir": "st"}}))
        return load_config(tmp_path / "config.yaml")

    assert client_tls(cfg(mode="off")) is None  # clear text, as before this issue
    generated = client_tls(cfg(mode="generate"))
    assert generated == TlsClient(ca_file=str(tmp_path / "st" / "tls" / "ca.crt"),
                                  starttls=True)
    # A school's or public CA: the system's trusted CAs, unless ca_file names one.
    assert client_tls(cfg(mode="files")) == TlsClient(ca_file=None, starttls=True)
    assert client_tls(cfg(mode="files", ca_file="moe.pem")) == TlsClient(
        ca_file=str(tmp_path / "moe.pem"), starttls=True)
    # A host that runs no slapd, only clients of a remote one that requires TLS.
    assert client_tls(cfg(mode="off", starttls=True)) == TlsClient(ca_file=None,
                                                                    starttls=True)


def _render(tmp_path: Path, **tls_cfg: object) -> str:
    data = {"ldap": {"uri": "ldap://dir1.moe.internal:389", "tls": tls_cfg},
            "directory": {"state_dir": str(tmp_path / "st"),
                          "replication": {"server_id": 1, "peers": [
                              "ldap://dir2.moe.internal:389", "ldaps://dir3.moe.internal:636"]}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    return render_config(load_config(tmp_path / "config.yaml"), "replicator-secret")


def test_rendered_cn_config_carries_tls_and_require(tmp_path: Path) -> None:
    text = _render(tmp_path, mode="generate", require=True)
    st = tmp_path / "st" / "tls"
    for line in (f"olcTLSCACertificateFile: {st}/ca.crt",
                 f"olcTLSCertificateFile: {st}/server.crt",
                 f"olcTLSCertificateKeyFile: {st}/server.key",
                 "olcTLSCipherSuite: NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                 "olcSecurity: ssf=128", "olcLocalSSF: 128"):
        assert f"\n{line}\n" in text, line
    rid1, rid2 = [ln for ln in text.splitlines() if ln.startswith("olcSyncrepl:")]
    # StartTLS that must succeed, the peer's certificate checked against our CA.
    assert "provider=ldap://dir2.moe.internal:389" in rid1
    assert (f' starttls=critical tls_cacert="{st}/ca.crt" tls_reqcert=demand '
            f'tls_cipher_suite="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"') in rid1
    assert "starttls" not in rid2 and "tls_reqcert=demand" in rid2

    offered = _render(tmp_path, mode="generate")
    assert "\nolcTLSCertificateFile:" in offered and "\nolcSecurity:" not in offered
    off = _render(tmp_path, mode="off")
    assert "\nolcTLS" not in off and "\nolcSecurity:" not in off and "starttls" not in off
    files = _render(tmp_path, mode="files", cert_file="/etc/ssl/dir.pem",
                    key_file="/etc/ssl/private/dir.key")
    assert "\nolcTLSCACertificateFile:" not in files  # public CA: the system's bundle
    assert 'tls_cacert="/etc/ssl/certs/ca-certificates.crt"' in files


def test_certificate_names(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"ldap": {
        "uri": "ldap://0.0.0.0:389",
        "tls": {"mode": "generate", "ldaps_uri": "ldaps://dir1.school.sg:636",
                "names": ["dir.moe.internal", "10.0.0.5"]}}}))
    cfg = load_config(tmp_path / "config.yaml")
    dns, ips = tls.wanted_names(cfg, hostname="server7", fqdn="server7.school.sg")
    assert dns == ["dir1.school.sg", "server7.school.sg", "server7", "dir.moe.internal",
                   "localhost"]
    assert [str(ip) for ip in ips] == ["10.0.0.5", "127.0.0.1", "::1"]  # no 0.0.0.0


def test_generated_certificates_pass_a_strict_verifier(tmp_path: Path) -> None:
    """What `up` makes: a CA that may sign only end certificates, and a server certificate
    that a strict client (the CA/Browser profile of cryptography's verifier) accepts for
    each name, keys 0600 in a 0700 folder. Issued again: same CA, new key and serial."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "ldap": {"uri": "ldap://dir1.school.sg:389", "tls": "generate"},
        "directory": {"state_dir": str(tmp_path / "st")}}))
    cfg = load_config(tmp_path / "config.yaml")
    first = tls.prepare(cfg)
    assert first is not None
    d = cfg.tls_dir
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name, mode in (("ca.key", 0o600), ("server.key", 0o600), ("ca.crt", 0o644),
                       ("server.crt", 0o644)):
        assert stat.S_IMODE((d / name).stat().st_mode) == mode, name
    ca = tls.load_certs(d / "ca.crt")[0]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    leaf = tls.load_certs(d / "server.crt")[0]
    store = verification.Store([ca])
    for name in (x509.DNSName("dir1.school.sg"), x509.DNSName("localhost"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        verifier = verification.PolicyBuilder().store(store).build_server_verifier(name)
        verifier.verify(leaf, [])
    assert 800 <= first.days_left() <= tls.SERVER_DAYS
    # Nothing to do the second time.
    assert tls.prepare(cfg) == first
    again = tls.issue_server_cert(cfg)
    assert again.serial != first.serial and again.issuer == first.issuer
    assert (d / "ca.crt").read_bytes() == ca.public_bytes(serialization.Encoding.PEM)


def test_up_reissues_a_certificate_close_to_its_end_or_missing_a_name(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "ldap": {"uri": "ldap://dir1.school.sg:389", "tls": "generate"},
        "directory": {"state_dir": str(tmp_path / "st")}}))
    cfg = load_config(tmp_path / "config.yaml")
    first = tls.prepare(cfg)
    assert first is not None
    # 20 days before its end it is issued again.
    late = datetime.now(UTC) + timedelta(days=tls.SERVER_DAYS - 20)
    assert not tls._server_cert_ok(cfg, late)
    assert tls._server_cert_ok(cfg, datetime.now(UTC))
    # A new name in the config (a new listener) is a new certificate too.
    moved = dataclasses.replace(cfg, ldap=dataclasses.replace(
        cfg.ldap, uri="ldap://dir9.school.sg:389"))
    renewed = tls.prepare(moved)
    assert renewed is not None and renewed.serial != first.serial
    assert "dir9.school.sg" in renewed.dns_names


def test_a_lost_ca_key_is_not_replaced_silently(tmp_path: Path) -> None:
    """A new CA would mean giving every device its certificate again: `up` never makes one
    over a CA certificate whose key is missing (a half-restored backup), it says so."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "ldap": {"tls": "generate"}, "directory": {"state_dir": str(tmp_path / "st")}}))
    cfg = load_config(tmp_path / "config.yaml")
    tls.prepare(cfg)
    ca_before = (cfg.tls_dir / "ca.crt").read_bytes()
    (cfg.tls_dir / "ca.key").unlink()
    with pytest.raises(ConfigError, match=r"ca\.crt and ca\.key go together"):
        tls.prepare(cfg)
    assert (cfg.tls_dir / "ca.crt").read_bytes() == ca_before


def test_files_are_checked_before_slapd_gets_them(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca, ca_key = tls.make_ca(now, "school")
    leaf, key = tls.make_server_cert(ca, ca_key, ["dir.school.sg"], [], now)
    _, stranger_key = tls.make_server_cert(ca, ca_key, ["dir.school.sg"], [], now)
    foreign_ca, foreign_key = tls.make_ca(now, "elsewhere")
    foreign_leaf, foreign_leaf_key = tls.make_server_cert(foreign_ca, foreign_key,
                                                          ["dir.school.sg"], [], now)

    def pem(path: str, obj: object) -> Path:
        p = tmp_path / path
        if isinstance(obj, x509.Certificate):
            p.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        else:
            p.write_bytes(tls._key_pem(obj))  # type: ignore[arg-type]
        return p

    ca_p, cert_p, key_p = pem("ca.pem", ca), pem("cert.pem", leaf), pem("key.pem", key)
    assert tls.check_pair(cert_p, key_p, ca_p).dns_names == ("dir.school.sg",)
    with pytest.raises(ConfigError, match="not the private key"):
        tls.check_pair(cert_p, pem("other.key", stranger_key), ca_p)
    with pytest.raises(ConfigError, match="not valid now"):
        tls.check_pair(cert_p, key_p, ca_p, now=now + timedelta(days=tls.SERVER_DAYS + 1))
    with pytest.raises(ConfigError, match="not issued by the CA"):
        tls.check_pair(pem("foreign.pem", foreign_leaf), pem("foreign.key", foreign_leaf_key),
                       ca_p)
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        tls.check_pair(key_p, key_p, ca_p)
    # Never the key's content in an error.
    (tmp_path / "garbage.key").write_text("not-a-key-SECRET-1234")
    with pytest.raises(ConfigError) as err:
        tls.check_pair(cert_p, tmp_path / "garbage.key", ca_p)
    assert "SECRET" not in str(err.value)


def test_tls_config_defaults_keep_existing_configs_working() -> None:
    assert TlsConfig().mode == "off" and not TlsConfig().client_starttls


def test_a_host_with_clients_only_has_no_server_certificate(tmp_path: Path) -> None:
    """mode: files with only ca_file (the portal's host, say): nothing to serve, nothing to
    show but the CA; `directory up` there would say what is missing."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "ldap": {"uri": "ldaps://dir1.school.sg:636",
                 "tls": {"mode": "files", "ca_file": "ca.pem"}}}))
    cfg = load_config(tmp_path / "config.yaml")
    assert tls.current_server_cert(cfg) is None
    with pytest.raises(ConfigError, match="cert_file"):
        tls.prepare(cfg)
