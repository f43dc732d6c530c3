"""Signed tokens: JWT access tokens (RFC 9068), ID tokens and back-channel logout tokens, and
checking the access tokens that come back (userinfo, introspection).

Why JWT access tokens: a resource server can check one with the JWKS alone; the portal
checks more (the grant family still exists, the person is still active) on every use, so a
revoked or disabled child's token stops working within one request, not after it expires.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, import_key

from mimsdir.apps.keys import KeyStore

ACCESS_TYPE = "at+jwt"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Signer:
    """Signs with the active key of the store; verifies with every published one."""

    def __init__(self, keys: KeyStore, issuer: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self._imported: dict[str, Key] = {}

    def _published(self) -> KeySet:
        return KeySet.import_key_set(self.keys.public_jwks())  # type: ignore[arg-type]

    def private_key(self, alg: str = "RS256") -> tuple[str, Key]:
        """The active signing key (its kid, the key), imported once per key id: importing an
        RSA private key checks it (about 0.1 s of CPU for RSA 3072, 70 signatures' worth),
        so importing it for every token made each one cost that
        (benchmarks/oidc_speed.py). A rotation brings a new kid, imported at first use."""
        jwk = self.keys.signing_key(alg)
        kid = str(jwk["kid"])
        key = self._imported.get(kid)
        if key is None:
            key = import_key(jwk)
            if len(self._imported) >= 8:  # old rotations' keys: never used again
                self._imported = {}
            self._imported[kid] = key
        return kid, key

    def sign(self, claims: Mapping[str, Any], typ: str = "JWT", alg: str = "RS256") -> str:
        kid, key = self.private_key(alg)
        header = {"alg": alg, "kid": kid, "typ": typ}
        return jwt.encode(header, dict(claims), key, algorithms=[alg])

    def verify(self, token: str, typ: str | None = None) -> dict[str, Any] | None:
        """The claims of a token we signed (signature, issuer, expiry, type), else None. A
        token with ``alg: none`` or an algorithm we do not sign with is never accepted."""
        try:
            decoded = jwt.decode(token, self._published(), algorithms=["RS256", "ES256"])
        except (JoseError, ValueError, TypeError):
            return None
        if typ is not None and str(decoded.header.get("typ", "")).lower() != typ:
            return None
        claims = dict(decoded.claims)
        try:
            jwt.JWTClaimsRegistry(exp={"essential": True},
                                  iss={"essential": True, "value": self.issuer}
                                  ).validate(claims)
        except JoseError:
            return None
        return claims

    def verify_expired_ok(self, token: str) -> dict[str, Any] | None:
        """An ID token hint: ours (signature, issuer), however old (OpenID Connect RP-Initiated
        Logout 1.0 §2: an expired one is still a valid hint)."""
        try:
            decoded = jwt.decode(token, self._published(), algorithms=["RS256", "ES256"])
        except (JoseError, ValueError, TypeError):
            return None
        claims = dict(decoded.claims)
        return claims if claims.get("iss") == self.issuer else None

    def access_token(self, *, client_id: str, sub: str, scope: str, family: str,
                     sid: str | None, auth_time: int | None, lifetime: int) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": sub, "aud": client_id, "client_id": client_id,
            "scope": scope, "iat": now, "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16), "fam": family,
        }
        if sid:
            claims["sid"] = sid
        if auth_time:
            claims["auth_time"] = auth_time
        return self.sign(claims, typ=ACCESS_TYPE)

    def logout_token(self, *, client_id: str, sub: str, sid: str | None) -> str:
        """OpenID Connect Back-Channel Logout 1.0 §2.4: no nonce, the event, sub and sid."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": client_id, "iat": now, "exp": now + 120,
            "jti": secrets.token_urlsafe(16), "sub": sub,
            "events": {LOGOUT_EVENT: {}},
        }
        if sid:
            claims["sid"] = sid
        return self.sign(claims, typ="logout+jwt")
