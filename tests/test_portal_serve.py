"""`mimsdir sspr serve` runs the portal under waitress (a production WSGI server)."""

from __future__ import annotations

import socket
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


def test_serve_refuses_a_bad_metrics_listen(slapd) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from mimsdir.cli import main

    res = CliRunner().invoke(main, ["--config", str(Path(slapd.base_path) / "config.yaml"),
                                    "sspr", "serve", "--metrics-listen", "9108"])
    assert res.exit_code == 2 and "--metrics-listen" in res.output


def test_a_taken_metrics_port_is_a_configuration_error(slapd) -> None:  # type: ignore[no-untyped-def]
    """The metrics listener is bound before the portal's own port: the operator hears of a
    clash at once (exit 2, the key named), before any traffic."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        res = subprocess.run([str(MIMSDIR), "--config", str(Path(slapd.base_path) / "config.yaml"),
                              "sspr", "serve", "--listen", f"127.0.0.1:{free_port()}",
                              "--metrics-listen", f"127.0.0.1:{busy}"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2, res.stderr
    assert f"portal.metrics_listen 127.0.0.1:{busy}: Address already in use" in res.stderr
