"""What the SAML IdP remembers, kept as grants in the directory (``oidc/store.py``'s
``GrantStore``, entries under ``ou=sessions``): every portal instance sees the same, the
periodic purge deletes them after ``mimsSessionExpires``, and only the portal's account may
read them. Each is named by a hash, never by the value itself.

- ``samlreq-<h(entity id, request id)>``: an AuthnRequest or LogoutRequest ID seen; a
  second one is a replay. Kept ``REQUEST_MEMORY``, longer than a request is accepted.
- ``samlwait-<h(token)>``: an AuthnRequest that was checked and waits for the sign-in and
  the gates; the browser holds the token. ``WAIT_LIFETIME``.
- ``samlsp-<h(sid, entity id)>``: a portal session reached this SP (NameID, SessionIndex),
  for single logout; the person's own, so it ends with their sessions.
- ``samlout-<h(token)>``: a sign-out round through the browser: the SPs still to tell, then
  where to go. ``ROUND_LIFETIME``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from mimsdir.errors import Conflict
from mimsdir.portal.oidc.store import Grant, GrantStore

# An AuthnRequest is accepted up to REQUEST_MAX_AGE after its IssueInstant (and SKEW before
# it): its ID is remembered longer than that, so a copy is never accepted.
REQUEST_MAX_AGE = timedelta(minutes=5)
REQUEST_MEMORY = timedelta(minutes=15)
WAIT_LIFETIME = timedelta(minutes=30)  # the sign-in page, a forced change, questions
ROUND_LIFETIME = timedelta(minutes=10)
PARTICIPATION = "samlsp-"


def _h(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _sp_link(entity_id: str, name_id: str) -> str:
    return f"samlsp:{_h(entity_id, name_id)}"


class SamlState:
    def __init__(self, store: GrantStore, now: datetime) -> None:
        self.store = store
        self.now = now

    # -- replay --------------------------------------------------------------------------
    def first_time(self, entity_id: str, request_id: str) -> bool:
        """Record a request ID of this SP; False if it was seen before (a replay). The add
        is the check: of two copies arriving at once, one is refused by the directory."""
        try:
            self.store.add(Grant(f"samlreq-{_h(entity_id, request_id)}", "",
                                 self.now + REQUEST_MEMORY, {"kind": "saml-request"}))
        except Conflict:
            return False
        return True

    # -- requests waiting for the sign-in ----------------------------------------------------
    def wait(self, data: dict[str, Any]) -> str:
        """Keep a checked AuthnRequest; returns the token the browser resumes it with."""
        token = secrets.token_urlsafe(24)
        self.store.add(Grant(f"samlwait-{_h(token)}", "", self.now + WAIT_LIFETIME,
                             {"kind": "saml-wait", "used": False, **data}))
        return token

    def waiting(self, token: str) -> Grant | None:
        if not token or len(token) > 64:
            return None
        grant = self.store.get(f"samlwait-{_h(token)}")
        if grant is None or grant.data.get("used") or GrantStore.expired(grant, self.now):
            return None
        return grant

    def claim(self, grant: Grant, **changes: Any) -> bool:
        """Change a kept state unless another request changed it first (one answer per
        AuthnRequest, one step of a round at a time)."""
        return self.store.claim(grant, **changes)

    # -- which SPs a session reached -------------------------------------------------------
    def joined(self, *, subject_dn: str, sid: str, client_id: str, entity_id: str,
               name_id: str, until: datetime) -> None:
        with contextlib.suppress(Conflict):  # this session reached this SP before
            self.store.add(Grant(f"{PARTICIPATION}{_h(sid, entity_id)}", subject_dn, until,
                                 {"kind": "saml-sp", "client": client_id,
                                  "entity": entity_id, "name_id": name_id, "sid": sid},
                                 (f"sid:{sid}", _sp_link(entity_id, name_id))))

    def participations(self, subject_dn: str) -> list[Grant]:
        """The SPs every session of this person reached."""
        return self.store.of_subject(subject_dn, PARTICIPATION)

    def sessions_at(self, entity_id: str, name_id: str,
                    session_indexes: list[str]) -> list[Grant]:
        """The sessions an SP's LogoutRequest names: its NameID at this SP, and (when
        given) one of its SessionIndex values."""
        found = [g for g in self.store.linked(_sp_link(entity_id, name_id))
                 if g.key.startswith(PARTICIPATION) and g.data.get("entity") == entity_id
                 and g.data.get("name_id") == name_id]
        if session_indexes:
            found = [g for g in found if g.data.get("sid") in session_indexes]
        return found

    # -- sign-out rounds -----------------------------------------------------------------
    def start_round(self, steps: list[dict[str, Any]], final: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(24)
        self.store.add(Grant(f"samlout-{_h(token)}", "", self.now + ROUND_LIFETIME,
                             {"kind": "saml-round", "steps": steps, "final": final,
                              "sent": None}))
        return token

    def round(self, token: str) -> Grant | None:
        if not token or len(token) > 64:
            return None
        grant = self.store.get(f"samlout-{_h(token)}")
        if grant is None or GrantStore.expired(grant, self.now):
            return None
        return grant

    def end_round(self, grant: Grant) -> None:
        self.store.delete(grant.key)
