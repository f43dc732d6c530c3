"""slapd's TLS certificate: made by the project (``ldap.tls.mode: generate``) or the operator's
files (``files``); checked before slapd is given it, renewed without a restart.

``generate`` keeps a private CA and slapd's certificate in ``<state_dir>/tls/`` (keys 0600):

- ``ca.crt``, ``ca.key``: the CA, made once (ten years). Devices and clients trust ``ca.crt``
  (`mimsdir directory tls show`); a renewal never changes it, so no client has to change.
- ``server.crt``, ``server.key``: slapd's certificate, issued by that CA for every name
  clients use (the hosts of ``ldap.uri`` and ``ldap.tls.ldaps_uri``, loopback, this machine's
  names, ``ldap.tls.names``). `directory up` issues it when it is missing, does not match its
  key, lacks a wanted name or has fewer than RENEW_BEFORE_DAYS left.

The certificates' paths are part of the rendered cn=config (slapdconf.render_config), so
every rebuild keeps them. A renewal replaces the files and then tells the running slapd to
load them again: any change to its ``olcTLS*`` settings makes slapd 2.5 build a new TLS
context (``config_tls_cleanup``), used by every connection accepted afterwards; open
connections, and the process, carry on.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import ldap
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mimsdir.config import Config
from mimsdir.errors import ConfigError, DirectoryError

#: The project's CA lives this long; devices are given it once.
CA_DAYS = 3650
#: slapd's generated certificate: at most 825 days, the longest Apple's devices accept for a
#: TLS server certificate (iPads are school devices too).
SERVER_DAYS = 825
#: `directory up` re-issues slapd's generated certificate when fewer days than this are left.
RENEW_BEFORE_DAYS = 30
#: What replication falls back to when no CA file is configured (files mode, public CA):
#: Debian's bundle of the system's trusted CAs (package ca-certificates).
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ServerFiles:
    """What slapd is given (olcTLSCACertificateFile, olcTLSCertificateFile, ...KeyFile)."""

    ca: Path | None
    cert: Path
    key: Path


@dataclass(frozen=True)
class CertInfo:
    """A certificate as an operator reads it; never any key material."""

    subject: str
    issuer: str
    serial: int
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    sha256: str

    def days_left(self, now: datetime | None = None) -> int:
        return (self.not_after - (now or datetime.now(UTC))).days


def server_files(cfg: Config) -> ServerFiles | None:
    """The files slapd's cn=config names, from the configuration alone (None: TLS off)."""
    tls = cfg.ldap.tls
    if tls.mode == "generate":
        d = cfg.tls_dir
        return ServerFiles(d / "ca.crt", d / "server.crt", d / "server.key")
    if tls.mode == "files":
        if not tls.cert_file or not tls.key_file:
            raise ConfigError("ldap.tls.cert_file: slapd needs cert_file and key_file to serve "
                              "TLS (mode: files)")
        return ServerFiles(cfg.tls_ca_file, cfg.path(tls.cert_file).resolve(),
                           cfg.path(tls.key_file).resolve())
    return None


def listen_hosts(cfg: Config) -> list[str]:
    """The hosts of the URIs slapd listens on (what clients put in their URIs)."""
    hosts = []
    for uri in (cfg.ldap.listen_uri, cfg.ldap.tls.ldaps_uri):
        if uri and not uri.startswith("ldapi://"):
            host = urlsplit(uri).hostname
            if host:
                hosts.append(host)
    return hosts


def wanted_names(cfg: Config, hostname: str | None = None,
                 fqdn: str | None = None) -> tuple[list[str], list[IpAddress]]:
    """(DNS names, IP addresses) that the generated certificate must carry: every name a
    client may use for this slapd. Wildcard listen addresses (0.0.0.0, ::) are no names."""
    hostname = hostname if hostname is not None else socket.gethostname()
    fqdn = fqdn if fqdn is not None else socket.getfqdn()
    # The first DNS name becomes the certificate's common name (shown by browsers and
    # tools; clients match the subjectAltName).
    candidates = [*listen_hosts(cfg), fqdn, hostname, *cfg.ldap.tls.names, "localhost",
                  "127.0.0.1", "::1"]
    dns: list[str] = []
    ips: list[IpAddress] = []
    for name in candidates:
        name = name.strip().strip("[]").rstrip(".")
        if not name:
            continue
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name.lower() not in (n.lower() for n in dns):
                dns.append(name.lower())
            continue
        if not ip.is_unspecified and ip not in ips:
            ips.append(ip)
    return dns, ips


# -- reading ---------------------------------------------------------------------------------
def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def load_certs(path: Path, what: str = "certificate") -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(_read(path, what))
    except ValueError:
        raise ConfigError(f"{path}: not a PEM {what}") from None
    return certs


def load_key(path: Path) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(_read(path, "private key"), password=None)
    except (ValueError, TypeError):
        # Never echo the file: it is a key.
        raise ConfigError(f"{path}: not an unencrypted PEM private key (slapd cannot read "
                          f"a key with a passphrase)") from None


def info(cert: x509.Certificate) -> CertInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return CertInfo(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                    serial=cert.serial_number, not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc, dns_names=dns, ip_addresses=ips,
                    sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper())


def current_server_cert(cfg: Config) -> CertInfo | None:
    """slapd's certificate as it is on disk now (None: TLS off, a host with clients only, or
    no file yet)."""
    tls = cfg.ldap.tls
    if tls.mode == "files" and not tls.cert_file:
        return None
    files = server_files(cfg)
    if files is None or not files.cert.exists():
        return None
    return info(load_certs(files.cert)[0])


def ca_pem(cfg: Config) -> str:
    """The CA certificate(s) that devices and clients must trust, as PEM."""
    ca = cfg.tls_ca_file
    tls = cfg.ldap.tls
    if ca is None:
        why = ("ldap.tls.mode is off" if not tls.on else
               "ldap.tls.ca_file is not set: clients trust the system's CAs")
        raise ConfigError(f"ldap.tls: no CA to show ({why})")
    if not ca.exists() and tls.mode == "generate":
        raise ConfigError(f"{ca}: not made yet; `mimsdir directory up` makes it")
    certs = load_certs(ca, "CA certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _same_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    pub = getattr(key, "public_key", None)
    if pub is None:
        return False
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(cert.public_key().public_bytes(*fmt) == pub().public_bytes(*fmt))


def _chains_to(chain: list[x509.Certificate], cas: list[x509.Certificate]) -> bool:
    """Does the leaf (chain[0]) lead, through the rest of ``chain``, to one of ``cas``?"""
    cert = chain[0]
    pool = chain[1:]
    for _ in range(len(pool) + 1):
        for ca in cas:
            try:
                cert.verify_directly_issued_by(ca)
                return True
            except (ValueError, TypeError, InvalidSignature):
                continue
        for mid in pool:
            try:
                cert.verify_directly_issued_by(mid)
            except (ValueError, TypeError, InvalidSignature):
                continue
            cert = mid
            pool = [p for p in pool if p is not mid]
            break
        else:
            return False
    return False


def check_pair(cert_path: Path, key_path: Path, ca_path: Path | None,
               now: datetime | None = None) -> CertInfo:
    """Refuse what would make slapd serve no TLS at all: an unreadable or unparsable file, a
    key that is not the certificate's, a certificate not valid now, or one that does not
    chain to the CA clients are told to trust. slapd drops its old TLS context before it
    reads the new files, so they are checked first."""
    chain = load_certs(cert_path)
    key = load_key(key_path)
    leaf = chain[0]
    if not _same_key(leaf, key):
        raise ConfigError(f"{key_path}: not the private key of {cert_path}")
    now = now or datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ConfigError(f"{cert_path}: not valid now (valid {leaf.not_valid_before_utc:%F} "
                          f"to {leaf.not_valid_after_utc:%F})")
    if ca_path is not None and not _chains_to(chain, load_certs(ca_path, "CA certificate")):
        raise ConfigError(f"{cert_path}: not issued by the CA in {ca_path} (clients would "
                          f"refuse it)")
    return info(leaf)


# -- making ----------------------------------------------------------------------------------
def _write(path: Path, data: bytes, mode: int) -> None:
    """Write beside, then rename: a reader (slapd starting) sees the old file or the new."""
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(now: datetime, hostname: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA for this directory only: ECDSA P-256, ten years, may sign server certificates
    and nothing below them (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mimsdir"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"mimsdir directory CA {hostname} {now:%Y-%m-%d}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_server_cert(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                     dns_names: list[str], ips: list[IpAddress], now: datetime,
                     days: int = SERVER_DAYS
                     ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """slapd's certificate, issued by ``ca`` for these names (a new key every time)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cn = dns_names[0] if dns_names else str(ips[0])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ip) for ip in ips]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mimsdir"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(days=days), ca.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _ensure_ca(cfg: Config, now: datetime) -> tuple[x509.Certificate,
                                                    ec.EllipticCurvePrivateKey]:
    d = cfg.tls_dir
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ca_crt, ca_key = d / "ca.crt", d / "ca.key"
    if ca_crt.exists() != ca_key.exists():
        raise ConfigError(f"{d}: ca.crt and ca.key go together (one is missing); restore the "
                          f"other, or delete both to make a new CA that every device must "
                          f"be given again")
    if not ca_crt.exists():
        cert, key = make_ca(now, socket.gethostname())
        # The key first: a CA certificate on disk always has its key.
        _write(ca_key, _key_pem(key), 0o600)
        _write(ca_crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cert, key
    cert = load_certs(ca_crt, "CA certificate")[0]
    loaded = load_key(ca_key)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not _same_key(cert, loaded):
        raise ConfigError(f"{ca_key}: not the key of {ca_crt}")
    return cert, loaded


def _server_cert_ok(cfg: Config, now: datetime) -> bool:
    d = cfg.tls_dir
    crt, key = d / "server.crt", d / "server.key"
    if not crt.exists() or not key.exists():
        return False
    try:
        got = check_pair(crt, key, d / "ca.crt", now)
    except ConfigError:
        return False
    if got.days_left(now) < RENEW_BEFORE_DAYS:
        return False
    dns, ips = wanted_names(cfg)
    have_dns = {n.lower() for n in got.dns_names}
    have_ips = {ipaddress.ip_address(a) for a in got.ip_addresses}
    return {n.lower() for n in dns} <= have_dns and set(ips) <= have_ips


def issue_server_cert(cfg: Config, now: datetime | None = None) -> CertInfo:
    """Issue slapd's certificate anew from the project's CA (made first if absent)."""
    now = now or datetime.now(UTC)
    ca, ca_key = _ensure_ca(cfg, now)
    dns, ips = wanted_names(cfg)
    cert, key = make_server_cert(ca, ca_key, dns, ips, now)
    d = cfg.tls_dir
    # Key, then certificate: in between, `up` would see a mismatched pair and issue again.
    _write(d / "server.key", _key_pem(key), 0o600)
    _write(d / "server.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return info(cert)


def prepare(cfg: Config) -> CertInfo | None:
    """Before slapd starts (`directory up`): make what ``generate`` needs, or check the
    operator's files, so that slapd is never started with TLS that cannot work."""
    tls = cfg.ldap.tls
    if not tls.on:
        if cfg.ldap.listen_uri.startswith("ldaps://"):
            raise ConfigError("ldap.tls.mode: slapd needs a certificate to listen on ldaps:// "
                              "(mode: generate or files)")
        return None
    if tls.mode == "generate":
        now = datetime.now(UTC)
        _ensure_ca(cfg, now)
        if not _server_cert_ok(cfg, now):
            return issue_server_cert(cfg, now)
        return current_server_cert(cfg)
    files = server_files(cfg)
    assert files is not None
    return check_pair(files.cert, files.key, files.ca)


# -- applying to a running slapd -------------------------------------------------------------
def tls_settings(files: ServerFiles) -> dict[str, str]:
    """slapd's TLS settings on cn=config (also rendered into the config template)."""
    out = {}
    if files.ca is not None:
        out["olcTLSCACertificateFile"] = str(files.ca)
    out["olcTLSCertificateFile"] = str(files.cert)
    out["olcTLSCertificateKeyFile"] = str(files.key)
    return out


def reload(cfg: Config) -> None:
    """Make the running slapd read its certificate files again, without a restart: the same
    values written to cn=config make slapd build a new TLS context for new connections."""
    from mimsdir.connect import root_conn

    files = server_files(cfg)
    if files is None:
        raise ConfigError("ldap.tls.mode is off: nothing to reload")
    mods = [(ldap.MOD_REPLACE, k, [v.encode()]) for k, v in tls_settings(files).items()]
    with root_conn(cfg) as c:
        try:
            c.modify("cn=config", mods, "loading the new certificate into slapd")
        except DirectoryError as exc:
            raise DirectoryError(
                f"{exc}. slapd serves no TLS until it can: fix the files and run "
                f"`mimsdir directory tls renew` again, or restart the directory") from None


def renew(cfg: Config) -> CertInfo:
    """`mimsdir directory tls renew`: a new certificate for slapd (generate: issued from the
    same CA, so no client needs a change; files: the operator's replaced files, checked),
    loaded by the running slapd at once. The next `directory up` renders the same paths."""
    tls = cfg.ldap.tls
    if not tls.on:
        raise ConfigError("ldap.tls.mode is off: there is no certificate to renew")
    if tls.mode == "generate":
        got = issue_server_cert(cfg)
    else:
        files = server_files(cfg)
        assert files is not None
        got = check_pair(files.cert, files.key, files.ca)
    from mimsdir.directory.server import status

    if status(cfg).running:
        reload(cfg)
    return got
