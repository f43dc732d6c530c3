"""Prometheus metrics for /metrics: requests, resets, failures, back-offs, directory latency.

One registry per app, so tests that build several apps do not collide.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("mims_portal_requests", "HTTP requests",
                                ["endpoint", "method", "status"], registry=r)
        self.resets = Counter("mims_portal_password_resets", "passwords set for someone",
                              ["kind"], registry=r)
        self.changes = Counter("mims_portal_password_changes", "own passwords changed",
                               registry=r)
        self.failures = Counter("mims_portal_failures", "failed sign-ins and SSPR answers",
                                ["kind"], registry=r)
        self.backoffs = Counter("mims_portal_sspr_backoffs", "SSPR back-offs started",
                                registry=r)
        self.directory = Histogram("mims_portal_directory_seconds",
                                   "time of directory look-ups and binds", registry=r,
                                   buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

    def render(self) -> Response:
        return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)


def init(app: Flask) -> None:
    m = Metrics()
    app.extensions["mims_metrics"] = m

    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(resp):  # type: ignore[no-untyped-def]
        m.requests.labels(request.endpoint or "none", request.method, str(resp.status_code)).inc()
        return resp


def metrics(app: Flask) -> Metrics:
    return app.extensions["mims_metrics"]  # type: ignore[no-any-return]
