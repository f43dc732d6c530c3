"""The gates an application's sign-in request passes before the portal answers it, whatever
the protocol: OpenID Connect's ``/oauth/authorize`` and SAML's ``/saml/sso`` and
``/saml/init`` call ``check`` and nothing else decides.

In this order:

1. nobody signed in, or the application asks for a fresh sign-in (``prompt=login``,
   ``max_age``, SAML ``ForceAuthn``): the portal's sign-in page, then back;
2. the person, read fresh from the directory, is no longer active (disabled, left): denied;
3. a reset password to change, or P4-P6 questions to set: that page first, then back;
4. the application is not for this person (``App.allows``: role, level, school): denied.

A passive request (``prompt=none``, SAML ``IsPassive``) never shows a page: it gets the
outcome and the protocol turns it into its own error (``login_required``,
``interaction_required``; SAML ``NoPassive``). An application never gets a child who must
still change a reset password.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask import url_for

from mimsdir.apps.model import App
from mimsdir.portal import events, sessions
from mimsdir.portal.oidc.claims import Person
from mimsdir.portal.views.common import directory, gate_target, who


class Outcome(enum.Enum):
    PROCEED = "proceed"    # answer the application: ``Decision.person`` is who
    SIGN_IN = "sign-in"    # the sign-in page first (or, passive, an error)
    INTERACT = "interact"  # a portal page first: a forced change, questions (or an error)
    DENIED = "denied"      # not active, or not someone the application is for


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    person: Person | None = None   # PROCEED: the person as read now
    location: str | None = None    # SIGN_IN / INTERACT, not passive: where the browser goes
    reason: str = ""               # DENIED: "inactive" | "not-for-this-person"


def check(app: App, *, back: str, passive: bool = False, force_login: bool = False,
          login_back: str | None = None, login_hint: str | None = None) -> Decision:
    """May the signed-in person go on to ``app`` now?

    ``back`` is this request again (a path on the portal): where the browser resumes after a
    gate page; ``login_back`` where it resumes after signing in (default ``back``; OIDC
    strips ``prompt`` and ``max_age`` from it, as the sign-in has just satisfied them).
    """
    person = who()
    if person is None or force_login:
        if passive:
            return Decision(Outcome.SIGN_IN)
        return Decision(Outcome.SIGN_IN, location=url_for(
            "auth.login", next=login_back or back, login_hint=login_hint or None))
    fresh = directory().person(person["dn"])
    if fresh is None or not fresh.active:
        return _denied(app, person, "inactive", None)
    gate = sessions.get("gate")
    if gate:
        if passive:
            return Decision(Outcome.INTERACT)
        sessions.put("resume", back)
        return Decision(Outcome.INTERACT, location=url_for(gate_target(gate)))
    if not app.allows(fresh.role, fresh.level, fresh.school):
        return _denied(app, person, "not-for-this-person", fresh)
    return Decision(Outcome.PROCEED, person=fresh)


def _denied(app: App, person: dict[str, str], reason: str, fresh: Person | None) -> Decision:
    events.security("app-refused", uid=person.get("uid"), client=app.client_id,
                    protocol=app.protocol, reason=reason)
    return Decision(Outcome.DENIED, person=fresh, reason=reason)
