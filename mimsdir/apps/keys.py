"""The identity provider's signing keys: the OIDC provider's JWKs and the SAML IdP's
certificate, kept as files in ``<secrets_dir>`` (folders 0700, files 0600).

Every portal instance must see the same keys (a token signed by one is checked against the
JWKS another publishes): all instances share the secrets dir (docs/deploy.md).

OIDC keys (``<secrets_dir>/oidc-keys/keys.json``): one *set* is an RS256 key (RSA 3072) and
an ES256 key (P-256), made together. The ``active`` set signs. ``rotate`` makes a new active
set and turns the old one ``previous``: still published in the JWKS until its
``retire_after`` (now + grace), so tokens it signed still verify and relying parties that
cached the JWKS find its keys; ``retire_expired`` then deletes it.

Why RSA 3072 rather than 2048: 128-bit strength, the same as the P-256 key beside it, and
past 2030 (NIST SP 800-57's end for 2048-bit RSA) whether or not anyone rotates; a signature
costs under a millisecond more, once per token.

Writes are atomic (a temp file, fsync, rename): a reader sees the old file or the new one,
never half of one. Changes are made under an exclusive ``flock`` on a lock file, reading the
file again inside the lock, so two processes (or threads) rotating at once both take effect,
one after the other, and two portals starting at once make one first set, not two.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

from mimsdir.config import Config
from mimsdir.errors import ConfigError

__all__ = ["ALGS", "RSA_BITS", "KeyInfo", "KeyStore", "saml_credentials", "store_for"]

ALGS = ("RS256", "ES256")
RSA_BITS = 3072
KEYS_FILE = "keys.json"
LOCK_FILE = ".lock"
ACTIVE = "active"
PREVIOUS = "previous"
#: The SAML IdP's self-signed certificate lives this long (replacing it means telling every SP).
SAML_CERT_DAYS = 3650


@dataclass(frozen=True)
class KeyInfo:
    """One key as ``keys list`` shows it: never its private parts."""

    kid: str
    alg: str
    state: str                      # "active" | "previous"
    created: datetime
    retire_after: datetime | None   # previous keys: leaves the JWKS then


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _private_dir(path: Path) -> None:
    """Create ``path`` (0700) if needed and make sure nobody else can list it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.mkdir(exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) so that a reader sees the old content or the new,
    never a part: a temp file beside it, fsync, rename, fsync of the folder. The new file
    keeps the old one's owner when we may give it (root rotating the keys of a portal that
    runs as its own user must not leave it a file it cannot read)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            with contextlib.suppress(FileNotFoundError, PermissionError):
                old = path.stat()
                os.fchown(fh.fileno(), old.st_uid, old.st_gid)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/.lock`` for one change (processes and threads alike:
    each holder opens the file itself)."""
    _private_dir(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _new_set(created: datetime) -> list[dict[str, Any]]:
    """A fresh active RS256 + ES256 pair; kids are RFC 7638 thumbprints (unique, stable)."""
    rsa = RSAKey.generate_key(RSA_BITS, parameters={"alg": "RS256", "use": "sig"},
                              auto_kid=True)
    ec = ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
    return [{"kid": key.kid, "alg": alg, "state": ACTIVE, "created": _iso(created),
             "retire_after": None, "jwk": key.as_dict(private=True)}
            for alg, key in (("RS256", rsa), ("ES256", ec))]


#: A JWK's public members (RFC 7518 §6.3.1 RSA, §6.2.1 EC) and the parameters kept with them.
_PUBLIC_MEMBERS = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y")}
_PARAMETERS = ("kid", "alg", "use")


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    """The public JWK: the public members copied, the private ones never. Not by importing
    the key: importing an RSA private key checks it, about 0.1 s of CPU, and this runs for
    every token the portal verifies and every JWKS it serves (benchmarks/oidc_speed.py)."""
    return {k: jwk[k] for k in _PUBLIC_MEMBERS[jwk["kty"]] + _PARAMETERS if k in jwk}


class KeyStore:
    """The OIDC signing keys in ``directory`` (``<secrets_dir>/oidc-keys``)."""

    def __init__(self, directory: Path, grace: timedelta = timedelta(hours=24)) -> None:
        if grace < timedelta(0):
            raise ValueError("the grace period cannot be negative")
        self.directory = Path(directory)
        self.grace = grace
        self._cache: tuple[tuple[int, int, int], list[dict[str, Any]]] | None = None

    @property
    def path(self) -> Path:
        return self.directory / KEYS_FILE

    # -- reading -----------------------------------------------------------------------------
    def _read(self, fresh: bool = False) -> list[dict[str, Any]]:
        """The stored keys (none if there is no file yet). Parsed again only when the file was
        replaced (another process rotated), so a token costs no JSON parsing; ``fresh``
        (under the lock, before a change): always parsed, and a copy the caller may change."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cache = self._cache
        if not fresh and cache is not None and cache[0] == stamp:
            return cache[1]
        try:
            data = json.loads(self.path.read_bytes())
            records = list(data["keys"])
            for r in records:
                if r["alg"] not in ALGS or r["state"] not in (ACTIVE, PREVIOUS) \
                        or not isinstance(r["jwk"], dict):
                    raise ValueError(r.get("kid"))
                datetime.fromisoformat(r["created"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: not a key file of mimsdir ({type(exc).__name__}); "
                              f"restore it from the backup of the secrets dir") from None
        if not fresh:
            self._cache = (stamp, records)
        return records

    def _write(self, records: list[dict[str, Any]]) -> None:
        body = json.dumps({"version": 1, "keys": records}, indent=1).encode()
        _atomic_write(self.path, body)

    def _ensure(self) -> list[dict[str, Any]]:
        """The keys, with an active set made first if there is none (first use)."""
        records = self._read()
        if {r["alg"] for r in records if r["state"] == ACTIVE} >= set(ALGS):
            return records
        with _locked(self.directory):
            records = self._read(fresh=True)  # another process may have made them meanwhile
            if not {r["alg"] for r in records if r["state"] == ACTIVE} >= set(ALGS):
                records = [r for r in records if r["state"] != ACTIVE] + _new_set(_now())
                self._write(records)
        return self._read()

    def signing_key(self, alg: str = "RS256") -> dict[str, Any]:
        """The active private JWK for ``alg`` (RS256 or ES256), with ``kid``, ``alg`` and
        ``use``; the first set is made on first use."""
        if alg not in ALGS:
            raise ValueError(f"alg: one of {', '.join(ALGS)}, not {alg!r}")
        for r in self._ensure():
            if r["state"] == ACTIVE and r["alg"] == alg:
                return dict(r["jwk"])
        raise AssertionError("no active key after _ensure")  # pragma: no cover

    def public_jwks(self) -> dict[str, Any]:
        """``{"keys": [...]}``: the public parts of the active keys and of the previous ones
        whose grace has not ended (by the clock, even before ``retire_expired`` runs)."""
        now = _now()
        records = self._ensure()
        shown = [r for r in records if r["state"] == ACTIVE] + sorted(
            (r for r in records if r["state"] == PREVIOUS
             and datetime.fromisoformat(r["retire_after"]) > now),
            key=lambda r: r["created"], reverse=True)
        return {"keys": [_public(r["jwk"]) for r in shown]}

    def keys(self) -> list[KeyInfo]:
        """Every stored key, active first, without private parts (nothing is generated)."""
        out = [KeyInfo(kid=r["kid"], alg=r["alg"], state=r["state"],
                       created=datetime.fromisoformat(r["created"]),
                       retire_after=datetime.fromisoformat(r["retire_after"])
                       if r.get("retire_after") else None)
               for r in self._read()]
        return sorted(out, key=lambda k: (k.state != ACTIVE, -k.created.timestamp(),
                                          ALGS.index(k.alg)))

    # -- changing ----------------------------------------------------------------------------
    def rotate(self, now: datetime | None = None) -> list[str]:
        """Make a new active set; the old active keys become previous until now + grace.
        Returns the new kids (RS256, ES256)."""
        now = now or _now()
        with _locked(self.directory):
            records = self._read(fresh=True)
            for r in records:
                if r["state"] == ACTIVE:
                    r["state"] = PREVIOUS
                    r["retire_after"] = _iso(now + self.grace)
            new = _new_set(now)
            self._write(records + new)
        return [r["kid"] for r in new]

    def retire_expired(self, now: datetime | None = None) -> list[str]:
        """Delete the previous keys whose grace has ended; returns their kids."""
        now = now or _now()
        with _locked(self.directory):
            records = self._read(fresh=True)
            gone = [r for r in records if r["state"] == PREVIOUS
                    and datetime.fromisoformat(r["retire_after"]) <= now]
            if gone:
                self._write([r for r in records if r not in gone])
        return [r["kid"] for r in gone]


def store_for(cfg: Config) -> KeyStore:
    """The key store as the config places it: ``<secrets_dir>/oidc-keys``, with
    ``oidc.key_grace_hours`` of grace (the CLI and the portal build it the same way)."""
    return KeyStore(cfg.secrets_dir / "oidc-keys", grace=timedelta(hours=cfg.oidc.key_grace_hours))


def saml_credentials(secrets_dir: Path) -> tuple[Path, Path]:
    """``(key.pem, cert.pem)`` of the SAML IdP in ``<secrets_dir>/saml-idp/``: an RSA 3072 key
    and a self-signed certificate valid for 10 years, made once (under the lock, so two
    instances starting together make one pair). SPs pin this certificate from the IdP's
    metadata: it is not rotated automatically."""
    folder = Path(secrets_dir) / "saml-idp"
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    with _locked(folder):
        if not (key_path.exists() and cert_path.exists()):
            key_pem, cert_pem = _self_signed(_now())
            _atomic_write(key_path, key_pem)
            _atomic_write(cert_path, cert_pem)
    return key_path, cert_path


def _self_signed(now: datetime) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mimsdir SAML IdP")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SAML_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
