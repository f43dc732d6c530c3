"""Sessions, CSRF, headers, rate limits and error pages: the portal's security, in one place.

- Session cookie: HttpOnly, SameSite=Strict, Secure behind TLS (``portal.secure_cookies``);
  cleared and rebuilt at sign-in (a new cookie, so a planted one is worth nothing); an idle
  timeout checked on every request, not only by the cookie's expiry.
- CSRF: Flask-WTF's token on every form, and the post's Origin (else Referer) must be the
  portal's own (origin.py: why not Flask-WTF's Referer-only check over HTTPS).
- Headers: a Content-Security-Policy with no inline script or style, frame-ancestors none,
  nosniff, no referrer to other sites, and no-store on every page (any page may carry a
  secret).
- Rate limits per client address on every form post (Flask-Limiter); the per-student SSPR
  back-off lives in the directory.
- Errors: a friendly page with a reference number; the detail goes to the log only.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from mimsdir.config import Config
from mimsdir.errors import DirectoryUnavailable, MimsError
from mimsdir.portal.origin import OriginCheckedCSRF
from mimsdir.portal.serving import MAX_BODY_BYTES

log = logging.getLogger("mimsdir.portal")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")

csrf = OriginCheckedCSRF()


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
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=p.secure_cookies,
        # The cookie outlives the idle timeout so the server, which checks the signed "seen"
        # time on every request, can say "you were signed out" instead of silently
        # forgetting; a school day is the hard limit.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which itself times out
        WTF_CSRF_SSL_STRICT=False,  # replaced by the Origin check (origin.py), not stacked
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,  # waitress refuses larger bodies first (serving.py)
    )
    # No ProxyFix: waitress reads X-Forwarded-For/-Proto, from the trusted proxy only
    # (portal.trusted_proxies, trusted_proxy_address; mimsdir/portal/serving.py).
    csrf.init_app(app)
    # One limiter per app: its counters and decorated routes belong to this app only.
    app.extensions["mims_limiter"] = Limiter(get_remote_address, app=app, default_limits=[],
                                             storage_uri=p.rate_limit_storage,
                                             headers_enabled=False)

    idle = p.idle_timeout_minutes * 60

    @app.before_request
    def idle_timeout() -> ResponseReturnValue | None:
        session.permanent = True
        now = time.time()
        seen = session.get("seen")
        if "who" in session and seen is not None and now - float(seen) > idle:
            lang = session.get("lang")
            session.clear()
            if lang:
                session["lang"] = lang
            session["notice"] = "timeout"
            if request.endpoint not in ("auth.login", "static"):
                return redirect(url_for("auth.login"))
        if request.endpoint != "static":
            session["seen"] = now
        return None

    @app.after_request
    def headers(resp: Response) -> Response:
        h = resp.headers
        h["Content-Security-Policy"] = CSP
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
    def too_many(exc: HTTPException) -> tuple[str, int]:
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


def limit_posts(app: Flask, cfg: Config) -> None:
    """Every form post, per client address: loose enough for a class behind one NAT."""
    limiter: Limiter = app.extensions["mims_limiter"]
    for name, view in list(app.view_functions.items()):
        if name == "static" or name.startswith("ops."):
            continue
        app.view_functions[name] = limiter.limit(cfg.portal.address_limit,  # type: ignore[assignment]
                                                 methods=["POST"])(view)
