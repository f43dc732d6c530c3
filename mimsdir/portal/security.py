"""Sessions, CSRF, headers, rate limits and error pages: the portal's security, in one place.

- Sessions are server-side (``sessions.py``): the cookie is a browser-session cookie
  (HttpOnly, SameSite=Lax, Secure behind TLS) carrying a random token, the CSRF token and
  the language, nothing personal. Every request loads the record from the directory and ends
  it when it is too old, idle, or its person changed password or is no longer active.
- CSRF: Flask-WTF's token on every form, and the post's Origin (else Referer) must be the
  portal's own (origin.py: why not Flask-WTF's Referer-only check over HTTPS).
- Headers: a Content-Security-Policy with no inline script or style, frame-ancestors none,
  nosniff, no referrer to other sites, and no-store on every page (any page may carry a
  secret).
- Budgets (``throttle.py``): one per client across every form post; failures per login ID
  in the views. The per-student SSPR back-off lives in the directory.
- Errors: a friendly page with a reference number; the detail goes to the log only.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, Response, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mimsdir.config import Config
from mimsdir.errors import DirectoryUnavailable, MimsError
from mimsdir.portal import sessions
from mimsdir.portal.origin import OriginCheckedCSRF
from mimsdir.portal.serving import MAX_BODY_BYTES
from mimsdir.portal.throttle import DEVICE_COOKIE, Device, Throttle

log = logging.getLogger("mimsdir.portal")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")


def onward_origin() -> str | None:
    """The one application origin this page's form posts may end at, named beside 'self' in
    ``form-action``. Chrome and Safari check ``form-action`` against every redirect that
    follows a form post (w3c/webappsec-csp#8), so a sign-in on its way to an application
    (POST /login -> / -> /oauth/authorize -> the application's redirect URI) was blocked by
    ``'self'`` alone. The origin is the redirect URI's in the sign-in request the page carries
    (``next``), in the session (``resume``: a forced change or questions on the way) or in
    its own address (the consent page), or the post-logout address (the sign-out question).
    It only widens where the portal's own redirects may go; the portal redirects to
    registered addresses only."""
    from urllib.parse import parse_qs, urlsplit

    from mimsdir.portal.origin import origin_of

    uri: str | None = None
    if request.path == "/oauth/logout":
        uri = request.values.get("post_logout_redirect_uri")
    else:
        onward = (request.full_path if request.path == "/oauth/authorize"
                  else request.values.get("next") or sessions.get("resume"))
        if isinstance(onward, str) and urlsplit(onward).path == "/oauth/authorize":
            uri = next(iter(parse_qs(urlsplit(onward).query).get("redirect_uri", [])), None)
    found = origin_of(uri) if uri else None
    if found is None or not _HOST.fullmatch(found[1]):
        return None
    scheme, host, port = found
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

csrf = OriginCheckedCSRF()
# An origin that may stand in a CSP source list: nothing that could end the directive.
_ORIGIN = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def csp(form_action: tuple[str, ...] | list[str] = ()) -> str:
    """The policy, with ``form-action`` widened to these origins (``scheme://host[:port]``)
    for one response only: a view that sends the browser on with a form post to an
    application (SAML's HTTP-POST binding) sets ``g.csp_form_action`` to that one origin."""
    extra = " ".join(dict.fromkeys(o for o in form_action if _ORIGIN.fullmatch(o)))
    if not extra:
        return CSP
    return CSP.replace("form-action 'self'", f"form-action 'self' {extra}")


def secret_key(cfg: Config) -> bytes:
    """The cookie-signing key: from ``portal.secret_key_file``, else generated once into the
    secrets dir (0600). Instances behind one address must share it."""
    path = Path(cfg.path(cfg.portal.secret_key_file)) if cfg.portal.secret_key_file \
        else cfg.secrets_dir / "portal.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        from mimsdir.errors import ConfigError

        raise ConfigError(f"{path}: the portal key is too short (at least 32 characters)")
    return key.encode()


def init(app: Flask, cfg: Config) -> None:
    p = cfg.portal
    app.secret_key = secret_key(cfg)
    app.config.update(
        SESSION_COOKIE_NAME="mims_session",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: an application sends the child here with a top-level link to
        # /oauth/authorize, and that request must carry the cookie or single sign-on never
        # happens. Cross-site posts are still refused (the CSRF token and the Origin check).
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=p.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which itself times out
        WTF_CSRF_SSL_STRICT=False,  # replaced by the Origin check (origin.py), not stacked
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,  # waitress refuses larger bodies first (serving.py)
    )
    # No ProxyFix: waitress reads X-Forwarded-For/-Proto, from the trusted proxy only
    # (portal.trusted_proxies, trusted_proxy_address; mimsdir/portal/serving.py).
    csrf.init_app(app)
    app.extensions["mims_throttle"] = Throttle(app.secret_key, p.rate_limit_storage,
                                               p.address_limit, p.device_limit,
                                               p.account_limit)
    idle = timedelta(minutes=p.idle_timeout_minutes)

    @app.before_request
    def load_session() -> ResponseReturnValue | None:
        """The server-side record behind the cookie, or none; an ended one is deleted and
        the person sent to sign in again."""
        if request.endpoint in _STATELESS:
            return None
        from mimsdir.portal.views.common import directory

        token = session.get("sid")
        if not isinstance(token, str) or not token:
            return None
        d = directory()
        rec = d.session_load(sessions.token_key(token))
        at = _now()
        why: str | None = "expired" if rec is None else None
        if rec is not None:
            subject = d.subject(rec.subject) if rec.subject else None
            why = sessions.verdict(rec, at, idle, subject)
        if why is None and rec is not None:
            g.mims_session = rec
            if rec.subject and at - rec.seen >= sessions.TOUCH_EVERY:
                rec.seen = at
                d.session_touch(rec)
            return None
        if rec is not None:
            d.session_delete(rec.key)
        had_person = rec is None or rec.subject is not None
        sessions.keep_cookie_only("lang")
        if had_person:
            session["notice"] = "timeout" if why in ("idle", "expired") else "ended"
            if request.endpoint not in ("auth.login", "auth.start"):
                return redirect(url_for("auth.login"))
        return None

    @app.before_request
    def form_budget() -> ResponseReturnValue | None:
        """One budget per client across every form post."""
        if request.method != "POST" or request.endpoint in _STATELESS:
            return None
        throttle: Throttle = app.extensions["mims_throttle"]
        if throttle.form_post(request.remote_addr or "-", device()):
            return None
        from mimsdir.portal import events

        events.security("throttled", scope="client", path=request.path)
        return too_many(None)

    @app.after_request
    def save_session(resp: Response) -> Response:
        rec = sessions.current()
        if rec is not None and rec.dirty:
            from mimsdir.portal.views.common import directory

            if not rec.key:
                token = sessions.new_token()
                rec.key = sessions.token_key(token)
                session["sid"] = token
            directory().session_save(rec)
        _purge_now_and_then(app)
        return resp

    @app.after_request
    def headers(resp: Response) -> Response:
        h = resp.headers
        onward = onward_origin() if resp.mimetype == "text/html" else None
        h["Content-Security-Policy"] = csp([*(g.get("csp_form_action") or ()),
                                            *([onward] if onward else [])])
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        # Not no-referrer: with it a browser sends "Origin: null" even to this site, and the
        # CSRF origin check (origin.py) needs the real one. Other sites still get nothing.
        h["Referrer-Policy"] = "same-origin"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.endpoint != "static":
            h["Cache-Control"] = "no-store"
            h["Pragma"] = "no-cache"
        if p.secure_cookies:
            h["Strict-Transport-Security"] = "max-age=31536000"
        return resp

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        return render_template("message.html", title=_("This page has expired"),
                               text=_("Please go back, reload the page and try again.")), 400

    @app.errorhandler(429)
    def too_many(exc: HTTPException | None) -> tuple[str, int]:
        return render_template("message.html", title=_("Too many tries"),
                               text=_("Too many tries from this computer. Please wait a "
                                      "minute and try again.")), 429

    @app.errorhandler(404)
    def not_found(exc: HTTPException) -> tuple[str, int]:
        return render_template("message.html", title=_("Page not found"),
                               text=_("There is no page here.")), 404

    @app.errorhandler(DirectoryUnavailable)
    def directory_down(exc: DirectoryUnavailable) -> tuple[str, int]:
        ref = _reference()
        log.error("ref %s: directory unavailable: %s", ref, exc)
        return render_template("message.html", title=_("Please try again later"),
                               text=_("The sign-in service is busy right now. Please try "
                                      "again in a few minutes."), reference=ref), 503

    @app.errorhandler(MimsError)
    @app.errorhandler(Exception)
    def crashed(exc: Exception) -> tuple[str, int] | HTTPException:
        if isinstance(exc, HTTPException):
            return exc
        ref = _reference()
        # The detail (never a form value: none is put into exceptions) goes to the log.
        log.error("ref %s: %s %s failed: %s", ref, request.method, request.path,
                  exc.__class__.__name__, exc_info=exc)
        return render_template("message.html", title=_("Something went wrong"),
                               text=_("Sorry, something went wrong. If it happens again, "
                                      "tell your teacher this number:"), reference=ref), 500


def _reference() -> str:
    ref = getattr(g, "reference", None) or uuid.uuid4().hex[:8].upper()
    g.reference = ref
    return ref


# Endpoints that need no session: static files and the operators' probes.
_STATELESS = frozenset({"static", "ops.healthz", "ops.prometheus", "oidc.token",
                        "oidc.userinfo", "oidc.revoke", "oidc.introspect", "oidc.discovery",
                        "oidc.jwks", "saml.metadata"})
PURGE_EVERY = 300.0


def device() -> Device | None:
    """This browser's device cookie, if it carries a valid one (see ``throttle.py``)."""
    if "mims_device" not in g:
        throttle: Throttle = _app().extensions["mims_throttle"]
        g.mims_device = throttle.read_device(request.cookies.get(DEVICE_COOKIE))
    return g.mims_device  # type: ignore[no-any-return]


def remember_device(resp: Response, login_id: str, cfg: Config) -> None:
    """After a successful sign-in: this browser is now familiar for this login ID."""
    throttle: Throttle = _app().extensions["mims_throttle"]
    dev = (device() or throttle.new_device()).with_account(throttle.account(login_id))
    resp.set_cookie(DEVICE_COOKIE, throttle.write_device(dev), max_age=180 * 86400,
                    secure=cfg.portal.secure_cookies, httponly=True, samesite="Strict")


def _app() -> Flask:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _now() -> datetime:
    return datetime.now(UTC)


def _purge_now_and_then(app: Flask) -> None:
    """Delete ended sessions and SSPR states, at most every few minutes per instance."""
    last = app.extensions.get("mims_purged", 0.0)
    now = time.monotonic()
    if now - last < PURGE_EVERY:
        return
    app.extensions["mims_purged"] = now
    from mimsdir.portal.views.common import directory

    try:
        directory().purge_sessions(_now())
    except MimsError as exc:
        log.warning("purging ended sessions failed: %s", exc)
