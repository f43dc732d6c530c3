"""Form posts must come from the portal's own pages: the CSRF token, and where the browser
says the post came from.

Why not Flask-WTF's own check (``WTF_CSRF_SSL_STRICT``): over HTTPS it demands a same-origin
``Referer``, which a page sent with ``Referrer-Policy: no-referrer`` never produces (every post
failed: "This page has expired"), and which privacy tools and some school filters strip. The
``Origin`` header is the browser's own statement of where a post comes from, sent with every
form post by current browsers, and not stripped by those tools. With ``no-referrer`` a browser
sends ``Origin: null`` even to the same site, so the portal sends
``Referrer-Policy: same-origin``: its own pages get the real origin (and Referer), every other
site still gets nothing.

The rule, for every request that Flask-WTF protects (exempt views stay exempt):

- an ``Origin`` header must be the portal's own origin (``null`` is refused);
- without one, a ``Referer`` must be on the portal's own origin;
- with neither, the post is refused over HTTPS (as Flask-WTF did: a current browser always
  sends one) and allowed over plain HTTP (the demo, scripts), where the token still holds.

The token (bound to the session, whose cookie is ``SameSite=Lax``) is checked first, as
before: this is a second, independent wall, not a replacement.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import g, request
from flask_wtf.csrf import CSRFError, CSRFProtect

log = logging.getLogger("mimsdir.portal")

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or an Origin value, the port made explicit; None for
    anything that is not an http(s) origin (``null``, garbage)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def check_same_origin() -> None:
    """Raise CSRFError unless this request's Origin (else Referer) is the portal's own."""
    ours = origin_of(f"{request.scheme}://{request.host}/")
    claimed = request.headers.get("Origin")
    what = "Origin"
    if claimed is None:
        claimed, what = request.headers.get("Referer"), "Referer"
    if claimed is None:
        if request.is_secure:
            raise CSRFError("neither Origin nor Referer on a form post over HTTPS")
        return
    if origin_of(claimed) != ours or ours is None:
        # Behind a TLS proxy whose headers are not trusted, the portal believes it is on
        # http:// and refuses every post: say so in the log, the likely cause.
        log.warning("refused a form post: %s %r is not this portal's %s://%s (behind a "
                    "proxy? see portal.trusted_proxies)", what, claimed[:100], request.scheme,
                    request.host)
        raise CSRFError(f"the {what} is not this site")


class OriginCheckedCSRF(CSRFProtect):
    """Flask-WTF's CSRF protection with the origin check above after its token check (set
    ``WTF_CSRF_SSL_STRICT`` off: that Referer-only rule is replaced, not stacked)."""

    def protect(self, apply_exemptions: bool = False) -> None:
        super().protect(apply_exemptions)
        # g.csrf_valid is set by Flask-WTF only when it has checked a token on this request:
        # an exempt view or a safe method is left alone here too.
        if g.get("csrf_valid"):
            try:
                check_same_origin()
            except CSRFError:
                g.csrf_valid = False
                raise
