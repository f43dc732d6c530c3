"""The demo learning space: a small OpenID Connect application (a relying party) that signs a
child in through the MIMS portal and shows what the portal told it.

It does what a school's application should, with Authlib's Flask client
(``authlib.integrations.flask_client``) and no code of the portal's:

- the authorization code flow with PKCE (S256), ``state`` and ``nonce``, made and checked by
  Authlib; the ID token is checked against the portal's published keys (signature, issuer,
  audience, nonce, expiry), and the callback's ``iss`` (RFC 9207) must be the portal's;
- its own sessions live on the server, keyed by a random value in its cookie, so that the
  portal's **back-channel logout** can end them: a session kept only in a cookie cannot be
  ended from outside the browser;
- "Sign out" ends its session and sends the browser to the portal's ``end_session_endpoint``
  with the ID token as hint and a registered post-logout address (RP-initiated logout): the
  portal signs the child out of itself and of every other application.

Demo only: one process, sessions in memory (a restart signs everyone out of it), a cookie key
made at start.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, redirect, render_template, request, session, url_for
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

SCOPES = "openid email profile mims offline_access"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {issuer}; "
       "frame-ancestors 'none'; base-uri 'none'")


@dataclass
class Settings:
    """Who the learning space is. ``client_id`` may be filled in after the app is made (the
    tests register it once they know the port it is served on); nothing reads it earlier
    than the first sign-in."""

    issuer: str                  # the portal's portal.public_url
    base_url: str                # where this app is reached, e.g. http://127.0.0.1:8081
    client_id: str = ""
    client_secret: str | None = None
    title: str = "Learning space"
    cookie_name: str = "learning_space"

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def post_logout_uri(self) -> str:
        return f"{self.base_url}/signed-out"

    @property
    def backchannel_uri(self) -> str:
        return f"{self.base_url}/backchannel-logout"


@dataclass
class LocalSession:
    sub: str
    sid: str | None
    claims: dict[str, Any]
    id_token: str
    tokens: dict[str, Any]
    started: float = field(default_factory=time.time)


class LocalSessions:
    """This app's sessions, by a random key that its cookie carries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, LocalSession] = {}
        self._seen_logout_ids: set[str] = set()

    def start(self, s: LocalSession) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._by_key[key] = s
        return key

    def get(self, key: object) -> LocalSession | None:
        if not isinstance(key, str):
            return None
        with self._lock:
            return self._by_key.get(key)

    def end(self, key: object) -> None:
        if isinstance(key, str):
            with self._lock:
                self._by_key.pop(key, None)

    def end_matching(self, sub: str | None, sid: str | None) -> int:
        """Back-channel logout: the sessions of that portal session (``sid``), else of that
        person (``sub``)."""
        with self._lock:
            gone = [k for k, s in self._by_key.items()
                    if (sid and s.sid == sid) or (not sid and sub and s.sub == sub)]
            for k in gone:
                del self._by_key[k]
        return len(gone)

    def first_use(self, jti: str) -> bool:
        """A logout token is accepted once (its ``jti``)."""
        with self._lock:
            if jti in self._seen_logout_ids:
                return False
            self._seen_logout_ids.add(jti)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_NAME=settings.cookie_name, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(app)
    local = LocalSessions()
    app.extensions["learning_space"] = local
    lock = threading.Lock()

    def portal() -> Any:
        """Authlib's client for the portal, made at first use (from discovery)."""
        with lock:
            if "portal" not in oauth._registry:
                oauth.register(
                    "portal", client_id=settings.client_id,
                    client_secret=settings.client_secret,
                    server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
                    client_kwargs={"scope": SCOPES, "code_challenge_method": "S256",
                                   "timeout": 10},
                )
            return oauth.create_client("portal")

    def current() -> LocalSession | None:
        return local.get(session.get("ls"))

    def page(template: str, status: int = 200, **kw: Any) -> tuple[str, int]:
        return render_template(template, title=settings.title, **kw), status

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP.format(issuer=settings.issuer)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def home():  # type: ignore[no-untyped-def]
        s = current()
        if s is None:
            ended = session.pop("ended", None)
            if "ls" in session:  # ours, but ended elsewhere (the portal's back-channel call)
                session.pop("ls")
                ended = "elsewhere"
            return page("signed_out.html", ended=ended)
        return page("home.html", who=who_line(s.claims),
                    claims=[(k, shown(k, v)) for k, v in sorted(s.claims.items())],
                    signed_in_at=time.strftime("%H:%M:%S", time.localtime(s.started)))

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        session.pop("ls", None)
        # Authlib makes the PKCE verifier, state and nonce and keeps them in this app's
        # cookie until the callback.
        return portal().authorize_redirect(settings.redirect_uri)

    @app.get("/callback")
    def callback():  # type: ignore[no-untyped-def]
        if request.args.get("iss") not in (None, settings.issuer):
            return page("problem.html", 400, problem="The answer came from another server.")
        client = portal()
        try:
            token = client.authorize_access_token()  # state, PKCE, ID token + nonce
            info = client.userinfo(token=token)
        except OAuthError as exc:
            # access_denied (not for this child), login_required, ... shown, not hidden.
            return page("problem.html", 400, problem=f"The portal said: {exc.error}",
                        detail=exc.description)
        id_claims = dict(token["userinfo"])
        claims = {k: v for k, v in id_claims.items()
                  if k not in ("at_hash", "c_hash", "nonce")}
        claims.update(dict(info))
        key = local.start(LocalSession(sub=str(id_claims["sub"]), sid=id_claims.get("sid"),
                                       claims=claims, id_token=token["id_token"],
                                       tokens=dict(token)))
        session["ls"] = key
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        s = current()
        local.end(session.pop("ls", None))
        if s is None:
            return redirect(url_for("home"))
        # The portal ends its session and every application's (RP-initiated logout).
        return portal().logout_redirect(post_logout_redirect_uri=settings.post_logout_uri,
                                        id_token_hint=s.id_token)

    @app.get("/signed-out")
    def signed_out():  # type: ignore[no-untyped-def]
        # The state we sent comes back; signed out here either way (nothing is trusted
        # from the address).
        with contextlib.suppress(OAuthError):
            portal().validate_logout_response()
        session["ended"] = "here"
        return redirect(url_for("home"))

    @app.post("/backchannel-logout")
    def backchannel_logout():  # type: ignore[no-untyped-def]
        """OpenID Connect Back-Channel Logout 1.0 §2.6: a logout token signed by the portal,
        for this app, with the logout event, sub or sid, no nonce; used once."""
        claims = check_logout_token(portal(), settings, request.form.get("logout_token", ""))
        if claims is None or not local.first_use(str(claims["jti"])):
            return Response('{"error":"invalid_request"}', 400,
                            content_type="application/json")
        local.end_matching(claims.get("sub"), claims.get("sid"))
        return Response("", 200)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return Response("ok\n", content_type="text/plain")

    @app.errorhandler(404)
    def not_found(_e: Exception):  # type: ignore[no-untyped-def]
        return page("problem.html", 404, problem="There is no such page here.")

    return app


def who_line(claims: dict[str, Any]) -> str:
    """``Wei Ling Tan (P2, 2A)`` for a student; ``Jason Lim (teacher)`` for staff."""
    name = str(claims.get("name") or claims.get("email") or claims.get("sub"))
    detail = [str(claims[k]) for k in ("level", "class") if claims.get(k)]
    if not claims.get("level") and claims.get("role"):
        detail = [str(claims["role"])]
    return f"{name} ({', '.join(detail)})" if detail else name


def shown(name: str, value: Any) -> str:
    """A claim as JSON would write it; times also as a clock time."""
    if name in ("iat", "exp", "auth_time") and isinstance(value, int):
        return f"{value} ({time.strftime('%H:%M:%S', time.localtime(value))})"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def check_logout_token(client: Any, settings: Settings, token: str) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        keys = KeySet.import_key_set(client.fetch_jwk_set())
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        except InvalidKeyIdError:  # a rotated key: fetch the published keys again
            keys = KeySet.import_key_set(client.fetch_jwk_set(force=True))
            decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        claims = dict(decoded.claims)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.client_id},
            iat={"essential": True}, exp={"essential": True}, jti={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError, TypeError, OSError):
        return None
    typ = str(decoded.header.get("typ", "logout+jwt")).lower()
    events = claims.get("events")
    if (typ != "logout+jwt" or "nonce" in claims or not isinstance(events, dict)
            or not isinstance(events.get(LOGOUT_EVENT), dict)
            or not (claims.get("sub") or claims.get("sid"))):
        return None
    return claims
