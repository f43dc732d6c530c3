"""Security events and the access log, as files an ICT officer can read and a log shipper can
parse: one JSON object a line, mode 0600.

Security events say who (login ID as typed, the signed-in person's uid), from where (the
client address, after the trusted proxy), what, and why it failed: sign-in, sign-in failure
(wrong, unknown, inactive, waiting, throttled), SSPR failures and resets, question changes,
password changes, teacher resets and unlocks, sessions ended. Never a password or an answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request

from mimsdir.config import Config


class JsonLines:
    """Append-only JSON lines, one ``write`` each (concurrent threads never interleave)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        with self._lock:
            fd = os.open(self.path, flags, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def init(app: Flask, cfg: Config) -> None:
    app.extensions["mims_security_log"] = JsonLines(cfg.path(cfg.portal.security_log))
    access = JsonLines(cfg.path(cfg.portal.access_log))

    @app.before_request
    def started() -> None:
        g.mims_started = time.perf_counter()

    @app.after_request
    def access_log(resp: Response) -> Response:
        began = getattr(g, "mims_started", None)
        with contextlib.suppress(OSError):
            access.write({
                "time": _stamp(), "addr": request.remote_addr, "method": request.method,
                "path": request.path, "status": resp.status_code,
                "ms": round((time.perf_counter() - began) * 1000, 1) if began else None,
                "ua": (request.user_agent.string or "")[:200],
            })
        return resp


def security(event: str, login: str | None = None, **fields: Any) -> None:
    """One security event for the current request."""
    log: JsonLines | None = current_app.extensions.get("mims_security_log")
    if log is None:
        return
    record: dict[str, Any] = {"time": _stamp(), "event": event, "addr": request.remote_addr}
    if login is not None:
        record["login"] = login[:254]
    record.update({k: v for k, v in fields.items() if v is not None})
    with contextlib.suppress(OSError):  # a full disk must not stop a sign-in
        log.write(record)


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
