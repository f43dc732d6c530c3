"""The SAML endpoints: ``/saml/metadata``, ``/saml/sso`` (SP-initiated, HTTP-Redirect and
HTTP-POST), ``/saml/init/<client id>`` (IdP-initiated), ``/saml/slo`` (single logout).

An AuthnRequest is checked when it arrives, before anything else: a registered SP's
(``Registry.by_entity_id``), signed if the SP's metadata says it signs (and any signature
must verify with the keys in that metadata), sent to this IdP, issued within the last
minutes, an ``AssertionConsumerServiceURL`` (or index) that is in the SP's metadata and
registered, and an ID never seen before (kept in the directory). Only then is it kept,
server-side, and the browser sent on with a token (``/saml/continue?t=``, a query
parameter: the access log records paths only): the HTTP-POST
binding arrives cross-site without the portal's ``SameSite=Lax`` cookie, and a sign-in, a
forced password change or the questions page may come first. Nothing else from the browser
is believed.

At ``/saml/continue`` the portal's gates (``portal/gates.py``, the same as OpenID
Connect's) decide; an assertion is made only for an active person the SP is for, with no
forced change or questions pending. ``ForceAuthn`` asks for a sign-in after the request
arrived; ``IsPassive`` gets ``NoPassive`` instead of a page; a person the SP is not for gets
``RequestDenied``.
"""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from mimsdir.apps.model import App
from mimsdir.apps.registry import Registry
from mimsdir.portal import events, gates, sessions
from mimsdir.portal.gates import Outcome
from mimsdir.portal.oidc.store import GrantStore
from mimsdir.portal.saml import idp as idp_
from mimsdir.portal.saml import logout
from mimsdir.portal.saml.idp import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, IdP, Refused
from mimsdir.portal.saml.state import REQUEST_MAX_AGE, SamlState
from mimsdir.portal.views.common import directory, end_sessions, who

log = logging.getLogger("mimsdir.portal")
bp = Blueprint("saml", __name__)

# SPs post to these from their own sites (HTTP-POST binding): no CSRF token can be in such a
# post and its Origin is the SP's. The message's signature, the registry and the SP's
# metadata vouch for it instead; nothing there acts on the portal's cookie alone.
CROSS_SITE_POSTS = frozenset({"saml.sso", "saml.slo"})
# RelayState is the SP's to read; the portal only carries it back (bindings §3.4.3 say 80
# bytes, but Google Workspace sends a whole URL).
MAX_RELAY_STATE = 1024
SKEW = timedelta(seconds=idp_.SKEW_SECONDS)


def idp() -> IdP:
    return current_app.extensions["mims_saml"]  # type: ignore[no-any-return]


def state() -> SamlState:
    d = directory()
    return SamlState(GrantStore(d.svc, d.dns.sessions), datetime.now(UTC))


def registry() -> Registry:
    d = directory()
    return Registry(d.svc, d.dns)


def _values() -> Any:
    return request.args if request.method == "GET" else request.form


def _relay_state(values: Any) -> str | None:
    relay = values.get("RelayState")
    if relay is None:
        return None
    if len(relay) > MAX_RELAY_STATE or any(ord(c) < 0x20 for c in relay):
        raise Refused("RelayState too long or not text")
    return str(relay)


# -- pages ---------------------------------------------------------------------------------

def _bad_link(reason: str, sp: str | None = None) -> tuple[str, int]:
    events.security("saml-refused", sp=(sp or "")[:200] or None, reason=reason[:200])
    return render_template("message.html", title=_("This sign-in link does not work"),
                           text=_("The application sent you here with a link the portal "
                                  "cannot use. Please go back and try again, or tell your "
                                  "teacher.")), 400


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def post_page(url: str, field: str, xml: str, relay_state: str | None) -> Response:
    """The HTTP-POST binding: a page whose form goes to ``url`` by itself (saml-post.js)
    or with its button; ``form-action`` allows ``url``'s origin on this response only."""
    g.csp_form_action = [_origin(url)]
    return make_response(render_template("saml_post.html", action=url, field=field,
                                         value=idp_.post_value(xml),
                                         relay_state=relay_state))


def go_page(url: str) -> Response:
    """Send the browser to ``url`` (an SP's, or registered) from a page, not a redirect."""
    return make_response(render_template("saml_go.html", url=url))


# -- metadata --------------------------------------------------------------------------------

@bp.get("/saml/metadata")
def metadata():  # type: ignore[no-untyped-def]
    resp = make_response(idp().metadata())
    resp.headers["Content-Type"] = "application/samlmetadata+xml"
    resp.headers["Content-Disposition"] = 'inline; filename="mims-idp-metadata.xml"'
    return resp


# -- SP-initiated ----------------------------------------------------------------------------

def _issued(instant: str) -> datetime:
    from saml2.time_util import str_to_time

    parsed = str_to_time(instant)
    if parsed is None:
        raise Refused("no IssueInstant")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _check_time(instant: str) -> None:
    issued = _issued(instant)
    now = datetime.now(UTC)
    if issued > now + SKEW or issued < now - REQUEST_MAX_AGE - SKEW:
        raise Refused("IssueInstant out of range")


def _parse(kind: str, binding: str, values: Any, want_signed: bool | None = None,
           ) -> tuple[App, Any, Any]:
    """(app, pysaml2's parsed request, its Server) of a request from a registered SP, its
    signature checked (required if the SP's metadata says it signs, or ``want_signed``)."""
    message = values.get("SAMLRequest") or ""
    relay = _relay_state(values)
    sigalg, signature = values.get("SigAlg"), values.get("Signature")
    head = idp_.peek(idp_.decode(message, binding))
    if head.kind != kind:
        raise Refused(f"a {head.kind} sent as a {kind}")
    app = registry().by_entity_id(head.issuer)
    if app is None or app.protocol != "saml":
        raise Refused("unknown SP")
    g.saml_sp = head.issuer
    if signature and sigalg == idp_.SIG_RSA_SHA1:
        raise Refused("SHA-1 signature")
    must = idp_.sp_signs_requests(app) or bool(want_signed) or (
        binding == BINDING_HTTP_REDIRECT and bool(signature))
    server = idp().server(app, want_signed=must)
    parse = server.parse_authn_request if kind == "AuthnRequest" else server.parse_logout_request
    try:
        with idp_._quiet():
            parsed = parse(message, binding, relay_state=relay, sigalg=sigalg,
                           signature=signature)
    except Exception as exc:
        raise Refused(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if parsed is None or parsed.message is None:
        raise Refused("not a valid request")
    _check_time(parsed.message.issue_instant)
    return app, parsed, server


@bp.route("/saml/sso", methods=["GET", "POST"])
def sso():  # type: ignore[no-untyped-def]
    binding = idp_.BINDINGS[request.method]
    values = _values()
    try:
        app, parsed, server = _parse("AuthnRequest", binding, values)
        msg = parsed.message
        try:
            with idp_._quiet():
                acs = server.response_args(msg, [BINDING_HTTP_POST])["destination"]
        except Exception:
            raise Refused("AssertionConsumerService not in the SP's metadata") from None
        if acs not in app.redirect_uris:
            raise Refused("AssertionConsumerService not registered")
        if not state().first_time(app.saml_entity_id or "", msg.id):
            raise Refused("replayed AuthnRequest")
        relay = _relay_state(values)
    except Refused as exc:
        return _bad_link(exc.reason, g.get("saml_sp"))
    policy = msg.name_id_policy
    fmt = policy.format if policy is not None else None
    if fmt and fmt not in idp_.NAMEID_FORMATS_SERVED:
        xml = idp().error_response(server, acs_url=acs, in_response_to=msg.id,
                                   status=idp_.samlp.STATUS_INVALID_NAMEID_POLICY,
                                   message="The NameID is the login ID (emailAddress)")
        return post_page(acs, "SAMLResponse", xml, relay)
    token = state().wait({
        "client": app.client_id, "entity": app.saml_entity_id, "id": msg.id, "acs": acs,
        "relay": relay, "force": msg.force_authn in ("true", "1"),
        "passive": msg.is_passive in ("true", "1")})
    return redirect(url_for("saml.resume", t=token), code=303)


def _fresh_sign_in(data: dict[str, Any]) -> bool:
    """ForceAuthn: has this browser signed in since it was sent to the sign-in page for
    this request? (A sign-in always makes a new sid.)"""
    if "forced_from" not in data:
        return False
    sid = sessions.get("sid")
    return bool(sid) and sid != data["forced_from"]


@bp.get("/saml/continue")
def resume():  # type: ignore[no-untyped-def]
    token = request.args.get("t", "")
    st = state()
    waiting = st.waiting(token)
    if waiting is None:
        return _bad_link("unknown or used request token")
    d = waiting.data
    app = registry().get(str(d.get("client") or ""))
    if app is None or app.protocol != "saml" or app.saml_entity_id != d.get("entity"):
        return _bad_link("the SP is no longer registered", str(d.get("entity")))
    forced = bool(d.get("force")) and not _fresh_sign_in(d)
    decision = gates.check(app, back=url_for("saml.resume", t=token),
                           passive=bool(d.get("passive")), force_login=forced)
    if decision.location is not None:
        if forced and decision.outcome is Outcome.SIGN_IN:
            st.claim(waiting, forced_from=sessions.get("sid") or "")
        return redirect(decision.location)
    if not st.claim(waiting, used=True):
        return _bad_link("request already answered", app.saml_entity_id)
    server = idp().server(app)
    if decision.outcome is not Outcome.PROCEED or decision.person is None:
        passive = decision.outcome in (Outcome.SIGN_IN, Outcome.INTERACT)
        status = idp_.samlp.STATUS_NO_PASSIVE if passive else idp_.samlp.STATUS_REQUEST_DENIED
        xml = idp().error_response(server, acs_url=str(d["acs"]), in_response_to=str(d["id"]),
                                   status=status, message="passive" if passive else "denied")
        return post_page(str(d["acs"]), "SAMLResponse", xml, d.get("relay"))
    return _assertion(app, server, decision.person, str(d["acs"]), str(d["id"]),
                      d.get("relay"))


def _assertion(app: App, server: Any, person: Any, acs: str, in_response_to: str | None,
               relay: str | None) -> Response:
    rec = sessions.current()
    sid = str(sessions.get("sid") or "")
    auth_at = int(sessions.get("auth_at") or datetime.now(UTC).timestamp())
    xml = idp().authn_response(server, person=person, sp_entity_id=app.saml_entity_id or "",
                               acs_url=acs, in_response_to=in_response_to,
                               session_index=sid, authn_instant=auth_at)
    if rec is not None and sid:
        state().joined(subject_dn=person.dn, sid=sid, client_id=app.client_id,
                       entity_id=app.saml_entity_id or "", name_id=person.email,
                       until=rec.expires)
    events.security("saml-assertion", uid=(who() or {}).get("uid"), client=app.client_id,
                    unsolicited=in_response_to is None or None)
    return post_page(acs, "SAMLResponse", xml, relay)


# -- IdP-initiated ---------------------------------------------------------------------------

def _default_acs(server: Any, app: App) -> str | None:
    try:
        services = server.metadata.assertion_consumer_service(app.saml_entity_id,
                                                              BINDING_HTTP_POST)
    except Exception:
        return None
    ranked = sorted(services or (), key=lambda s: (str(s.get("is_default")).lower() != "true",
                                                   int(s.get("index") or 0)))
    for service in ranked:
        location = str(service.get("location") or "")
        if location in app.redirect_uris:
            return location
    return None


@bp.get("/saml/init/<client_id>")
def idp_initiated(client_id: str):  # type: ignore[no-untyped-def]
    """A link on the portal (or the school's page) that signs the child in to an SP that
    accepts unsolicited responses: no AuthnRequest, no InResponseTo."""
    app = registry().get(client_id)
    if app is None or app.protocol != "saml":
        return _bad_link("unknown SP for IdP-initiated sign-in", client_id)
    try:
        relay = _relay_state(request.args)
    except Refused as exc:
        return _bad_link(exc.reason, app.saml_entity_id)
    decision = gates.check(app, back=request.full_path)
    if decision.location is not None:
        return redirect(decision.location)
    if decision.outcome is not Outcome.PROCEED or decision.person is None:
        return render_template("message.html", title=_("This application is not for you"),
                               text=_("Your school has not given you this application. If "
                                      "you think you need it, tell your teacher.")), 403
    server = idp().server(app)
    acs = _default_acs(server, app)
    if acs is None:
        return _bad_link("no HTTP-POST AssertionConsumerService", app.saml_entity_id)
    return _assertion(app, server, decision.person, acs, None, relay)


# -- single logout ---------------------------------------------------------------------------

@bp.route("/saml/slo", methods=["GET", "POST"])
def slo():  # type: ignore[no-untyped-def]
    values = _values()
    binding = idp_.BINDINGS[request.method]
    if values.get("SAMLResponse"):
        return _logout_answered(binding, values)
    if values.get("SAMLRequest"):
        return _logout_asked(binding, values)
    return _ask_sign_out(None)


def _ask_sign_out(app_name: str | None) -> Any:
    """Sign out only when the person says so (a form with the CSRF token, to the portal's
    own sign-out)."""
    if who() is None:
        return render_template("message.html", title=_("You are signed out"),
                               text=_("You are signed out of the portal and its "
                                      "applications."),
                               back=url_for("auth.login"), back_label=_("Sign in"))
    return render_template("logout_confirm.html", app_name=app_name,
                           action=url_for("auth.logout"))


def _logout_asked(binding: str, values: Any) -> Any:
    try:
        head = idp_.peek(idp_.decode(values.get("SAMLRequest") or "", binding))
        signed = head.signed or (binding == BINDING_HTTP_REDIRECT
                                 and bool(values.get("Signature")))
        if not signed:
            app = registry().by_entity_id(head.issuer)
            if app is None or app.protocol != "saml":
                raise Refused("unknown SP")
            if idp_.sp_signs_requests(app):
                raise Refused("unsigned LogoutRequest from an SP that signs")
            return _ask_sign_out(app.name)
        app, parsed, server = _parse("LogoutRequest", binding, values, want_signed=True)
        msg = parsed.message
        if not state().first_time(app.saml_entity_id or "", msg.id):
            raise Refused("replayed LogoutRequest")
        relay = _relay_state(values)
    except Refused as exc:
        return _bad_link(exc.reason, g.get("saml_sp"))
    name_id = (msg.name_id.text or "").strip() if msg.name_id is not None else ""
    indexes = [(si.text or "").strip() for si in msg.session_index or ()]
    entity = app.saml_entity_id or ""
    for dn in {p.subject for p in state().sessions_at(entity, name_id, indexes)}:
        ended = end_sessions(dn, here=True)
        events.security("sign-out", sessions=ended, client=app.client_id, protocol="saml")
    final: dict[str, Any]
    try:
        out_binding, destination, xml = idp().logout_response(
            server, msg, [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
        final = {"kind": "saml", "client": app.client_id, "binding": out_binding,
                 "destination": destination, "xml": xml, "relay": relay}
    except Exception:
        final = {"kind": "url", "url": url_for("auth.login")}
    return logout.begin_round(final, skip_entity=entity) or _finish(final)


def _logout_answered(binding: str, values: Any) -> Any:
    """An SP's LogoutResponse in a round: on to the next SP (whatever its status: the
    portal's sessions ended already; a failure is logged)."""
    try:
        relay = _relay_state(values) or ""
    except Refused as exc:
        return _bad_link(exc.reason)
    st = state()
    rnd = st.round(relay)
    if rnd is None:
        return _ask_sign_out(None)
    try:
        head = idp_.peek(idp_.decode(values.get("SAMLResponse") or "", binding))
        app = registry().by_entity_id(head.issuer)
        if app is None or head.kind != "LogoutResponse":
            raise Refused("not a LogoutResponse of a registered SP")
        with idp_._quiet():
            answer = idp().server(app).parse_logout_request_response(
                values.get("SAMLResponse"), binding)
        if answer is None or answer.response.in_response_to != rnd.data.get("sent"):
            raise Refused("LogoutResponse to another request")
        answer.status_ok()  # raises for any status but Success
    except Exception as exc:
        reason = exc.reason if isinstance(exc, Refused) else type(exc).__name__
        log.warning("SAML single logout: %s", reason)
    return redirect(url_for("saml.slo_next", t=relay), code=303)


@bp.get("/saml/slo/next")
def slo_next():  # type: ignore[no-untyped-def]
    """One step of a sign-out round: the next SP's LogoutRequest, or where it ends."""
    token = request.args.get("t", "")
    st = state()
    rnd = st.round(token)
    if rnd is None:
        return _ask_sign_out(None)
    steps = list(rnd.data.get("steps") or [])
    while steps:
        step = steps.pop(0)
        app = registry().get(str(step.get("client") or ""))
        if app is None or app.protocol != "saml" or app.saml_entity_id != step.get("entity"):
            continue
        server = idp().server(app)
        endpoint = logout.slo_endpoint(server, app.saml_entity_id or "")
        if endpoint is None:
            continue
        binding, location = endpoint
        req_id, xml = idp().logout_request(server, destination=location, binding=binding,
                                           name_id=str(step.get("name_id") or ""),
                                           session_index=step.get("sid"))
        if not st.claim(rnd, steps=steps, sent=req_id):
            return redirect(url_for("saml.slo_next", t=token))
        if binding == BINDING_HTTP_POST:
            return post_page(location, "SAMLRequest", xml, token)
        return go_page(idp().redirect_url(server, xml, location, token, "SAMLRequest"))
    st.end_round(rnd)
    return _finish(rnd.data.get("final") or {})


def _finish(final: dict[str, Any]) -> Any:
    if final.get("kind") == "saml":
        app = registry().get(str(final.get("client") or ""))
        if app is None:
            return _ask_sign_out(None)
        destination, xml = str(final["destination"]), str(final["xml"])
        relay = final.get("relay")
        if final.get("binding") == BINDING_HTTP_POST:
            return post_page(destination, "SAMLResponse", xml, relay)
        return go_page(idp().redirect_url(idp().server(app), xml, destination, relay or "",
                                          "SAMLResponse"))
    url = str(final.get("url") or url_for("auth.login"))
    if url.startswith("/"):
        return redirect(url)
    return go_page(url)


def init(app: Any, cfg: Any) -> None:
    app.extensions["mims_saml"] = IdP(cfg)
    app.extensions.setdefault("mims_sign_out", []).append(logout.collect)
    app.extensions.setdefault("mims_sign_out_ways", []).append(logout.detour)
