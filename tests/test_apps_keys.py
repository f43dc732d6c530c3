"""The identity provider's signing keys: first use, JWKS, rotation with a grace period
(clock frozen with time-machine), retirement, file modes, concurrent rotations, and the SAML
IdP's certificate."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from mimsdir.apps.keys import KeyStore, saml_credentials
from mimsdir.errors import ConfigError

PRIVATE_PARTS = {"d", "p", "q", "dp", "dq", "qi"}
ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def sign(jwk: dict, claims: dict | None = None) -> str:  # type: ignore[type-arg]
    key = RSAKey.import_key(jwk) if jwk["kty"] == "RSA" else ECKey.import_key(jwk)
    return jwt.encode({"alg": jwk["alg"], "kid": jwk["kid"]}, claims or {"sub": "s1"}, key)


def verifies(token: str, jwks: dict) -> bool:  # type: ignore[type-arg]
    try:
        jwt.decode(token, KeySet.import_key_set(jwks))
    except (JoseError, ValueError):
        return False
    return True


def test_first_use_makes_one_set_of_private_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "secrets" / "oidc-keys")
    assert store.keys() == []                      # listing makes nothing
    assert not store.directory.exists()
    rs = store.signing_key()
    es = store.signing_key("ES256")
    assert (rs["kty"], rs["alg"], rs["use"]) == ("RSA", "RS256", "sig")
    assert (es["kty"], es["crv"], es["alg"], es["use"]) == ("EC", "P-256", "ES256", "sig")
    assert RSAKey.import_key(rs).as_dict()["kid"] == rs["kid"]
    assert PRIVATE_PARTS & set(rs) and "d" in es
    key_bits = RSAKey.import_key(rs).private_key.key_size  # type: ignore[union-attr]
    assert key_bits == 3072
    assert store.signing_key() == rs                # the same key until a rotation
    assert KeyStore(store.directory).signing_key("ES256") == es   # another instance agrees
    infos = store.keys()
    assert [(k.kid, k.alg, k.state, k.retire_after) for k in infos] == [
        (rs["kid"], "RS256", "active", None), (es["kid"], "ES256", "active", None)]
    with pytest.raises(ValueError, match="alg"):
        store.signing_key("HS256")


def test_files_are_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "oidc-keys")
    store.signing_key()
    store.rotate()
    assert mode(store.directory) == 0o700
    assert sorted(p.name for p in store.directory.iterdir()) == [".lock", "keys.json"]
    for p in store.directory.iterdir():
        assert mode(p) == 0o600, p                 # no temp file left behind either
    os.chmod(store.directory, 0o755)  # noqa: S103 (loosened by someone: the next write fixes it)
    store.rotate()
    assert mode(store.directory) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_rotation_by_root_keeps_the_files_owner(tmp_path: Path) -> None:
    """The portal may run as its own user: root rotating must leave it a readable file."""
    store = KeyStore(tmp_path / "oidc-keys")
    store.signing_key()
    os.chown(store.path, 4242, 4243)
    store.rotate()
    assert (store.path.stat().st_uid, store.path.stat().st_gid) == (4242, 4243)


def test_jwks_publishes_public_parts_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "oidc-keys")
    jwks = store.public_jwks()                     # also made on first use
    assert len(jwks["keys"]) == 2
    for key in jwks["keys"]:
        assert not PRIVATE_PARTS & set(key), key
        assert key["use"] == "sig" and key["kid"] and key["alg"] in ("RS256", "ES256")
    assert json.dumps(jwks)                         # plain JSON for /jwks
    for alg in ("RS256", "ES256"):
        assert verifies(sign(store.signing_key(alg)), jwks)


def test_rotation_keeps_the_old_key_published_until_the_grace_ends(tmp_path: Path) -> None:
    t0 = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)
    grace = timedelta(hours=24)
    with time_machine.travel(t0, tick=False) as clock:
        store = KeyStore(tmp_path / "oidc-keys", grace=grace)
        old = store.signing_key()
        old_token = sign(old)
        clock.shift(timedelta(days=30))
        new_kids = store.rotate()
        rotated_at = t0 + timedelta(days=30)
        new = store.signing_key()
        assert new["kid"] in new_kids and new["kid"] != old["kid"] and len(new_kids) == 2
        jwks = store.public_jwks()
        assert {k["kid"] for k in jwks["keys"]} >= {old["kid"], new["kid"]}
        assert len(jwks["keys"]) == 4
        assert verifies(old_token, jwks) and verifies(sign(new), jwks)
        listed = store.keys()
        previous = {k.kid: k for k in listed if k.state == "previous"}
        assert old["kid"] in previous and len(previous) == 2
        assert previous[old["kid"]].retire_after == rotated_at + grace

        clock.shift(grace - timedelta(seconds=1))
        assert store.retire_expired() == []
        assert verifies(old_token, store.public_jwks())

        clock.shift(timedelta(seconds=1))
        # Out of the JWKS at once, by the clock, even before retire_expired runs ...
        assert len(store.public_jwks()["keys"]) == 2
        assert not verifies(old_token, store.public_jwks())
        # ... and deleted by it.
        assert sorted(store.retire_expired()) == sorted(previous)
        listed = store.keys()
        assert {k.state for k in listed} == {"active"}
        assert store.signing_key() == new
        assert "previous" not in (tmp_path / "oidc-keys" / "keys.json").read_text()


def test_rotate_explicit_now_and_grace(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "oidc-keys", grace=timedelta(hours=2))
    first = store.rotate(now=datetime(2031, 1, 1, tzinfo=UTC))      # the first set
    second = store.rotate(now=datetime(2031, 1, 2, tzinfo=UTC))
    assert set(first).isdisjoint(second)
    listed = store.keys()
    by_kid = {k.kid: k for k in listed}
    assert by_kid[first[0]].retire_after == datetime(2031, 1, 2, 2, tzinfo=UTC)
    assert by_kid[second[0]].created == datetime(2031, 1, 2, tzinfo=UTC)
    assert store.retire_expired(now=datetime(2031, 1, 2, 1, 59, tzinfo=UTC)) == []
    assert sorted(store.retire_expired(now=datetime(2031, 1, 2, 2, tzinfo=UTC))) == sorted(first)
    with pytest.raises(ValueError):
        KeyStore(tmp_path, grace=timedelta(hours=-1))


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from datetime import timedelta
    from mimsdir.apps.keys import KeyStore
    folder, go, action, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    store = KeyStore(folder, grace=timedelta(days=1))
    while not go.exists():
        time.sleep(0.001)
    for _ in range(n):
        if action == "rotate":
            store.rotate()
        else:
            print(store.signing_key()["kid"])
""")


def _race(tmp_path: Path, folder: Path, action: str, processes: int, n: int) -> list[str]:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(folder), str(go), action,
                               str(n)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(processes)]
    time.sleep(1.0)  # every worker imported and waiting
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [line for out in outs for line in out.split()]


def test_concurrent_rotations_all_take_effect(tmp_path: Path) -> None:
    """Two processes rotating at once: each rotation is a read-change-write under the lock,
    so none is lost (without the lock, one process's write replaces the other's)."""
    folder = tmp_path / "oidc-keys"
    KeyStore(folder).signing_key()
    _race(tmp_path, folder, "rotate", processes=2, n=3)
    keys = KeyStore(folder).keys()
    assert len({k.kid for k in keys}) == len(keys)
    assert sorted(k.state for k in keys).count("active") == 2
    assert len([k for k in keys if k.state == "previous"]) == 2 * 6


def test_concurrent_first_use_makes_one_set(tmp_path: Path) -> None:
    """Portal instances starting together agree on one first key set."""
    folder = tmp_path / "oidc-keys"
    kids = _race(tmp_path, folder, "sign", processes=3, n=1)
    assert len(kids) == 3 and len(set(kids)) == 1
    assert len(KeyStore(folder).keys()) == 2


def test_a_damaged_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "oidc-keys")
    store.signing_key()
    store.path.write_text('{"keys": [{"kid": "x"}]}')
    with pytest.raises(ConfigError, match=r"oidc-keys/keys.json: not a key file"):
        store.signing_key()


def test_saml_credentials_made_once_private_and_ten_years(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    secrets_dir = tmp_path / "secrets"
    key_path, cert_path = saml_credentials(secrets_dir)
    assert (key_path.name, cert_path.name) == ("key.pem", "cert.pem")
    assert mode(key_path.parent) == 0o700
    assert mode(key_path) == 0o600 and mode(cert_path) == 0o600
    key_pem, cert_pem = key_path.read_bytes(), cert_path.read_bytes()
    assert saml_credentials(secrets_dir) == (key_path, cert_path)
    assert (key_path.read_bytes(), cert_path.read_bytes()) == (key_pem, cert_pem)  # made once

    key = serialization.load_pem_private_key(key_pem, password=None)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert cert.issuer == cert.subject
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3649) < life < timedelta(days=3651)
    assert abs(cert.not_valid_before_utc - datetime.now(UTC)) < timedelta(minutes=10)
