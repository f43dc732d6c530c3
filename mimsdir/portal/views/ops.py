"""For the operators' tools: /healthz (is the directory reachable with the portal's
account?) and /metrics (Prometheus)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from mimsdir.portal.metrics import metrics
from mimsdir.portal.views.common import directory

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    if directory().healthy():
        return jsonify(status="ok")
    return jsonify(status="directory unreachable"), 503


@bp.get("/metrics")
def prometheus():  # type: ignore[no-untyped-def]
    return metrics(current_app).render()
