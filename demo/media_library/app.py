"""The demo media library: a small SAML 2.0 service provider that signs a child in through
the MIMS portal (the IdP) and shows what the portal's assertion said.

It does what a school's SAML application should, with pysaml2 (``saml2.client``) and no
code of the portal's:

- its own key and certificate (made once by ``make demo``), published in its metadata with
  ``AuthnRequestsSigned="true"`` and ``WantAssertionsSigned="true"``: every AuthnRequest and
  LogoutRequest it sends is signed (RSA-SHA256; the HTTP-Redirect binding signs the query);
- it trusts the IdP's metadata only (fetched from the portal by ``make demo``): the
  signature of the Response **and** of the assertion must verify with the certificate in it,
  the issuer must be the portal, the audience this SP, ``Destination``/``Recipient`` its ACS,
  the times valid (60 s of clock difference), and ``InResponseTo`` a request this SP sent
  and has not had answered yet (kept on the server, found by its RelayState: in a real
  deployment the portal's post arrives cross-site, without this app's ``SameSite=Lax``
  cookie). **Unsolicited responses (IdP-initiated sign-in) are refused**: the demo always
  starts at its own "Sign in with MIMS";
- its own sessions live on the server, keyed by a random value in its cookie, so that the
  portal's ``LogoutRequest`` (the child signed out elsewhere) can end them;
- "Sign out" ends its session and sends a signed ``LogoutRequest`` (NameID, SessionIndex) to
  the portal's ``/saml/slo``: the portal ends its session and every other application's
  (OpenID Connect back-channel logout, other SPs through the browser) and answers with a
  ``LogoutResponse``, which must be signed by the portal and answer the request sent;
- the portal's own ``LogoutRequest`` (signed, from the portal, to this SP, fresh, never seen
  before) ends the sessions of that NameID and SessionIndex here, and is answered with a
  signed ``LogoutResponse``.

Demo only: one process, sessions in memory (a restart signs everyone out of it), a cookie key
made at start.
"""

from __future__ import annotations

import calendar
import contextlib
import secrets
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, redirect, render_template, request, session, url_for

with warnings.catch_warnings():
    # pysaml2 7.5 names a cipher mode (CFB) that cryptography has moved; it is never used.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor
    from saml2.response import StatusError
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
    from saml2.samlp import STATUS_SUCCESS
    from saml2.sigver import verify_redirect_signature
    from saml2.time_util import in_a_while, str_to_time
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{portal}; "
       "frame-ancestors 'none'; base-uri 'none'")
#: Clocks of the portal and this app may differ this much (seconds).
SKEW = 60
#: A request of ours waits this long for its answer; a LogoutRequest of the portal's may be
#: this old; the IDs of those seen are remembered this long.
WAIT = 600
#: Attributes the home page names first (friendly names, as the portal sends them).
FIRST = ("displayName", "givenName", "sn", "mail", "eduPersonAffiliation", "mimsSchoolCode",
         "mimsLevel", "mimsClass")


@dataclass
class Settings:
    """Who the media library is. ``base_url`` and ``idp_metadata`` may be filled in after
    the app is made (the tests serve it before they know its port); nothing reads them
    earlier than the first request that needs pysaml2."""

    base_url: str                 # where this app is reached, e.g. http://127.0.0.1:8082
    key_file: str                 # its private key (PEM)
    cert_file: str                # its certificate (PEM), in its metadata
    idp_metadata: str = ""        # the portal's /saml/metadata (XML)
    portal: str = ""              # the portal's address (the CSP's form-action)
    title: str = "Media library"
    cookie_name: str = "media_library"

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/saml/metadata"

    @property
    def acs(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def slo(self) -> str:
        return f"{self.base_url}/saml/slo"


def sp_config(settings: Settings) -> SPConfig:
    """pysaml2's configuration of this SP, in code."""
    conf: dict[str, Any] = {
        "entityid": settings.entity_id,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": settings.key_file,
        "cert_file": settings.cert_file,
        "accepted_time_diff": SKEW,
        "delete_tmpfiles": True,
        # The portal's own attributes (school code, level, class) are kept by their URI names.
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "name": "Demo media library",
            "endpoints": {
                "assertion_consumer_service": [(settings.acs, BINDING_HTTP_POST)],
                "single_logout_service": [(settings.slo, BINDING_HTTP_REDIRECT)],
            },
            "authn_requests_signed": True,
            "logout_requests_signed": True,
            "logout_responses_signed": True,
            "want_response_signed": True,
            "want_assertions_signed": True,
            "want_assertions_or_response_signed": True,
            "allow_unsolicited": False,
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
        }},
    }
    if settings.idp_metadata:
        conf["metadata"] = {"inline": [settings.idp_metadata]}
    with _quiet():
        return SPConfig().load(conf)


def sp_metadata(settings: Settings) -> str:
    """This SP's metadata, what ``mimsdir app add --saml --metadata`` registers: entity ID,
    signing certificate, ACS (HTTP-POST), SLO (HTTP-Redirect), AuthnRequestsSigned and
    WantAssertionsSigned. The same settings give the same text (``make demo`` compares it
    with the registered one). No algorithm list: pysaml2's would name SHA-1."""
    with _quiet():
        ed = entity_descriptor(sp_config(settings))
    ed.extensions = None
    return str(ed.to_string().decode())


@dataclass
class LocalSession:
    name_id: str
    session_index: str | None
    who: str
    nameid_format: str
    attributes: list[tuple[str, str, str]]  # (friendly name, name, value)
    started: float = field(default_factory=time.time)


class LocalSessions:
    """This app's sessions by a random key its cookie carries, the requests it sent that
    wait for an answer (by their RelayState), and the portal's LogoutRequest IDs seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, LocalSession] = {}
        self._waiting: dict[str, tuple[str, str, float]] = {}  # relay -> (kind, id, when)
        self._seen: dict[str, float] = {}

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

    def end_matching(self, name_id: str, indexes: list[str]) -> int:
        """The portal's LogoutRequest: the sessions of that NameID (and of those
        SessionIndexes, when it names any)."""
        with self._lock:
            gone = [k for k, s in self._by_key.items() if s.name_id == name_id
                    and (not indexes or s.session_index in indexes)]
            for k in gone:
                del self._by_key[k]
        return len(gone)

    def wait(self, relay: str, kind: str, request_id: str) -> None:
        """Remember a request we sent (``authn`` or ``logout``), by the RelayState sent
        with it: the answer brings it back."""
        now = time.time()
        with self._lock:
            self._waiting = {r: w for r, w in self._waiting.items() if w[2] > now - WAIT}
            self._waiting[relay] = (kind, request_id, now)

    def waiting(self, kind: str, relay: object) -> str | None:
        """The ID of our request of that kind that this RelayState names, if it still
        waits for its answer."""
        if not isinstance(relay, str):
            return None
        with self._lock:
            found = self._waiting.get(relay)
        if found is None or found[0] != kind or found[2] < time.time() - WAIT:
            return None
        return found[1]

    def answered(self, relay: str) -> bool:
        """The answer (checked) has come: True once, so a copy of it counts for nothing."""
        with self._lock:
            return self._waiting.pop(relay, None) is not None

    def first_time(self, message_id: str) -> bool:
        now = time.time()
        with self._lock:
            self._seen = {m: t for m, t in self._seen.items() if t > now - 2 * WAIT}
            if message_id in self._seen:
                return False
            self._seen[message_id] = now
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)


class Refused(Exception):
    """A SAML message this SP does not act on (shown on the problem page)."""


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_NAME=settings.cookie_name, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")
    local = LocalSessions()
    app.extensions["media_library"] = local
    lock = threading.RLock()
    made: dict[str, Any] = {}

    def client() -> Saml2Client:
        """pysaml2's SP, made at first use (from the settings as they are then)."""
        with lock:
            if "client" not in made:
                with _quiet():
                    made["client"] = Saml2Client(config=sp_config(settings))
                idps = list(made["client"].metadata.identity_providers())
                if len(idps) != 1:
                    raise RuntimeError("the IdP's metadata must describe one IdP")
                made["idp"] = idps[0]
            return made["client"]  # type: ignore[no-any-return]

    def idp_entity_id() -> str:
        client()
        return str(made["idp"])

    def current() -> LocalSession | None:
        return local.get(session.get("ml"))

    def page(template: str, status: int = 200, **kw: Any) -> tuple[str, int]:
        return render_template(template, title=settings.title, **kw), status

    def problem(text: str, detail: str | None = None, status: int = 400) -> tuple[str, int]:
        return page("problem.html", status, problem=text, detail=detail)

    @app.after_request
    def headers(resp: Response) -> Response:
        # The sign-in and sign-out forms lead on to the portal: form-action must allow it.
        resp.headers["Content-Security-Policy"] = CSP.format(
            portal=f" {settings.portal}" if settings.portal else "")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def home():  # type: ignore[no-untyped-def]
        s = current()
        if s is None:
            ended = session.pop("ended", None)
            if "ml" in session:  # ours, but ended by the portal's LogoutRequest
                session.pop("ml")
                ended = "elsewhere"
            return page("signed_out.html", ended=ended)
        return page("home.html", s=s,
                    signed_in_at=time.strftime("%H:%M:%S", time.localtime(s.started)))

    @app.get("/saml/metadata")
    def metadata():  # type: ignore[no-untyped-def]
        return Response(sp_metadata(settings), content_type="application/samlmetadata+xml")

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        """SP-initiated sign-in: a signed AuthnRequest over HTTP-Redirect."""
        local.end(session.pop("ml", None))
        relay = secrets.token_urlsafe(24)  # names the request when the answer comes
        with lock, _quiet():
            request_id, info = client().prepare_for_authenticate(
                entityid=idp_entity_id(), binding=BINDING_HTTP_REDIRECT, sign=True,
                sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
                nameid_format=NAMEID_FORMAT_EMAILADDRESS, relay_state=relay)
        local.wait(relay, "authn", request_id)
        return redirect(_location(info), code=303)

    @app.post("/saml/acs")
    def acs():  # type: ignore[no-untyped-def]
        """The portal's Response (HTTP-POST): every check is pysaml2's, with the request it
        answers as the only outstanding one."""
        relay = request.form.get("RelayState")
        request_id = local.waiting("authn", relay)
        if request_id is None:
            return problem("This sign-in was not started here, or it was answered already.",
                           "Unsolicited or replayed responses are refused.")
        try:
            with lock, _quiet():
                resp = client().parse_authn_request_response(
                    request.form.get("SAMLResponse", ""), BINDING_HTTP_POST,
                    outstanding={request_id: "/"})
            if resp is None or resp.issuer() != idp_entity_id():
                raise Refused("not a response of the portal")
            info = resp.session_info()
        except StatusError as exc:  # RequestDenied (not for this child), NoPassive, ...
            return problem("The portal did not sign you in.", str(exc) or type(exc).__name__)
        except Exception as exc:  # signature, audience, times, InResponseTo, ...
            return problem("The answer from the portal could not be checked.",
                           f"{type(exc).__name__}: {str(exc)[:200]}")
        if not local.answered(str(relay)):  # the same response twice at once
            return problem("This sign-in was answered already.")
        name_id = info["name_id"]
        attributes = _attributes(resp.assertion)
        key = local.start(LocalSession(
            name_id=(name_id.text or "").strip(), session_index=info.get("session_index"),
            nameid_format=name_id.format or "", who=who_line(attributes, name_id.text),
            attributes=attributes))
        session["ml"] = key
        return redirect(url_for("home"), code=303)

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        """Single logout: a signed LogoutRequest to the portal (HTTP-Redirect)."""
        s = current()
        local.end(session.pop("ml", None))
        if s is None:
            return redirect(url_for("home"), code=303)
        with lock, _quiet():
            c = client()
            idp = idp_entity_id()
            destination = _idp_slo(c, idp)
            request_id, req = c.create_logout_request(
                destination, idp, name_id=NameID(format=s.nameid_format or None,
                                                 text=s.name_id),
                session_indexes=[s.session_index] if s.session_index else None,
                sign=False, expire=in_a_while(minutes=5))
            relay = secrets.token_urlsafe(24)
            local.wait(relay, "logout", request_id)
            info = c.apply_binding(BINDING_HTTP_REDIRECT, str(req), destination, relay,
                                   sign=True, sigalg=SIG_RSA_SHA256)
        return redirect(_location(info), code=303)

    @app.get("/saml/slo")
    def slo():  # type: ignore[no-untyped-def]
        """The portal's LogoutResponse (to our request) or LogoutRequest (the child was
        signed out elsewhere), HTTP-Redirect, the query signed by the portal."""
        values = request.args
        try:
            if values.get("SAMLResponse"):
                return logout_answered(values)
            if values.get("SAMLRequest"):
                return logout_asked(values)
        except Refused as exc:
            return problem("This sign-out message was not accepted.", str(exc))
        return redirect(url_for("home"), code=303)

    def verified(values: Any, kind: str) -> None:
        """The HTTP-Redirect binding's signature over the query, by the portal's key."""
        sigalg, signature = values.get("SigAlg"), values.get("Signature")
        if not sigalg or not signature:
            raise Refused("not signed")
        if sigalg != SIG_RSA_SHA256:
            raise Refused(f"signature algorithm {sigalg} (RSA-SHA256 only)")
        msg = {kind: values[kind], "SigAlg": sigalg, "Signature": signature}
        if "RelayState" in values:
            msg["RelayState"] = values["RelayState"]
        c = client()
        certs = c.metadata.certs(idp_entity_id(), "idpsso", "signing")
        try:
            ok = any(verify_redirect_signature(msg, c.sec.sec_backend, cert)
                     for _name, cert in certs)
        except Exception:
            ok = False
        if not ok:
            raise Refused("the signature does not verify with the portal's certificate")

    def logout_answered(values: Any) -> Any:
        relay = values.get("RelayState")
        request_id = local.waiting("logout", relay)
        if request_id is None:
            raise Refused("a LogoutResponse to no request of ours")
        with lock, _quiet():
            verified(values, "SAMLResponse")
            try:
                answer = client().parse_logout_request_response(values["SAMLResponse"],
                                                                BINDING_HTTP_REDIRECT)
            except Exception as exc:
                raise Refused(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if answer is None or answer.issuer() != idp_entity_id():
            raise Refused("not a LogoutResponse of the portal")
        if answer.response.in_response_to != request_id:
            raise Refused("a LogoutResponse to another request")
        if not local.answered(str(relay)):
            raise Refused("this LogoutResponse was used already")
        status = answer.response.status.status_code.value
        session["ended"] = "here" if status == STATUS_SUCCESS else "here-only"
        return redirect(url_for("home"), code=303)

    def logout_asked(values: Any) -> Any:
        with lock, _quiet():
            verified(values, "SAMLRequest")
            c = client()
            try:
                parsed = c.parse_logout_request(
                    values["SAMLRequest"], BINDING_HTTP_REDIRECT,
                    relay_state=values.get("RelayState"), sigalg=values.get("SigAlg"),
                    signature=values.get("Signature"))
            except Exception as exc:  # Destination not ours, not a LogoutRequest, ...
                raise Refused(f"{type(exc).__name__}: {str(exc)[:200]}") from None
            msg = parsed.message if parsed is not None else None
            if msg is None or parsed.sender() != idp_entity_id():
                raise Refused("not a LogoutRequest of the portal")
            if msg.destination != settings.slo:  # required (pysaml2 checks it if present)
                raise Refused("sent to another address")
            _fresh(msg.issue_instant, msg.not_on_or_after)
            if not local.first_time(str(msg.id)):
                raise Refused("this LogoutRequest was used already")
            name_id = (msg.name_id.text or "").strip() if msg.name_id is not None else ""
            indexes = [(i.text or "").strip() for i in msg.session_index or ()]
            if name_id:
                local.end_matching(name_id, indexes)
            # Success either way: nobody with that NameID is signed in here any more.
            response = c.create_logout_response(msg, bindings=[BINDING_HTTP_REDIRECT],
                                                sign=False)
            args = c.response_args(msg, [BINDING_HTTP_REDIRECT])
            info = c.apply_binding(args["binding"], str(response), args["destination"],
                                   values.get("RelayState") or "", response=True, sign=True,
                                   sigalg=SIG_RSA_SHA256)
        return redirect(_location(info), code=303)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return Response("ok\n", content_type="text/plain")

    @app.errorhandler(404)
    def not_found(_e: Exception):  # type: ignore[no-untyped-def]
        return problem("There is no such page here.", status=404)

    @app.errorhandler(405)
    def not_allowed(_e: Exception):  # type: ignore[no-untyped-def]
        return problem("This page cannot be used that way.", status=405)

    return app


def who_line(attributes: list[tuple[str, str, str]], name_id: str | None) -> str:
    """``Wei Ling Tan (P2, 2A)`` for a student; ``Jason Lim (faculty)`` for a teacher."""
    got = {friendly: value for friendly, _name, value in attributes}
    name = got.get("displayName") or got.get("mail") or name_id or "?"
    detail = [got[k] for k in ("mimsLevel", "mimsClass") if got.get(k)]
    if not got.get("mimsLevel") and got.get("eduPersonAffiliation"):
        detail = [got["eduPersonAffiliation"]]
    return f"{name} ({', '.join(detail)})" if detail else name


def _attributes(assertion: Any) -> list[tuple[str, str, str]]:
    """(friendly name, name, value) of every attribute value, as the assertion has them:
    the best known first."""
    rows = []
    for statement in getattr(assertion, "attribute_statement", None) or ():
        for attr in statement.attribute or ():
            for value in attr.attribute_value or ():
                rows.append((attr.friendly_name or "", attr.name or "",
                             (value.text or "").strip()))
    order = {name: i for i, name in enumerate(FIRST)}
    return sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))


def _fresh(issue_instant: str | None, not_on_or_after: str | None) -> None:
    now = time.time()
    issued = str_to_time(issue_instant) if issue_instant else None
    if issued is None:
        raise Refused("no IssueInstant")
    at = calendar.timegm(issued)
    if at > now + SKEW or at < now - WAIT - SKEW:
        raise Refused("issued too long ago, or in the future")
    if not_on_or_after:
        until = str_to_time(not_on_or_after)
        if until is None or calendar.timegm(until) < now - SKEW:
            raise Refused("expired")


def _idp_slo(c: Saml2Client, idp: str) -> str:
    services = c.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")
    for service in services or ():
        if service.get("location"):
            return str(service["location"])
    raise RuntimeError("the portal's metadata has no HTTP-Redirect SingleLogoutService")


def _location(info: dict[str, Any]) -> str:
    return str(dict(info["headers"])["Location"])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
