"""The SAML IdP as pysaml2 sees it: configuration built in code, never read from a file.

- entity id ``<portal.public_url>/saml/metadata``; the key and self-signed certificate of
  ``mimsdir.apps.keys.saml_credentials`` (``<secrets_dir>/saml-idp/``);
- one registered SP's metadata per ``Server``, taken from the registry entry the request
  named: a removed SP is refused at once, a changed metadata is used at once (the parsed
  ``Server`` is cached by the metadata's digest for a few minutes, as pysaml2 spends 90 ms
  loading the RSA key);
- responses and assertions both signed, RSA-SHA256 with SHA-256 digests; assertions live
  ``ASSERTION_MINUTES``; ``NameID`` is the login ID (format emailAddress), as Google
  Workspace requires; the attributes of ``ATTRIBUTES``, URI names (the LDAP attributes'
  OIDs), with friendly names;
- only keys from the SP's metadata verify its signatures (never a certificate inside the
  message); an SP whose metadata says ``AuthnRequestsSigned="true"`` must sign, and a
  signature sent by any SP must verify.

The IdP's own metadata is served unsigned: it is fetched over HTTPS from the portal, and
what an SP pins is the certificate in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from mimsdir.apps.keys import saml_credentials
from mimsdir.apps.model import App
from mimsdir.config import Config
from mimsdir.portal.oidc.claims import Person
from mimsdir.schemadef import ATTRIBUTES as LDAP_ATTRIBUTES

with warnings.catch_warnings():
    # pysaml2 7.5 names a cipher mode (CFB) that cryptography has moved; it is never used.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
    from saml2.attribute_converter import AttributeConverter
    from saml2.config import IdPConfig
    from saml2.metadata import entity_descriptor
    from saml2.pack import http_redirect_message
    from saml2.saml import (
        NAME_FORMAT_URI,
        NAMEID_FORMAT_EMAILADDRESS,
        NAMEID_FORMAT_UNSPECIFIED,
        NameID,
    )
    from saml2.server import Server
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

__all__ = ["ATTRIBUTES", "BINDINGS", "SIG_RSA_SHA1", "IdP", "Refused", "ava", "decode", "samlp"]

XMLSEC = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
ASSERTION_MINUTES = 5
#: Clocks of the portal and an SP may differ this much (seconds).
SKEW_SECONDS = 90
#: A decoded SAML message larger than this is refused (an AuthnRequest is about 1 KiB).
MAX_MESSAGE = 64 * 1024
#: How long a parsed ``Server`` (one SP's metadata) is reused; the registry is read anyway.
CACHE_SECONDS = 300
CACHE_SIZE = 32
PASSWORD_CLASS = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
BINDINGS = {"GET": BINDING_HTTP_REDIRECT, "POST": BINDING_HTTP_POST}
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NAMEID_FORMATS_SERVED = (NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED)

_OIDS = {a.name: a.oid for a in LDAP_ATTRIBUTES}
#: What an SP learns (friendly name, URI name), docs/apps.md's table.
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("mail", "urn:oid:0.9.2342.19200300.100.1.3"),
    ("displayName", "urn:oid:2.16.840.1.113730.3.1.241"),
    ("givenName", "urn:oid:2.5.4.42"),
    ("sn", "urn:oid:2.5.4.4"),
    ("eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"),
    ("mimsSchoolCode", f"urn:oid:{_OIDS['mimsSchoolCode']}"),
    ("mimsLevel", f"urn:oid:{_OIDS['mimsLevel']}"),
    ("mimsClass", f"urn:oid:{_OIDS['mimsClass']}"),
)
#: eduPerson's vocabulary for the portal's roles.
AFFILIATION = {"student": "student", "teacher": "faculty", "staff": "staff"}

# The portal session's sid, for the AuthnStatement's SessionIndex of the response being made
# (pysaml2 draws a random one; a Server is shared by threads, so not an attribute).
_SESSION_INDEX: ContextVar[str | None] = ContextVar("saml_session_index", default=None)


class Refused(Exception):
    """A SAML message the IdP will not act on; ``reason`` goes to the security log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ava(person: Person) -> dict[str, list[str]]:
    """The attribute values of ``person`` by friendly name (empty ones left out)."""
    values: dict[str, str | None] = {
        "mail": person.email, "displayName": person.name, "givenName": person.given_name,
        "sn": person.family_name, "eduPersonAffiliation": AFFILIATION.get(person.role),
        "mimsSchoolCode": person.school, "mimsLevel": person.level,
        "mimsClass": person.class_name,
    }
    return {k: [v] for k, v in values.items() if v}


def _converter() -> AttributeConverter:
    conv = AttributeConverter(NAME_FORMAT_URI)
    conv.from_dict({"identifier": NAME_FORMAT_URI,
                    "to": {friendly: uri for friendly, uri in ATTRIBUTES},
                    "fro": {uri: friendly for friendly, uri in ATTRIBUTES}})
    return conv


def decode(message: str, binding: str) -> bytes:
    """The XML of a SAML message as it arrived (base64, and DEFLATE for HTTP-Redirect), no
    larger than ``MAX_MESSAGE``: a small deflated message must not inflate to megabytes."""
    if not message or len(message) > 4 * MAX_MESSAGE:
        raise Refused("no message, or too large")
    try:
        raw = base64.b64decode(message, validate=False)
    except (binascii.Error, ValueError):
        raise Refused("not base64") from None
    if binding == BINDING_HTTP_REDIRECT:
        inflater = zlib.decompressobj(-15)
        try:
            raw = inflater.decompress(raw, MAX_MESSAGE + 1)
        except zlib.error:
            raise Refused("not DEFLATE") from None
        if inflater.unconsumed_tail:
            raise Refused("too large")
    if len(raw) > MAX_MESSAGE:
        raise Refused("too large")
    return raw


@dataclass(frozen=True)
class Peek:
    """What a message says of itself before anything is checked."""

    kind: str     # AuthnRequest | LogoutRequest | LogoutResponse
    issuer: str
    signed: bool  # an XML signature (HTTP-POST) is in it


def peek(xml: bytes) -> Peek:
    """The message's type and issuer (to find the SP whose keys will check it)."""
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError):
        raise Refused("not XML") from None
    tag = root.tag
    kind = tag.split("}", 1)[1] if tag.startswith(f"{{{SAMLP}}}") else ""
    if kind not in ("AuthnRequest", "LogoutRequest", "LogoutResponse"):
        raise Refused(f"not a message the IdP takes ({tag[:80]})")
    issuer = root.find(f"{{{SAML}}}Issuer")
    text = (issuer.text or "").strip() if issuer is not None else ""
    if not text:
        raise Refused("no Issuer")
    signed = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None
    return Peek(kind, text, signed)


def sp_signs_requests(sp: App) -> bool:
    """Does the SP's metadata say it signs its requests (``AuthnRequestsSigned="true"``)?"""
    try:
        root = SafeET.fromstring(sp.saml_metadata or "", forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError):
        return True  # unreadable: ask the most of it (its requests will fail anyway)
    desc = root.find(f"{{{MD}}}SPSSODescriptor")
    flag = (desc.get("AuthnRequestsSigned") or "") if desc is not None else ""
    return flag.strip().lower() in ("true", "1")


class _Server(Server):  # type: ignore[misc]
    """pysaml2's IdP without what the portal does not serve (the assertion store behind
    AssertionIDRequest and AuthnQuery would grow for ever), and with the portal session's
    sid as the AuthnStatement's SessionIndex."""

    def support_AssertionIDRequest(self) -> bool:
        return False

    def support_AuthnQuery(self) -> bool:
        return False

    def setup_assertion(self, *args: Any, **kwargs: Any) -> Any:
        assertion = super().setup_assertion(*args, **kwargs)
        index = _SESSION_INDEX.get()
        if index is not None:
            for statement in getattr(assertion, "authn_statement", None) or ():
                statement.session_index = index
        return assertion


class IdP:
    """Built once per app (``init``); ``server(sp)`` per message."""

    def __init__(self, cfg: Config) -> None:
        self.base = cfg.portal.public_url.rstrip("/")
        self.entity_id = f"{self.base}/saml/metadata"
        self.sso_url = f"{self.base}/saml/sso"
        self.slo_url = f"{self.base}/saml/slo"
        key, cert = saml_credentials(cfg.secrets_dir)
        self.key_file, self.cert_file = str(key), str(cert)
        self._lock = threading.Lock()
        self._servers: OrderedDict[tuple[str, str, bool], tuple[float, Server]] = OrderedDict()
        self._metadata: bytes | None = None

    # -- pysaml2's configuration ---------------------------------------------------------
    def _config(self, sp_metadata: str | None, want_signed: bool) -> IdPConfig:
        both = [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST]
        conf: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "only_use_keys_in_metadata": True,
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "accepted_time_diff": SKEW_SECONDS,
            "delete_tmpfiles": True,
            "service": {"idp": {
                "name": "MIMS portal",
                "endpoints": {
                    "single_sign_on_service": [(self.sso_url, b) for b in both],
                    "single_logout_service": [(self.slo_url, b) for b in both],
                },
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "want_authn_requests_signed": want_signed,
                "sign_response": True,
                "sign_assertion": True,
                "policy": {"default": {
                    "lifetime": {"minutes": ASSERTION_MINUTES},
                    "name_form": NAME_FORMAT_URI,
                    "nameid_format": NAMEID_FORMAT_EMAILADDRESS,
                    # An SP that lists RequestedAttribute gets those of ATTRIBUTES only; one
                    # the person has no value for is left out, not an error.
                    "fail_on_missing_requested": False,
                }},
            }},
        }
        if sp_metadata:
            conf["metadata"] = {"inline": [sp_metadata]}
        config = IdPConfig().load(conf)
        config.attribute_converters = [_converter()]
        return config

    def server(self, sp: App | None = None, *, want_signed: bool | None = None) -> Server:
        """A pysaml2 IdP that knows ``sp`` (its metadata as registered now) and, with
        ``want_signed``, requires its requests to be signed (default: as its metadata says)."""
        if want_signed is None:
            want_signed = sp is not None and sp_signs_requests(sp)
        xml = sp.saml_metadata if sp is not None else None
        key = (sp.saml_entity_id or "" if sp is not None else "",
               hashlib.sha256((xml or "").encode()).hexdigest(), want_signed)
        now = time.monotonic()
        with self._lock:
            hit = self._servers.get(key)
            if hit is not None and hit[0] > now:
                self._servers.move_to_end(key)
                return hit[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pysaml2's own deprecations, not ours to fix
            made = _Server(config=self._config(xml, want_signed))
        with self._lock:
            self._servers[key] = (now + CACHE_SECONDS, made)
            while len(self._servers) > CACHE_SIZE:
                self._servers.popitem(last=False)
        return made

    # -- what the IdP publishes ------------------------------------------------------------
    def metadata(self) -> bytes:
        """The IdP's metadata: entity id, signing certificate, SSO and SLO endpoints
        (HTTP-Redirect and HTTP-POST), NameID format emailAddress,
        ``WantAuthnRequestsSigned="false"`` (Google Workspace never signs; an SP that says it
        signs must). No algorithm list: the defaults would name MD5 and SHA-1."""
        if self._metadata is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ed = entity_descriptor(self._config(None, False))
            ed.extensions = None
            self._metadata = ed.to_string()
        return self._metadata

    # -- messages ----------------------------------------------------------------------------
    def authn_response(self, server: Server, *, person: Person, sp_entity_id: str,
                       acs_url: str, in_response_to: str | None, session_index: str,
                       authn_instant: int) -> str:
        """A signed Response with a signed assertion for ``person``."""
        token = _SESSION_INDEX.set(session_index)
        try:
            with _quiet():
                response = server.create_authn_response(
                    identity=ava(person), in_response_to=in_response_to,
                    destination=acs_url, sp_entity_id=sp_entity_id,
                    name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=person.email),
                    authn={"class_ref": PASSWORD_CLASS, "authn_instant": authn_instant},
                    sign_response=True, sign_assertion=True, sign_alg=SIG_RSA_SHA256,
                    digest_alg=DIGEST_SHA256)
        finally:
            _SESSION_INDEX.reset(token)
        return str(response)

    def error_response(self, server: Server, *, acs_url: str, in_response_to: str | None,
                       status: str, message: str) -> str:
        """A signed Response with no assertion: top-level Responder and ``status`` under it
        (``samlp.STATUS_REQUEST_DENIED``, ``STATUS_NO_PASSIVE``...)."""
        with _quiet():
            response = server.create_error_response(
                in_response_to, acs_url, (status, message), sign=True,
                sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        return str(response)

    def logout_response(self, server: Server, request: Any,
                        bindings: list[str]) -> tuple[str, str, str]:
        """``(binding, destination, xml)`` of a LogoutResponse (Success) to ``request``, to
        the SP's SingleLogoutService of the first of ``bindings`` it has. The XML is signed
        for HTTP-POST; for HTTP-Redirect the query string is signed instead, as that binding
        requires."""
        with _quiet():
            args = server.response_args(request, bindings)
            response = server.create_logout_response(
                request, bindings=[args["binding"]], sign=args["binding"] == BINDING_HTTP_POST,
                sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        return str(args["binding"]), str(args["destination"]), str(response)

    def logout_request(self, server: Server, *, destination: str, binding: str,
                       name_id: str, session_index: str | None) -> tuple[str, str]:
        """``(id, xml)`` of a LogoutRequest to an SP."""
        with _quiet():
            req_id, req = server.create_logout_request(
                destination, issuer_entity_id="",
                name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
                session_indexes=[session_index] if session_index else None,
                sign=binding == BINDING_HTTP_POST, sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
                expire=_in_minutes(ASSERTION_MINUTES))
        return str(req_id), str(req)

    def redirect_url(self, server: Server, xml: str, destination: str, relay_state: str,
                     kind: str) -> str:
        """The HTTP-Redirect binding's URL: DEFLATE, base64, and the query signed
        (RSA-SHA256)."""
        with _quiet():
            info = http_redirect_message(xml, destination, relay_state=relay_state, typ=kind,
                                         sigalg=SIG_RSA_SHA256, sign=True,
                                         backend=server.sec.sec_backend)
        return str(dict(info["headers"])["Location"])


def post_value(xml: str) -> str:
    """The HTTP-POST binding's form value: the XML in base64."""
    return base64.b64encode(xml.encode()).decode()


def _in_minutes(minutes: int) -> str:
    from saml2.time_util import in_a_while

    return str(in_a_while(minutes=minutes))


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
