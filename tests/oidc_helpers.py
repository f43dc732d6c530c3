"""Helpers for the OpenID Connect tests: register an application in the session's
directory, and play a relying party with nothing but HTTP and joserfc (no project code on
the client side)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

from mimsdir.apps.model import App, new_client_id
from mimsdir.apps.registry import Registry
from mimsdir.apps.secret import hash_secret, new_client_secret
from mimsdir.directory.slapdconf import Dns

REDIRECT = "https://learning.example.sg/callback"


@dataclass
class RP:
    """A relying party: its registration and what it keeps during one sign-in."""

    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def authorize_path(self, scope: str = "openid email profile mims offline_access",
                       **extra: str) -> str:
        """A new sign-in request: a fresh state and nonce each time, as a real RP makes."""
        self.state = secrets.token_urlsafe(12)
        self.nonce = secrets.token_urlsafe(12)
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": scope, "state": self.state,
                  "nonce": self.nonce, "code_challenge": self.challenge,
                  "code_challenge_method": "S256", **extra}
        return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v != ""})

    def token_form(self, code: str, **extra: str) -> dict[str, str]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, "code_verifier": self.verifier, **extra}
        if self.secret is None:
            form["client_id"] = self.client_id
        return form

    def auth_header(self) -> dict[str, str]:
        if self.secret is None:
            return {}
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def register(root: Any, cfg: Any, *, public: bool = False, **fields: Any) -> RP:
    client_id = new_client_id()
    secret = None if public else new_client_secret()
    app = App(client_id=client_id, name=fields.pop("name", "Learning Space"), protocol="oidc",
              redirect_uris=tuple(fields.pop("redirect_uris", (REDIRECT,))), public=public,
              secret_hash=hash_secret(secret) if secret else None, **fields)
    Registry(root, Dns(cfg.ldap.base_dn)).add(app)
    return RP(client_id, secret)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def verify(token: str, jwks: dict[str, Any], **expect: Any) -> dict[str, Any]:
    """Check a signed token as a relying party would: signature by a published key, RS256
    or ES256 only, and the expected claims."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks),  # type: ignore[arg-type]
                         algorithms=["RS256", "ES256"])
    claims = dict(decoded.claims)
    for key, value in expect.items():
        assert claims.get(key) == value, (key, claims.get(key), value)
    return claims
