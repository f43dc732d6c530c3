"""The OpenID Connect provider: Authlib's authorization server, built once per app, with
only what the schools use registered: the authorization code grant (PKCE S256 required for
every client), refresh tokens (rotated; a reused one revokes its whole family), userinfo,
revocation, introspection and the RFC 9207 ``iss`` parameter. No implicit, hybrid,
password or client-credentials grant exists here to be misused.

The storage is a handful of callbacks on the directory (``store.py``); every grant re-reads
the person, so a child disabled at noon cannot refresh at 12:05.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import rfc6749, rfc6750, rfc7009, rfc7636, rfc7662
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oidc import core as oidc_core
from flask import Flask, current_app, g

from mimsdir.apps.keys import KeyStore, store_for
from mimsdir.apps.model import App
from mimsdir.apps.registry import Registry
from mimsdir.config import Config
from mimsdir.portal.oidc import claims as claims_
from mimsdir.portal.oidc.store import Grant, GrantStore, grant_key
from mimsdir.portal.oidc.tokens import ACCESS_TYPE, Signer

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
ID_TOKEN_SECONDS = 300


# -- what Authlib calls models -----------------------------------------------------------------

class Client(rfc6749.ClientMixin):
    """A registered OpenID Connect application, as Authlib sees it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.client_id = app.client_id
        # Registration metadata Authlib consults (signed userinfo, ...): none of it is
        # offered, so userinfo is plain JSON.
        self.client_metadata: dict[str, Any] = {}

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only when there is no doubt: a client with several must say which.
        uris = self.app.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(self.app.scopes)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris  # exact match, nothing looser

    def check_client_secret(self, client_secret: str) -> bool:
        return self.app.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.app.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return "offline_access" in self.app.scopes
        return grant_type == "authorization_code"


class User:
    """The person behind a grant, read fresh from the directory."""

    def __init__(self, person: claims_.Person) -> None:
        self.person = person

    def get_user_id(self) -> str:
        return self.person.uuid


class Code(oidc_core.AuthorizationCodeMixin):
    def __init__(self, grant: Grant) -> None:
        self.grant = grant
        self.data = grant.data

    def get_redirect_uri(self) -> str:
        return str(self.data.get("redirect_uri") or "")

    def get_scope(self) -> str:
        return str(self.data.get("scope") or "")

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int | None:
        value = self.data.get("auth_time")
        return int(value) if isinstance(value, int | float) else None

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return ["pwd"]


class RefreshToken(rfc6749.TokenMixin):
    def __init__(self, grant: Grant) -> None:
        self.grant = grant
        self.data = grant.data

    def check_client(self, client: Client) -> bool:
        return bool(self.data.get("client") == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.data.get("scope") or "")

    def get_expires_in(self) -> int:
        return max(0, int((self.grant.expires - datetime.now(UTC)).total_seconds()))

    def is_expired(self) -> bool:
        return datetime.now(UTC) >= self.grant.expires

    def is_revoked(self) -> bool:
        return bool(self.data.get("used"))

    def get_user(self) -> None:
        return None

    def get_client(self) -> None:
        return None


class AccessToken(rfc6749.TokenMixin):
    """A JWT access token that came back, with its checked claims."""

    def __init__(self, claims: dict[str, Any], client: Client, user: User) -> None:
        self.claims, self.client, self.user = claims, client, user
        self.scope = str(claims.get("scope") or "")

    def check_client(self, client: Client) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.claims["exp"]) - int(time.time()))

    def is_expired(self) -> bool:
        return int(self.claims["exp"]) <= int(time.time())

    def is_revoked(self) -> bool:
        return False  # a revoked one is never found (``Provider.access_token``)

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Client:
        return self.client


# -- the provider --------------------------------------------------------------------------------

class Provider:
    """Everything the OIDC views need, over the request's directory connection."""

    def __init__(self, cfg: Config, keys: KeyStore, pairwise_key: bytes) -> None:
        self.cfg = cfg
        self.issuer = cfg.portal.public_url.rstrip("/")
        self.keys = keys
        self.signer = Signer(keys, self.issuer)
        self.pairwise_key = pairwise_key

    # request-scoped helpers (the directory connection lives on flask.g)
    def _directory(self) -> Any:
        from mimsdir.portal.views.common import directory

        return directory()

    def store(self) -> GrantStore:
        d = self._directory()
        return GrantStore(d.svc, d.dns.sessions)

    def registry(self) -> Registry:
        d = self._directory()
        return Registry(d.svc, d.dns)

    def client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        app = self.registry().get(client_id)
        return Client(app) if app is not None and app.protocol == "oidc" else None

    def person(self, dn: str) -> claims_.Person | None:
        """The person, fresh; None when gone or no longer active."""
        p = self._directory().person(dn)
        return p if p is not None and p.active else None

    def sub(self, person: claims_.Person, client: Client) -> str:
        return claims_.subject(person.uuid, client.get_client_id(), client.app.pairwise,
                               self.pairwise_key)

    def now(self) -> datetime:
        return datetime.now(UTC)

    # -- access tokens coming back ---------------------------------------------------------
    def access_token(self, token: str) -> AccessToken | None:
        """A token we issued, whose grant family still exists, for a person still active."""
        data = self.signer.verify(token, typ=ACCESS_TYPE)
        if data is None:
            return None
        client = self.client(str(data.get("client_id") or ""))
        family = self.store().get(str(data.get("fam") or ""))
        if client is None or family is None or family.data.get("client") != client.client_id:
            return None
        person = self.person(family.subject)
        if person is None:
            return None
        return AccessToken(data, client, User(person))


def provider() -> Provider:
    return current_app.extensions["mims_oidc"]  # type: ignore[no-any-return]


# -- grants ----------------------------------------------------------------------------------------

class AuthorizationCodeGrant(rfc6749.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        p = provider()
        session = g.get("oidc_session") or {}
        person: claims_.Person = request.user.person
        client: Client = request.client
        expires = p.now() + timedelta(seconds=p.cfg.oidc.code_seconds)
        key = grant_key("code", code)
        nonce = request.payload.data.get("nonce")
        links = [f"code:{key}"]
        if nonce:
            links.append(f"nonce:{client.client_id}:{nonce}")
        if session.get("sid"):
            links.append(f"sid:{session['sid']}")
        p.store().add(Grant(key, person.dn, expires, {
            "kind": "code", "client": client.client_id,
            "redirect_uri": request.payload.redirect_uri,
            "scope": client.get_allowed_scope(request.payload.scope),
            "nonce": nonce, "sid": session.get("sid"), "auth_time": session.get("auth_at"),
            "challenge": request.payload.data.get("code_challenge"),
            "challenge_method": request.payload.data.get("code_challenge_method"),
            "used": False,
        }, tuple(links)))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        p = provider()
        st = p.store()
        key = grant_key("code", code)
        grant = st.get(key)
        if grant is None or grant.data.get("client") != client.client_id:
            return None
        if grant.data.get("used"):
            # A code used twice: refuse, and revoke what the first use was given
            # (RFC 6749 §4.1.2).
            st.revoke_linked(f"code:{key}")
            return None
        if GrantStore.expired(grant, p.now()):
            return None
        # Claim it now: of two exchanges of one code at the same moment, one wins.
        if not st.claim(grant, used=True):
            st.revoke_linked(f"code:{key}")
            return None
        return Code(grant)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Kept (marked used) until it expires, so a second use is recognised."""

    def authenticate_user(self, authorization_code: Code) -> User | None:
        person = provider().person(authorization_code.grant.subject)
        if person is None:
            return None
        g.oidc_grant = {"family": family_key(),
                        "code": authorization_code.grant.key,
                        "sid": authorization_code.data.get("sid"),
                        "auth_time": authorization_code.data.get("auth_time")}
        return User(person)


class RefreshTokenGrant(rfc6749.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        p = provider()
        st = p.store()
        grant = st.get(grant_key("rt", refresh_token))
        if grant is None:
            return None
        family = str(grant.data.get("family") or "")
        if grant.data.get("used"):
            # Reuse of a rotated refresh token: whoever holds the family now is suspect.
            st.revoke_linked(f"family:{family}")
            st.delete(family)
            return None
        if GrantStore.expired(grant, p.now()) or st.get(family) is None:
            return None
        if not st.claim(grant, used=True):
            st.revoke_linked(f"family:{family}")
            st.delete(family)
            return None
        return RefreshToken(grant)

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        person = provider().person(refresh_token.grant.subject)
        if person is None:
            return None
        data = refresh_token.data
        g.oidc_grant = {"family": data.get("family"), "code": None, "sid": data.get("sid"),
                        "auth_time": data.get("auth_time")}
        return User(person)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Already marked used when it was accepted (``authenticate_refresh_token``)."""


class CodeChallenge(rfc7636.CodeChallenge):
    """PKCE for every client, confidential ones too, and S256 only. (Authlib's own
    ``required=True`` lets a request without any challenge through, and asks public
    clients only for the verifier.)"""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]  # never "plain"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise rfc6749.InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise rfc6749.InvalidRequestError("PKCE is required with "
                                              "'code_challenge_method=S256'")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise rfc6749.InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str | None:
        return authorization_code.data.get("challenge")

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str | None:
        return authorization_code.data.get("challenge_method")


class OpenIDCode(oidc_core.OpenIDCode):
    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return bool(provider().store().linked(f"nonce:{request.payload.client_id}:{nonce}"))

    def resolve_client_private_key(self, client: Client) -> Any:
        return provider().signer.private_key(client.app.id_token_alg)[1]  # imported once

    def get_client_algorithm(self, client: Client) -> str:
        return client.app.id_token_alg

    def get_encode_header(self, client: Client) -> dict[str, str]:
        alg = client.app.id_token_alg
        return {"alg": alg, "kid": provider().signer.private_key(alg)[0], "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        out: dict[str, Any] = {"iss": provider().issuer, "aud": client.get_client_id(),
                               "iat": now, "exp": now + ID_TOKEN_SECONDS}
        current = g.get("oidc_grant") or {}
        if current.get("sid"):
            out["sid"] = current["sid"]
        return out

    def process_token(self, grant: Any, response: Any) -> Any:
        g.oidc_client = grant.request.client
        return super().process_token(grant, response)

    def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
        client: Client = g.oidc_client
        p = provider()
        return claims_.claims(user.person, scope.split(), p.sub(user.person, client),
                              _locale())


def _locale() -> str | None:
    from mimsdir.portal import sessions

    lang = sessions.get("lang")
    return str(lang) if lang else None


# -- endpoints ---------------------------------------------------------------------------------

class UserInfoEndpoint(oidc_core.UserInfoEndpoint):
    def get_issuer(self) -> str:
        return provider().issuer

    def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
        token: AccessToken = g.oidc_token
        p = provider()
        return claims_.claims(user.person, scope.split(), p.sub(user.person, token.client),
                              None)

    def resolve_private_key(self) -> Any:
        return provider().signer.private_key("RS256")[1]


class BearerTokenValidator(rfc6750.BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = provider().access_token(token_string)
        g.oidc_token = token
        return token


def _find_token(token_string: str, hint: str | None) -> RefreshToken | AccessToken | None:
    p = provider()
    if hint != "refresh_token":
        access = p.access_token(token_string)
        if access is not None:
            return access
    grant = p.store().get(grant_key("rt", token_string))
    if grant is not None and not grant.data.get("used") \
            and not GrantStore.expired(grant, p.now()):
        return RefreshToken(grant)
    return None


class RevocationEndpoint(rfc7009.RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(token_string, token_type_hint)

    def revoke_token(self, token: RefreshToken | AccessToken, request: Any) -> None:
        """Either kind ends the whole grant (RFC 7009 §2.1 allows it): the refresh tokens
        and, at their next use, the access tokens of the family."""
        family = (token.data.get("family") if isinstance(token, RefreshToken)
                  else token.claims.get("fam"))
        if family:
            st = provider().store()
            st.revoke_linked(f"family:{family}")
            st.delete(str(family))


class IntrospectionEndpoint(rfc7662.IntrospectionEndpoint):
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Client, request: Any) -> bool:
        # Resource servers are registered confidential clients; a public one may not ask.
        return not client.app.public

    def introspect_token(self, token: RefreshToken | AccessToken) -> dict[str, Any]:
        p = provider()
        if isinstance(token, AccessToken):
            c = token.claims
            return {"active": True, "client_id": c["client_id"], "token_type": "Bearer",
                    "scope": c.get("scope"), "sub": c["sub"], "aud": c.get("aud"),
                    "iss": p.issuer, "exp": c["exp"], "iat": c.get("iat")}
        person = p.person(token.grant.subject)
        client = p.client(str(token.data.get("client")))
        if person is None or client is None:
            return {"active": False}
        return {"active": True, "client_id": client.client_id, "token_type": "refresh_token",
                "scope": token.get_scope(), "sub": p.sub(person, client), "iss": p.issuer,
                "exp": int(token.grant.expires.timestamp())}


def _save_token(token: dict[str, Any], request: Any) -> None:
    """After a code or refresh grant: the family (what access tokens are checked against)
    and the new refresh token, linked so either can be revoked with the other."""
    p = provider()
    st = p.store()
    current = g.get("oidc_grant") or {}
    family = str(current.get("family") or "")
    client: Client = request.client
    person: claims_.Person = request.user.person
    refresh_days = timedelta(days=p.cfg.oidc.refresh_token_days)
    links = [f"family:{family}"]
    if current.get("code"):
        links.append(f"code:{current['code']}")
    if current.get("sid"):
        links.append(f"sid:{current['sid']}")
    if st.get(family) is None:
        st.add(Grant(family, person.dn, p.now() + refresh_days, {
            "kind": "family", "client": client.client_id, "sid": current.get("sid")},
            tuple(links)))
    refresh = token.get("refresh_token")
    if refresh:
        st.add(Grant(grant_key("rt", refresh), person.dn, p.now() + refresh_days, {
            "kind": "refresh", "client": client.client_id, "scope": token.get("scope"),
            "family": family, "sid": current.get("sid"),
            "auth_time": current.get("auth_time"), "used": False}, tuple(links)))


def _access_token(client: Client, grant_type: str, user: User, scope: str) -> str:
    p = provider()
    current = g.get("oidc_grant") or {}
    return p.signer.access_token(
        client_id=client.get_client_id(), sub=p.sub(user.person, client), scope=scope,
        family=str(current.get("family") or family_key()),
        sid=current.get("sid"), auth_time=current.get("auth_time"),
        lifetime=p.cfg.oidc.access_token_minutes * 60)


def init(app: Flask, cfg: Config) -> None:
    keys = store_for(cfg)
    app.extensions["mims_oidc"] = Provider(cfg, keys, _pairwise_key(cfg))
    server = AuthorizationServer()
    server.init_app(app, query_client=lambda cid: provider().client(cid),
                    save_token=_save_token)
    server.register_token_generator("default", rfc6750.BearerTokenGenerator(
        access_token_generator=_access_token,
        refresh_token_generator=lambda **_: secrets.token_urlsafe(48),
        expires_generator=lambda client, grant_type: cfg.oidc.access_token_minutes * 60))
    server.register_grant(AuthorizationCodeGrant,
                          [CodeChallenge(required=True), OpenIDCode(require_nonce=False)])
    server.register_grant(RefreshTokenGrant)
    protector = ResourceProtector()
    protector.register_token_validator(BearerTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    # RFC 9207's iss is added by the authorize view itself: Authlib 1.9's IssuerParameter
    # registers a hook its authorization server never calls.
    app.extensions["mims_oauth_server"] = server
    from mimsdir.portal.oidc.logout import notify_applications

    app.extensions.setdefault("mims_sign_out", []).append(
        lambda dn, here: notify_applications(dn))


def _pairwise_key(cfg: Config) -> bytes:
    """The key of pairwise subjects: made once, never changed (a new one would give every
    application new identities for everyone)."""
    import os
    from pathlib import Path

    path = Path(cfg.secrets_dir) / "oidc-pairwise.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip().encode()


def family_key() -> str:
    return "fam-" + secrets.token_urlsafe(16)


__all__ = ["Client", "InvalidGrantError", "Provider", "init", "provider"]
