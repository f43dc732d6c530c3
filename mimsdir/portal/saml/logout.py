"""Single logout, both ways, through the browser (front-channel).

- **An SP asks** (``/saml/slo``, a LogoutRequest): signed and verified with the SP's key
  from its metadata, it ends the portal sessions it names (its NameID, and its SessionIndex
  when given) with every other application's; then the other SPs are told, and the SP that
  asked gets its LogoutResponse. An unsigned one is not obeyed: the person is asked "Sign
  out?" first (as for OpenID Connect without a hint), so a link on another site cannot sign
  a child out.
- **The portal signs someone out in their browser** (the portal's "Sign out", OpenID
  Connect's RP-initiated logout, an SP's LogoutRequest): every SP their sessions reached
  that has a SingleLogoutService in its metadata gets a signed LogoutRequest (NameID,
  SessionIndex), one after the other through the browser (a *round*, kept in the
  directory), each answering to ``/saml/slo``; then the browser goes where it was going.

Not through a browser (a teacher's reset or unlock, an ICT reset, a disable, a password
changed on a device) there is nobody to carry the messages: the portal's sessions and the
records of the SPs they reached end, and each SP's own session runs until it ends by itself;
the next sign-in there meets the portal's gates. (No SOAP back-channel.)

Every page that sends the browser on to an SP is a page, not a redirect: a browser checks a
form post's ``form-action`` against every redirect after it, and the round often begins with
the portal's own sign-out form.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, redirect, url_for

from mimsdir.portal.saml import idp as idp_


def collect(dn: str, here: bool) -> None:
    """Sign-out listener (``views.common.end_sessions``): before the person's records go,
    note the SPs to tell through this browser (only the person's own browser)."""
    if not here:
        return
    from mimsdir.portal.saml.views import state

    steps = g.get("saml_logout_steps") or []
    for grant in state().participations(dn):
        d = grant.data
        steps.append({"client": d.get("client"), "entity": d.get("entity"),
                      "name_id": d.get("name_id"), "sid": d.get("sid")})
    g.saml_logout_steps = steps


def detour(url: str) -> Response | None:
    """Sign-out way (``views.common.sign_out_detour``): a round through the SPs noted by
    ``collect``, ending at ``url``."""
    return begin_round({"kind": "url", "url": url})


def begin_round(final: dict[str, Any], skip_entity: str | None = None) -> Response | None:
    """Start telling the noted SPs (but ``skip_entity``, the one that asked); None when
    there are none."""
    from mimsdir.portal.saml.views import state

    steps = [s for s in g.pop("saml_logout_steps", None) or []
             if s.get("entity") != skip_entity]
    # One LogoutRequest per SP and session.
    unique = list({(s["entity"], s["sid"]): s for s in steps}.values())
    if not unique:
        return None
    token = state().start_round(unique, final)
    return redirect(url_for("saml.slo_next", t=token))  # type: ignore[return-value]


def slo_endpoint(server: Any, entity_id: str) -> tuple[str, str] | None:
    """The SP's SingleLogoutService for requests: (binding, Location), HTTP-Redirect
    preferred; None if its metadata has none."""
    for binding in (idp_.BINDING_HTTP_REDIRECT, idp_.BINDING_HTTP_POST):
        try:
            services = server.metadata.single_logout_service(entity_id, binding, "spsso")
        except Exception:  # pysaml2: unknown entity or binding  # noqa: S112
            continue
        for service in services or ():
            location = service.get("location")
            if location:
                return binding, str(location)
    return None
