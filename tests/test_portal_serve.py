"""`mimsdir sspr serve` runs the portal under waitress (a production WSGI server)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

MIMSDIR = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "mimsdir"


def test_serve_answers_healthz_and_pages(slapd) -> None:  # type: ignore[no-untyped-def]
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([str(MIMSDIR), "--config", str(Path(slapd.base_path) / "config.yaml"),
                             "sspr", "serve", "--listen", f"127.0.0.1:{port}", "--threads", "4",
                             "--metrics-listen", f"127.0.0.1:{metrics_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200 and b'"ok"' in r.read()
                    assert r.headers["Server"] == "mims-portal"
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert r.status == 200 and "Content-Security-Policy" in r.headers
        # /metrics on its own listener (loopback), never on the portal's address.
        with pytest.raises(urllib.error.HTTPError) as public:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert public.value.code == 404
        public.value.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert 'mims_portal_requests_total{endpoint="auth.login",method="GET",status="200"}' \
            in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err
