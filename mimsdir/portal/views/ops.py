"""For the operators' tools: /healthz (is the directory reachable with the portal's
account?). /metrics is not here: it is served on its own listener (portal.metrics_listen,
mimsdir/portal/serving.py), because its directory timings tell an outsider which login IDs
exist."""

from __future__ import annotations

from flask import Blueprint, jsonify

from mimsdir.portal.views.common import directory

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    if directory().healthy():
        return jsonify(status="ok")
    return jsonify(status="directory unreachable"), 503
