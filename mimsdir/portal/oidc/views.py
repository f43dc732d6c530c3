"""The OpenID Connect endpoints: discovery, JWKS, authorize, token, userinfo, revocation,
introspection and RP-initiated logout.

The authorize endpoint is where an application's child meets every rule of the portal
first: no code is issued for someone who is not signed in (or signed in too long ago for
``max_age``, or asked to sign in again with ``prompt=login``), who must first change a
reset password or set their own questions, who is not active, or whom the application is not
for. Those go to the portal's own pages and come back here after; ``prompt=none`` gets the
error instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import InteractionRequiredError, LoginRequiredError
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from mimsdir.portal import events, gates, sessions
from mimsdir.portal.gates import Outcome
from mimsdir.portal.oidc import claims as claims_
from mimsdir.portal.oidc.provider import Client, User, provider
from mimsdir.portal.views.common import end_sessions, leave_signed_out, sign_out_detour, who

bp = Blueprint("oidc", __name__)

# Called by applications' servers, not browsers: no session, no CSRF token, no client budget.
MACHINE_ENDPOINTS = frozenset({"oidc.token", "oidc.userinfo", "oidc.revoke",
                               "oidc.introspect", "oidc.discovery", "oidc.jwks"})


def server() -> Any:
    return current_app.extensions["mims_oauth_server"]


@bp.get("/.well-known/openid-configuration")
def discovery():  # type: ignore[no-untyped-def]
    iss = provider().issuer
    return jsonify({
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/oauth/userinfo",
        "jwks_uri": f"{iss}/oauth/jwks",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "end_session_endpoint": f"{iss}/oauth/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                  "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "mims", "offline_access"],
        "claims_supported": [*claims_.CLAIMS_SUPPORTED, "sid", "auth_time", "nonce"],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    })


@bp.get("/oauth/jwks")
def jwks():  # type: ignore[no-untyped-def]
    return jsonify(provider().keys.public_jwks())


def _with_iss(location: str) -> str:
    return add_params_to_uri(location, [("iss", provider().issuer)])


def _redirect_error(error: OAuth2Error, state: str | None) -> Response:
    """To the application when its redirect URI is known and registered, with ``iss``
    (RFC 9207); otherwise a page, never a redirect to an unchecked address."""
    if error.redirect_uri:
        params = [(k, v) for k, v in error.get_body() if k in ("error", "error_description")]
        if state:
            params.append(("state", state))
        params.append(("iss", provider().issuer))
        return redirect(add_params_to_uri(error.redirect_uri, params))  # type: ignore[return-value]
    events.security("oidc-refused", client=request.args.get("client_id", "")[:100],
                    reason=error.error)
    return render_template("message.html", title=_("This sign-in link does not work"),
                           text=_("The application sent you here with a link the portal "
                                  "cannot use. Please go back and try again, or tell your "
                                  "teacher.")), 400  # type: ignore[return-value]


def _without(path: str, *names: str) -> str:
    """``path`` with these query parameters removed (the way back after a sign-in that
    already satisfied them)."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in names]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def _too_old(max_age: str | None) -> bool:
    if max_age is None or max_age == "":
        return False
    try:
        limit = int(max_age)
    except ValueError:
        return True
    auth_at = sessions.get("auth_at")
    if not isinstance(auth_at, int | float):
        return True
    return provider().now().timestamp() - float(auth_at) > max(0, limit)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():  # type: ignore[no-untyped-def]
    p = provider()
    person = who()
    fresh = p.person(person["dn"]) if person else None
    user = User(fresh) if fresh is not None else None
    rec = sessions.current()
    g.oidc_session = rec.data if rec is not None else {}
    state = request.values.get("state")
    try:
        grant = server().get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _redirect_error(error, state)
    client: Client = grant.request.client
    redirect_uri = grant.redirect_uri
    prompts = set((request.values.get("prompt") or "").split())
    passive = "none" in prompts
    decision = gates.check(
        client.app, back=request.full_path, passive=passive,
        force_login="login" in prompts or _too_old(request.values.get("max_age")),
        login_back=_without(request.full_path, "prompt", "max_age"),
        login_hint=request.values.get("login_hint"))
    if decision.outcome is Outcome.SIGN_IN:
        if decision.location is None:
            return _redirect_error(LoginRequiredError(redirect_uri=redirect_uri), state)
        return redirect(decision.location)
    if decision.outcome is Outcome.INTERACT:
        if decision.location is None:
            return _redirect_error(InteractionRequiredError(redirect_uri=redirect_uri), state)
        return redirect(decision.location)
    if decision.outcome is Outcome.DENIED:
        return _redirect_error(AccessDeniedError(redirect_uri=redirect_uri), state)
    assert decision.person is not None
    user = User(decision.person)
    consented = set(sessions.get("consented") or [])
    if client.app.consent and client.client_id not in consented:
        if request.method == "GET":
            if "none" in prompts:
                from authlib.oidc.core.errors import ConsentRequiredError

                return _redirect_error(ConsentRequiredError(redirect_uri=redirect_uri), state)
            return render_template("consent.html", app_name=client.app.name,
                                   scopes=client.get_allowed_scope(
                                       request.values.get("scope", "")).split())
        if request.form.get("decision") != "allow":
            return _redirect_error(AccessDeniedError(redirect_uri=redirect_uri), state)
        sessions.put("consented", sorted(consented | {client.client_id}))
    response = server().create_authorization_response(grant=grant, grant_user=user)
    if response.location:
        response.location = _with_iss(response.location)
    events.security("oidc-code", uid=person["uid"] if person else None,
                    client=client.client_id)
    return response


@bp.post("/oauth/token")
def token():  # type: ignore[no-untyped-def]
    return server().create_token_response()


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo():  # type: ignore[no-untyped-def]
    return server().create_endpoint_response("userinfo")


@bp.post("/oauth/revoke")
def revoke():  # type: ignore[no-untyped-def]
    return server().create_endpoint_response("revocation")


@bp.post("/oauth/introspect")
def introspect():  # type: ignore[no-untyped-def]
    return server().create_endpoint_response("introspection")


@bp.route("/oauth/logout", methods=["GET", "POST"])
def logout():  # type: ignore[no-untyped-def]
    """RP-initiated logout. ``client_id`` is not needed: the ID token hint names the
    application. A sign-out the hint does not vouch for (no hint, or another person's)
    asks first, so a link on another site cannot sign a child out."""
    p = provider()
    hint = request.values.get("id_token_hint", "")
    claims = p.signer.verify_expired_ok(hint) if hint else None
    client = p.client(str(claims.get("aud")) if claims else request.values.get("client_id"))
    target = request.values.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.app.post_logout_redirect_uris):
        target = None  # an unregistered address is never followed
    person = who()
    vouched = bool(person and claims and client
                   and _same_person(person, client, str(claims.get("sub", ""))))
    if person and not vouched and request.method == "GET":
        return render_template("logout_confirm.html",
                               app_name=client.app.name if client else None,
                               hint=hint, target=target or "",
                               state=request.values.get("state", ""))
    if person and (vouched or request.form.get("decision") == "yes"):
        ended = end_sessions(person["dn"])
        events.security("sign-out", uid=person["uid"], sessions=ended,
                        client=client.client_id if client else None)
    if target:
        state = request.values.get("state")
        return leave_signed_out(add_params_to_uri(target, [("state", state)] if state else []))
    detour = sign_out_detour(url_for("auth.login"))
    if detour is not None:
        session["notice"] = "signed_out"
        return detour
    return render_template("message.html", title=_("You are signed out"),
                           text=_("You are signed out of the portal and its applications."),
                           back=url_for("auth.login"), back_label=_("Sign in"))


def _same_person(person: dict[str, Any], client: Client, sub: str) -> bool:
    p = provider()
    fresh = p.person(person["dn"])
    return fresh is not None and p.sub(fresh, client) == sub
