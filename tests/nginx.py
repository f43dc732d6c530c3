"""nginx in front of the portal, as docs/deploy.md sets it up, for tests: a test CA and a
server certificate made here (cryptography), the project's own site template
(scripts/nginx/mims-portal.conf.in, rendered by scripts/nginx/render.sh), and Debian's nginx run
in the foreground with its own prefix, config, pid and logs in a temp dir, on free loopback
ports. The system's nginx (its config, port 80, its service) is never touched.

    with tls_ca(tmp) as ca, run_nginx(tmp, ca, upstream="127.0.0.1:8080") as proxy:
        proxy.https   # https://127.0.0.1:PORT
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "scripts" / "nginx" / "mims-portal.conf.in"
RENDER = REPO / "scripts" / "nginx" / "render.sh"

# The test's own main config: what /etc/nginx/nginx.conf is in production, with every path
# in the temp dir. The site file is included exactly as production includes it.
MAIN_CONF = """\
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/mims-portal.conf;
}}
"""


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path        # what a client trusts
    chain_pem: Path     # the server's certificate, then the CA's: nginx's ssl_certificate
    key_pem: Path
    spki_sha256: str    # base64 SHA-256 of the CA's public key: chromium's trust by key


def make_ca(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A throwaway CA and a server certificate for ``hosts`` (IP addresses and names), EC
    P-256 (fast handshakes: the slow-client test opens 120). Valid 2000-2099, so a test passes
    on any date, with or without a shifted clock."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start, end = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mimsdir test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem, chain_pem, key_pem = (directory / "ca.pem", directory / "server-chain.pem",
                                  directory / "server.key")
    ca_pem.write_bytes(ca_cert.public_bytes(pem))
    chain_pem.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_pem.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key_pem.chmod(0o600)
    spki = ca_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return TlsFiles(ca_pem, chain_pem, key_pem, base64.b64encode(digest.finalize()).decode())


def render_site(out: Path, *, server_name: str, cert: Path, key: Path, upstream: str,
                https_listen: str, http_listen: str) -> Path:
    """scripts/nginx/render.sh, exactly as docs/deploy.md runs it."""
    res = subprocess.run(["bash", str(RENDER), server_name, str(cert), str(key), upstream,
                          https_listen, http_listen], capture_output=True, text=True,
                         check=True)
    assert "@" not in "".join(ln.split("#")[0] for ln in res.stdout.splitlines()), \
        "a placeholder was left unrendered"
    out.write_text(res.stdout, encoding="utf-8")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Proxy:
    https: str          # https://127.0.0.1:PORT
    http: str           # http://127.0.0.1:PORT (redirects to https)
    ca: TlsFiles
    directory: Path

    @property
    def port(self) -> int:
        return int(self.https.rsplit(":", 1)[1])

    def error_log(self) -> str:
        log = self.directory / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""


def require_nginx() -> None:
    if not Path(NGINX).exists():
        message = f"{NGINX} is missing: apt-get install nginx (scripts/bootstrap.sh)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def run_nginx(directory: Path, ca: TlsFiles, upstream: str,
              startup_timeout: float = 10.0) -> Iterator[Proxy]:
    """Debian's nginx in the foreground (``daemon off``) with the project's site in front of
    ``upstream``; stopped (SIGQUIT, then SIGKILL) on exit. Yields once it accepts TLS."""
    require_nginx()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    https_port, http_port = free_port(), free_port()
    render_site(directory / "mims-portal.conf", server_name="127.0.0.1 localhost",
                cert=ca.chain_pem, key=ca.key_pem, upstream=upstream,
                https_listen=f"127.0.0.1:{https_port}", http_listen=f"127.0.0.1:{http_port}")
    # As root, workers would otherwise run as nobody, who cannot enter pytest's 0700 temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(MAIN_CONF.format(d=directory, user=user), encoding="utf-8")
    cmd = [NGINX, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    check = subprocess.run([*cmd, "-t", "-q"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proxy = Proxy(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", ca,
                  directory)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start:\n{proxy.error_log()}") from None
                time.sleep(0.05)
        yield proxy
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
