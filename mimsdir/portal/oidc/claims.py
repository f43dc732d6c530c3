"""What an application learns about a person, by scope. Pure.

- ``sub`` is the person's ``entryUUID``: stable (a changed email, class or level never
  changes it, and it survives replication and a restore from LDIF) and opaque (not the
  student ID, which is on paper in many places). With ``pairwise`` an application gets a
  keyed hash of its client id and that UUID, so two applications cannot join their records.
- ``email`` is the school email, verified by the school.
- ``mims`` is the school's own: school code, level, class, and role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "email": ("email", "email_verified"),
    "profile": ("name", "given_name", "family_name", "locale"),
    "mims": ("school_code", "level", "class", "role"),
}
CLAIMS_SUPPORTED = tuple(dict.fromkeys(c for cs in SCOPE_CLAIMS.values() for c in cs))


@dataclass(frozen=True)
class Person:
    """A person as an application may see them (read fresh from the directory)."""

    dn: str
    uuid: str
    role: str  # student | teacher | staff
    email: str
    name: str
    given_name: str
    family_name: str
    school: str | None
    level: str | None
    class_name: str | None
    active: bool


def subject(person_uuid: str, client_id: str, pairwise: bool, key: bytes) -> str:
    if not pairwise:
        return person_uuid
    digest = hmac.new(key, f"{client_id}\0{person_uuid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims(person: Person, scopes: Iterable[str], sub: str,
           locale: str | None) -> dict[str, object]:
    wanted = set(scopes)
    out: dict[str, object] = {"sub": sub}
    if "email" in wanted:
        out["email"] = person.email
        out["email_verified"] = True
    if "profile" in wanted:
        out["name"] = person.name
        if person.given_name:
            out["given_name"] = person.given_name
        if person.family_name:
            out["family_name"] = person.family_name
        if locale:
            out["locale"] = locale
    if "mims" in wanted:
        out["role"] = person.role
        for key, value in (("school_code", person.school), ("level", person.level),
                           ("class", person.class_name)):
            if value:
                out[key] = value
    return out
