"""How the portal is served: waitress's settings in one place, used by ``mimsdir sspr serve``
and by the tests that put nginx in front of it, so the tests prove what production runs.

Proxy headers are read by **waitress, not by werkzeug's ProxyFix** (one mechanism, never both
stacked): waitress knows the peer that really connected and believes ``X-Forwarded-For`` and
``-Proto`` only when that peer is ``portal.trusted_proxy_address``; from anyone else it
deletes them. ProxyFix only counts hops, so a client reaching the portal's port directly could
name any address it liked and get a fresh rate-limit bucket with every request.

Bodies are refused by waitress itself, from the ``Content-Length`` header, before a byte of the
body is read: left to Flask, waitress first spools up to its default 1 GiB to a temp file.

``/metrics`` is served on its own listener (``portal.metrics_listen``, loopback by default),
never on the public port: its directory timings tell an outsider which login IDs exist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from mimsdir.config import Config, PortalConfig
from mimsdir.errors import ConfigError

log = logging.getLogger("mimsdir.portal")

# The largest form post the portal accepts (the longest form is a few hundred bytes); Flask's
# MAX_CONTENT_LENGTH says the same, for servers other than waitress.
MAX_BODY_BYTES = 64 * 1024
# Headers: a browser sends about 1 KiB (with the session cookie); nginx's own limit is 4 x 8 KiB.
MAX_HEADER_BYTES = 32 * 1024
# An idle connection is closed after this. Behind nginx a connection carries one whole,
# already-buffered request, so a long wait only ever means a slow or stuck client.
CHANNEL_TIMEOUT_SECONDS = 30
# Exactly what nginx sets (docs/deploy.md); X-Forwarded-Host and Forwarded stay untrusted:
# nginx passes the browser's own Host header, which the CSRF origin check compares against.
TRUSTED_PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def adjustments(portal: PortalConfig) -> dict[str, Any]:
    """waitress's settings for the portal, apart from where it listens and its thread count."""
    adj: dict[str, Any] = {
        "ident": "mims-portal",
        # waitress refuses a Content-Length >= max_request_body_size: +1 keeps it equal to
        # Flask's limit, and an accepted body always stays in memory (inbuf_overflow).
        "max_request_body_size": MAX_BODY_BYTES + 1,
        "inbuf_overflow": MAX_BODY_BYTES + 1,
        "max_request_header_size": MAX_HEADER_BYTES,
        "channel_timeout": CHANNEL_TIMEOUT_SECONDS,
        "cleanup_interval": 10,
        # poll(), not select(): no limit at file descriptor 1024.
        "asyncore_use_poll": True,
        # Headers from a peer that is not the trusted proxy are deleted, not just ignored.
        "clear_untrusted_proxy_headers": True,
    }
    if portal.trusted_proxies:
        adj.update(trusted_proxy=portal.trusted_proxy_address,
                   trusted_proxy_count=portal.trusted_proxies,
                   trusted_proxy_headers=set(TRUSTED_PROXY_HEADERS))
    return adj


def metrics_wsgi(app: Flask) -> WsgiApp:
    """The app's Prometheus registry at ``/metrics``, and nothing else, for the metrics
    listener."""
    from prometheus_client import make_wsgi_app

    from mimsdir.portal.metrics import metrics

    exporter = make_wsgi_app(metrics(app).registry)

    def serve_metrics(environ: dict[str, Any],
                      start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] not in {"GET",
                                                                                       "HEAD"}:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the metrics are at /metrics\n"]
        return exporter(environ, start_response)  # type: ignore[no-any-return]

    return serve_metrics


def serve(cfg: Config, app: Flask, listen: str, threads: int,
          metrics_listen: str | None) -> None:
    """Run the portal on ``listen`` and, when set, its metrics on ``metrics_listen``, until
    the process is stopped. The metrics listener is bound first: a port already taken there is
    a configuration error before the portal takes any traffic."""
    from waitress.server import create_server

    if metrics_listen:
        try:
            metrics_server = create_server(metrics_wsgi(app), listen=metrics_listen, threads=1,
                                           ident="mims-portal-metrics",
                                           max_request_body_size=1,
                                           channel_timeout=CHANNEL_TIMEOUT_SECONDS)
        except OSError as exc:
            raise ConfigError(f"portal.metrics_listen {metrics_listen}: "
                              f"{exc.strerror or exc}") from None
        threading.Thread(target=metrics_server.run, name="metrics-listener",
                         daemon=True).start()
        log.info("metrics on http://%s/metrics", metrics_listen)
    server = create_server(app, listen=listen, threads=threads, **adjustments(cfg.portal))
    try:
        server.run()
    finally:
        # The metrics thread is a daemon: it ends with the process (closing its sockets from
        # here, outside its loop, would race with that loop).
        server.close()
