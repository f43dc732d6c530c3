"""Grants (authorization codes, refresh tokens, revoked access tokens) in the directory,
beside the sessions under ``ou=sessions``.

Why there: every portal instance, near every replica, must honour a code issued by another
one, and a sign-out, a reset or a disable must revoke a child's grants everywhere at once.
They are ``mimsSession`` entries like the sessions: the same purge (``mimsSessionExpires``),
the same ACL (only the portal's account), and ending a person's sessions deletes their
grants too (``mimsSessionSubject``). Each entry is named by a hash of the code or token, so
a copy of the directory holds nothing an application would accept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ldap
import ldap.filter

from mimsdir.errors import Conflict, NotFound
from mimsdir.gtime import format_gtime, parse_gtime
from mimsdir.ldapio import Conn, filter_eq, first, values

ATTRS = ("mimsSessionSubject", "mimsSessionExpires", "mimsSessionData", "mimsSessionLink")


def grant_key(kind: str, secret: str) -> str:
    return f"{kind}-{hashlib.sha256(secret.encode()).hexdigest()}"


@dataclass
class Grant:
    key: str
    subject: str
    expires: datetime
    data: dict[str, Any]
    links: tuple[str, ...] = ()
    text: str = field(default="", repr=False)

    def encode(self) -> str:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"))


class GrantStore:
    def __init__(self, conn: Conn, sessions_dn: str) -> None:
        self.conn = conn
        self.base = sessions_dn

    def _dn(self, key: str) -> str:
        return f"cn={key},{self.base}"

    def add(self, grant: Grant) -> None:
        text = grant.encode()
        attrs: dict[str, list[bytes]] = {
            "objectClass": [b"mimsSession"], "cn": [grant.key.encode()],
            "mimsSessionExpires": [format_gtime(grant.expires).encode()],
            "mimsSessionData": [text.encode()],
        }
        if grant.subject:  # none for a state no person owns yet (a SAML request waiting)
            attrs["mimsSessionSubject"] = [grant.subject.encode()]
        if grant.links:
            attrs["mimsSessionLink"] = [v.encode() for v in grant.links]
        self.conn.add(self._dn(grant.key), attrs, "saving a grant")
        grant.text = text

    def get(self, key: str) -> Grant | None:
        attrs = self.conn.get(self._dn(key), list(ATTRS), "reading a grant")
        return _parse(key, attrs) if attrs else None

    def claim(self, grant: Grant, **changes: Any) -> bool:
        """Change the grant's data only if nobody changed it since it was read (a code
        exchanged twice at once, a refresh token used twice at once: one wins)."""
        data = {**grant.data, **changes}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        try:
            self.conn.modify(self._dn(grant.key),
                             [(ldap.MOD_REPLACE, "mimsSessionData", [text.encode()])],
                             "using a grant", assertion=filter_eq("mimsSessionData",
                                                                  grant.text))
        except (Conflict, NotFound):
            return False
        grant.data, grant.text = data, text
        return True

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFound):
            self.conn.delete(self._dn(key), "deleting a grant")

    def linked(self, link: str) -> list[Grant]:
        res = self.conn.search(self.base, ldap.SCOPE_ONELEVEL,
                               filter_eq("mimsSessionLink", link), ["cn", *ATTRS],
                               "finding linked grants")
        found = (_parse(first(attrs, "cn") or "", attrs) for _dn, attrs in res)
        return [g for g in found if g is not None]

    def revoke_linked(self, link: str) -> int:
        """Delete every grant carrying this link (a code's tokens, a refresh family)."""
        grants = self.linked(link)
        for g in grants:
            self.delete(g.key)
        return len(grants)

    def families_of(self, subject_dn: str) -> list[Grant]:
        """The grant families (one per application sign-in) of a person."""
        return self.of_subject(subject_dn, "fam-")

    def of_subject(self, subject_dn: str, prefix: str) -> list[Grant]:
        """A person's grants whose key starts with ``prefix`` (``fam-``, ``samlsp-``)."""
        res = self.conn.search(self.base, ldap.SCOPE_ONELEVEL,
                               f"(&{filter_eq('mimsSessionSubject', subject_dn)}"
                               f"(cn={ldap.filter.escape_filter_chars(prefix)}*))",
                               ["cn", *ATTRS], "finding a person's grants")
        found = (_parse(first(attrs, "cn") or "", attrs) for _dn, attrs in res)
        return [g for g in found if g is not None]

    @staticmethod
    def expired(grant: Grant, now: datetime) -> bool:
        return now >= grant.expires


def _parse(key: str, attrs: dict[str, list[bytes]]) -> Grant | None:
    expires = parse_gtime(first(attrs, "mimsSessionExpires"))
    text = first(attrs, "mimsSessionData") or "{}"
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not key or expires is None or not isinstance(data, dict):
        return None
    return Grant(key, first(attrs, "mimsSessionSubject") or "", expires, data,
                 tuple(values(attrs, "mimsSessionLink")), text)
