"""What a registered application is: an OpenID Connect client or a SAML service provider,
the rules it must follow (redirect URIs, scopes, who may sign in), and its LDAP form.

Pure: plain values in and out, no LDAP connection, no files. The registry
(``mimsdir.apps.registry``) stores an ``App`` under ``ou=apps`` as ``cn=<client id>``; the
portal's protocol endpoints read it back and ask it ``allows(...)`` and ``check_secret(...)``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

# Re-exported: the secret's making and hashing belong with the App that checks it.
from mimsdir.apps.secret import hash_secret, new_client_secret, verify_secret

__all__ = [
    "LEVELS",
    "PROTOCOLS",
    "ROLES",
    "SCOPES",
    "App",
    "Protocol",
    "app_from_entry",
    "app_to_attrs",
    "hash_secret",
    "is_client_id",
    "is_loopback_host",
    "new_client_id",
    "new_client_secret",
    "validate_app",
    "validate_redirect_uri",
]

Protocol = Literal["oidc", "saml"]
PROTOCOLS: tuple[Protocol, ...] = ("oidc", "saml")
ROLES = ("student", "teacher", "staff")
SCOPES = ("openid", "email", "profile", "mims", "offline_access")
ID_TOKEN_ALGS = ("RS256", "ES256")
LEVELS = ("P1", "P2", "P3", "P4", "P5", "P6")

#: A client id is the RDN value of its entry and travels in URLs: URL-safe characters only.
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_URI = 2000
_MAX_TEXT = 256


@dataclass(frozen=True)
class App:
    """One registered application. ``client_id`` is also the SAML app's registry key; the
    SAML SP itself is known by ``saml_entity_id``."""

    client_id: str                      # e.g. "app-" + secrets.token_urlsafe(12), the RDN cn=
    name: str
    protocol: Protocol
    redirect_uris: tuple[str, ...] = ()  # OIDC redirect URIs; SAML: the SP's ACS URLs
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    public: bool = False                # OIDC public client: no secret (auth method "none")
    secret_hash: str | None = None      # argon2id of the client secret
    scopes: tuple[str, ...] = ("openid", "email", "profile", "mims", "offline_access")
    consent: bool = False               # school-managed apps: no consent page by default
    pairwise: bool = False              # pairwise sub for this client
    id_token_alg: str = ID_TOKEN_ALGS[0]  # OIDC: RS256, or ES256 for clients that ask
    allowed_levels: tuple[str, ...] = ()   # empty: any (P1..P6)
    allowed_schools: tuple[str, ...] = ()  # empty: any
    allowed_roles: tuple[str, ...] = ()    # empty: any of ROLES
    saml_entity_id: str | None = None
    saml_metadata: str | None = None
    description: str | None = None

    def allows(self, role: str, level: str | None, school: str | None) -> bool:
        """May a person with this role (student | teacher | staff), level (students: P1..P6)
        and school code sign in to this application?

        Each restriction that is set must be met; an empty one allows anyone. Levels are a
        student's: a level restriction is met by a student of a listed level and does not
        apply to teachers and staff (limit those with roles). A restriction the person has no
        value for is not met (a student with no level, anyone with no school code, when
        levels or schools are set). An unknown role is never allowed. Codes compare without
        regard to case, as the directory compares them.
        """
        role = (role or "").lower()
        if role not in ROLES:
            return False
        if self.allowed_roles and role not in {r.lower() for r in self.allowed_roles}:
            return False
        if self.allowed_levels and role == "student" and (
                not level or level.upper() not in {lv.upper() for lv in self.allowed_levels}):
            return False
        if self.allowed_schools:
            return bool(school) and str(school).casefold() in {
                s.casefold() for s in self.allowed_schools}
        return True

    def check_secret(self, secret: str) -> bool:
        """True if ``secret`` is this client's secret (argon2id verification, the same work
        whether right, wrong, or the app has no secret). Always False for a public client or
        a SAML app."""
        usable = self.secret_hash if (self.protocol == "oidc" and not self.public) else None
        return verify_secret(usable, secret)


def new_client_id() -> str:
    """A fresh client id: ``app-`` and 16 URL-safe characters (96 random bits)."""
    return "app-" + secrets.token_urlsafe(12)


def is_client_id(value: object) -> bool:
    """Could ``value`` name a registered app? (Checked before it reaches a DN or a filter:
    a client id in a request comes from anyone.)"""
    return isinstance(value, str) and bool(_CLIENT_ID_RE.fullmatch(value))


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: where plain http never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """Return ``uri`` if it may be registered as a redirect (or logout, or ACS) URI, else
    raise ValueError naming the problem.

    The rules (OAuth 2.0 Security BCP, RFC 9700 §2.1, and RFC 8252 for native apps): an
    absolute https URI, or http only to a loopback host; no fragment; no wildcard (the
    provider compares the whole string, exactly); no user name or password; ASCII only (a
    browser and a provider must not disagree about which URI it is).
    """
    if not isinstance(uri, str) or not uri:
        raise ValueError("is empty")
    if len(uri) > _MAX_URI:
        raise ValueError(f"is longer than {_MAX_URI} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        raise ValueError("contains spaces or control characters")
    if not uri.isascii():
        raise ValueError("is not ASCII (percent-encode the path, give the host in punycode)")
    if "*" in uri:
        raise ValueError("contains a wildcard (*): register each exact URI")
    if "#" in uri:
        raise ValueError("has a fragment (#...): a redirect URI must not have one")
    if "\\" in uri:
        raise ValueError("contains a backslash")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc or not uri.lower().startswith(f"{scheme}://"):
        raise ValueError("is not an absolute URI (https://host/path)")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 (raises for a bad port)
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not host:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("carries a user name or password")
    if scheme == "https":
        return uri
    if scheme == "http":
        if is_loopback_host(host):
            return uri
        raise ValueError("uses http: only https is allowed, or http to 127.0.0.1, [::1] "
                         "or localhost")
    raise ValueError(f"uses the scheme {scheme!r}: only https is allowed (or http to a "
                     f"loopback host)")


def _text(value: str | None, what: str, required: bool = False) -> None:
    if value is None:
        if required:
            raise ValueError(f"{what}: missing")
        return
    if not value.strip():
        raise ValueError(f"{what}: empty")
    if value != value.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"{what}: leading or trailing spaces or control characters")
    if len(value) > _MAX_TEXT:
        raise ValueError(f"{what}: longer than {_MAX_TEXT} characters")


def _distinct(values: Iterable[str], what: str, fold: bool = False) -> None:
    seen: set[str] = set()
    for v in values:
        key = v.casefold() if fold else v
        if key in seen:
            raise ValueError(f"{what}: {v!r} is listed twice")
        seen.add(key)


def validate_app(app: App) -> App:
    """Return ``app`` if it may be registered, else raise ValueError naming the field and
    the problem. The registry calls it before every write; the CLI turns the error into a
    usage error (exit 2, nothing written)."""
    if not is_client_id(app.client_id):
        raise ValueError("client id: 1 to 64 of A-Z, a-z, 0-9, '-' and '_'")
    _text(app.name, "name", required=True)
    _text(app.description, "description")
    if app.protocol not in PROTOCOLS:
        raise ValueError(f"protocol: oidc or saml, not {app.protocol!r}")
    for label, uris in (("redirect URI", app.redirect_uris),
                        ("post-logout URI", app.post_logout_redirect_uris),
                        ("back-channel logout URI", (app.backchannel_logout_uri or "",)
                         if app.backchannel_logout_uri is not None else ())):
        for uri in uris:
            try:
                validate_redirect_uri(uri)
            except ValueError as exc:
                raise ValueError(f"{label} {uri!r} {exc}") from None
        _distinct(uris, label)
    for level in app.allowed_levels:
        if level not in LEVELS:
            raise ValueError(f"level: one of {', '.join(LEVELS)}, not {level!r}")
    for role in app.allowed_roles:
        if role not in ROLES:
            raise ValueError(f"role: one of {', '.join(ROLES)}, not {role!r}")
    for school in app.allowed_schools:
        _text(school, "school")
    _distinct(app.allowed_levels, "level")
    _distinct(app.allowed_roles, "role")
    _distinct(app.allowed_schools, "school", fold=True)
    if app.protocol == "oidc":
        _validate_oidc(app)
    else:
        _validate_saml(app)
    return app


def _validate_oidc(app: App) -> None:
    if not app.redirect_uris:
        raise ValueError("an OpenID Connect app needs at least one redirect URI")
    for scope in app.scopes:
        if scope not in SCOPES:
            raise ValueError(f"scope: one of {', '.join(SCOPES)}, not {scope!r}")
    _distinct(app.scopes, "scope")
    if "openid" not in app.scopes:
        raise ValueError("scope: an OpenID Connect app needs the openid scope")
    if app.public and app.secret_hash is not None:
        raise ValueError("a public client has no secret")
    if not app.public and not (app.secret_hash or "").startswith("$argon2id$"):
        raise ValueError("a confidential client needs the argon2id hash of its secret")
    if app.saml_entity_id is not None or app.saml_metadata is not None:
        raise ValueError("an OpenID Connect app has no SAML entity ID or metadata")
    if app.id_token_alg not in ID_TOKEN_ALGS:
        raise ValueError(f"ID token algorithm: one of {', '.join(ID_TOKEN_ALGS)}, "
                         f"not {app.id_token_alg!r}")


def _validate_saml(app: App) -> None:
    _text(app.saml_entity_id, "SAML entity ID", required=True)
    if not app.saml_metadata:
        raise ValueError("a SAML app needs its SP metadata")
    if not app.redirect_uris:
        raise ValueError("a SAML app needs at least one AssertionConsumerService URL")
    if (app.public or app.secret_hash is not None or app.scopes or app.post_logout_redirect_uris
            or app.backchannel_logout_uri is not None or app.consent or app.pairwise
            or app.id_token_alg != ID_TOKEN_ALGS[0]):
        raise ValueError("a SAML app has no secret, scopes, logout URIs, consent or pairwise "
                         "setting (OpenID Connect only)")


# -- LDAP form -----------------------------------------------------------------------------------

_BOOL = {True: b"TRUE", False: b"FALSE"}


def app_to_attrs(app: App) -> dict[str, list[bytes]]:
    """The entry's attributes (for an add): empty fields are left out, booleans always
    written."""
    def many(values: Iterable[str]) -> list[bytes]:
        return [v.encode() for v in values]

    attrs: dict[str, list[bytes]] = {
        "objectClass": [b"mimsApp"],
        "cn": [app.client_id.encode()],
        "mimsAppName": [app.name.encode()],
        "mimsAppProtocol": [app.protocol.encode()],
        "mimsAppRedirectUri": many(app.redirect_uris),
        "mimsAppPostLogoutUri": many(app.post_logout_redirect_uris),
        "mimsAppBackchannelUri": many(filter(None, [app.backchannel_logout_uri])),
        "mimsAppPublic": [_BOOL[app.public]],
        "mimsAppSecret": many(filter(None, [app.secret_hash])),
        "mimsAppScope": many(app.scopes),
        "mimsAppConsent": [_BOOL[app.consent]],
        "mimsAppPairwise": [_BOOL[app.pairwise]],
        "mimsAppAllowLevel": many(app.allowed_levels),
        "mimsAppAllowSchool": many(app.allowed_schools),
        "mimsAppAllowRole": many(app.allowed_roles),
        "mimsAppSamlEntityId": many(filter(None, [app.saml_entity_id])),
        "mimsAppSamlMetadata": many(filter(None, [app.saml_metadata])),
        "mimsAppIdTokenAlg": many([app.id_token_alg] if app.protocol == "oidc" else []),
        "description": many(filter(None, [app.description])),
    }
    return {k: v for k, v in attrs.items() if v}


#: Every attribute ``app_from_entry`` reads (what the registry asks slapd for).
APP_ATTRS = ("objectClass", "cn", "mimsAppName", "mimsAppProtocol", "mimsAppRedirectUri",
             "mimsAppPostLogoutUri", "mimsAppBackchannelUri", "mimsAppPublic", "mimsAppSecret",
             "mimsAppScope", "mimsAppConsent", "mimsAppPairwise", "mimsAppAllowLevel",
             "mimsAppAllowSchool", "mimsAppAllowRole", "mimsAppSamlEntityId",
             "mimsAppSamlMetadata", "mimsAppIdTokenAlg", "description")


def app_from_entry(dn: str, attrs: dict[str, list[bytes]]) -> App:
    """The App an entry holds. The client id is the DN's RDN value (the entry's name, which
    ``cn`` repeats). Reads what is stored without judging it: the registry validates writes."""
    from ldap.dn import str2dn

    lower = {k.lower(): v for k, v in attrs.items()}

    def many(name: str) -> tuple[str, ...]:
        return tuple(v.decode("utf-8", "replace") for v in lower.get(name.lower(), []))

    def one(name: str) -> str | None:
        got = many(name)
        return got[0] if got else None

    def flag(name: str) -> bool:
        return (one(name) or "").upper() == "TRUE"

    client_id = str2dn(dn)[0][0][1]
    protocol = (one("mimsAppProtocol") or "").lower()
    if protocol not in PROTOCOLS:
        # Never guess: an app of an unknown kind must not be served as an OIDC client.
        raise ValueError(f"{dn}: mimsAppProtocol is {protocol!r}, not oidc or saml")
    return App(
        client_id=client_id,
        name=one("mimsAppName") or client_id,
        protocol="saml" if protocol == "saml" else "oidc",
        redirect_uris=many("mimsAppRedirectUri"),
        post_logout_redirect_uris=many("mimsAppPostLogoutUri"),
        backchannel_logout_uri=one("mimsAppBackchannelUri"),
        public=flag("mimsAppPublic"),
        secret_hash=one("mimsAppSecret"),
        scopes=many("mimsAppScope"),
        consent=flag("mimsAppConsent"),
        pairwise=flag("mimsAppPairwise"),
        allowed_levels=many("mimsAppAllowLevel"),
        allowed_schools=many("mimsAppAllowSchool"),
        allowed_roles=many("mimsAppAllowRole"),
        saml_entity_id=one("mimsAppSamlEntityId"),
        saml_metadata=one("mimsAppSamlMetadata"),
        description=one("description"),
        id_token_alg=one("mimsAppIdTokenAlg") or ID_TOKEN_ALGS[0],
    )
