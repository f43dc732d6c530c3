"""Helpers for the OpenID Connect tests: register an application in the session's
directory, and play a relying party with nothing but HTTP and joserfc (no project code on
the client side); serve the real portal on a free port (its issuer that address) and sign in
at it with a real HTTP client, as a browser would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

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


class _Late:
    """A WSGI app made once its address is known (the portal's issuer is its own URL)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.app is None:  # serve_wsgi's "is it answering" probe, before the app exists
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return self.app(environ, start_response)


@contextlib.contextmanager
def served_portal(cfg: Any, **portal: Any) -> Iterator[tuple[str, Any]]:
    """The real portal (``create_app``, not in testing mode) served by waitress on a free port,
    with ``portal.public_url`` (the issuer) that address. Yields (url, flask app)."""
    from mimsdir.portal import create_app
    from tests.browser import serve_wsgi
    from tests.portal_helpers import portal_config

    late = _Late()
    with serve_wsgi(late, threads=8) as url:
        late.app = create_app(portal_config(cfg, public_url=url, **portal))
        yield url, late.app


def http_sign_in(web: Any, portal_url: str, authorization_url: str, redirect_uri: str,
                 login_id: str, password: str) -> str:
    """Follow an application's authorization URL through the portal's sign-in page with a
    ``requests.Session`` (cookies, the CSRF token, the Origin a browser sends), up to the
    redirect back to ``redirect_uri``; returns that URL (code, state, iss)."""
    r = web.get(authorization_url, allow_redirects=False, timeout=10)
    for _ in range(10):
        location = urljoin(r.url, r.headers.get("Location", ""))
        if r.status_code in (302, 303) and location.startswith(redirect_uri):
            return location
        if r.status_code in (302, 303):
            r = web.get(location, allow_redirects=False, timeout=10)
            continue
        assert r.status_code == 200 and "/login" in r.url, (r.status_code, r.url, r.text[:300])
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        nxt = re.search(r'name="next" value="([^"]*)"', r.text)
        assert token and nxt, r.text[:300]
        r = web.post(f"{portal_url}/login", allow_redirects=False, timeout=30,
                     headers={"Origin": portal_url},
                     data={"csrf_token": token.group(1), "login_id": login_id,
                           "password": password, "next": nxt.group(1).replace("&amp;", "&")})
        assert r.status_code == 302, r.text[:500]
    raise AssertionError(f"never sent back to {redirect_uri}: last {r.status_code} {r.url}")
