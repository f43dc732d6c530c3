"""Client secrets of registered OpenID Connect applications: made here, shown once, stored
only as an argon2id hash (``mimsAppSecret``).

Why a slow hash for a random 256-bit secret: the hash is readable by the portal's account and
by ICT admins, and travels with replication and backups; stored as argon2id, a copy of the
directory is not a set of working client credentials. Parameters are OWASP's argon2id floor,
as for challenge answers (mimsdir.challenge): a token request costs one verification.

Pure functions on plain values: no LDAP, no files, no logging; nothing here puts a secret in
an error message or a repr.
"""

from __future__ import annotations

import contextlib
import secrets
import threading

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from mimsdir.challenge import MIN_MEMORY_KIB, MIN_PARALLELISM, MIN_TIME_COST

__all__ = ["hash_secret", "new_client_secret", "verify_secret"]

_HASHER = argon2.PasswordHasher(time_cost=MIN_TIME_COST, memory_cost=MIN_MEMORY_KIB,
                                parallelism=MIN_PARALLELISM, hash_len=32, salt_len=16,
                                type=argon2.Type.ID)
# A stored hash with parameters above these is treated as malformed rather than computed: an
# edited entry must not make the portal allocate gigabytes or spin for minutes.
_MAX_MEMORY_KIB = 1024 * 1024
_MAX_TIME_COST = 64
_MAX_PARALLELISM = 64

_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def new_client_secret() -> str:
    """32 random bytes, URL-safe base64 (43 characters): what the application's operator
    pastes into its configuration."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The argon2id encoded hash (``$argon2id$v=19$m=19456,t=2,p=1$...``) of ``secret``,
    compared byte for byte later (no normalising: a secret is not typed by a child)."""
    if not isinstance(secret, str) or not secret:
        raise ValueError("a client secret cannot be empty")
    return _HASHER.hash(secret)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        with _dummy_lock:
            if _dummy_hash is None:
                _dummy_hash = _HASHER.hash(secrets.token_urlsafe(32))
    return _dummy_hash


def _usable(secret_hash: object) -> bool:
    if not isinstance(secret_hash, str) or not secret_hash.startswith("$argon2id$"):
        return False
    try:
        p = argon2.extract_parameters(secret_hash)
    except (InvalidHashError, ValueError, TypeError, IndexError):
        return False
    return (p.memory_cost <= _MAX_MEMORY_KIB and p.time_cost <= _MAX_TIME_COST
            and p.parallelism <= _MAX_PARALLELISM)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """True if ``secret`` is the one ``secret_hash`` was made from.

    The same argon2 work is done whether the secret is right or wrong, and whether there is a
    usable hash at all (a public client, a malformed value: a dummy hash is checked instead),
    so the time of the answer says nothing about which it was. Never raises.
    """
    if not isinstance(secret, str):
        secret = ""
    if not _usable(secret_hash):
        with contextlib.suppress(VerificationError, InvalidHashError, ValueError, TypeError):
            _HASHER.verify(_dummy(), secret)
        return False
    try:
        return _HASHER.verify(secret_hash, secret)  # type: ignore[arg-type]
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False
