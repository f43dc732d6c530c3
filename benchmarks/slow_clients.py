#!/usr/bin/env python3
"""Slow clients (slowloris) against a bare waitress and against nginx in front of it, both
with the portal's own settings (mimsdir/portal/serving.py, scripts/nginx/mims-portal.conf.in).

Each slow client opens a connection, sends part of a request line and then one more header
byte every second, as a slowloris client does. Measured, on loopback:

- whether a normal client still gets an answer, and how fast;
- how long nginx keeps a trickling client before cutting it off (client_header_timeout).

The app is a bare "ok" WSGI app: what is measured is the server in front, not the portal's
pages. Needs nginx (scripts/bootstrap.sh). Runs about 25 s.
Usage: .venv/bin/python benchmarks/slow_clients.py [--clients 120]
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mimsdir.config import PortalConfig
from mimsdir.portal import serving
from tests.browser import serve_wsgi
from tests.nginx import make_ca, run_nginx


def ok_app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


class Trickle:
    """``count`` slow clients, each sending one header byte a second until stopped."""

    def __init__(self, connect: Callable[[], socket.socket], count: int) -> None:
        self.socks = []
        for _ in range(count):
            s = connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            self.socks.append(s)
        self.closed_after: list[float] = []
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        alive = list(self.socks)
        while alive and not self.stop.wait(1.0):
            for s in list(alive):
                try:
                    s.sendall(b"a")
                except OSError:  # the server cut it off
                    self.closed_after.append(time.monotonic() - self.started)
                    alive.remove(s)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def probe(url_host: str, port: int, tls: ssl.SSLContext | None, timeout: float) -> float | None:
    """Seconds for a normal GET to be answered, or None within ``timeout``."""
    t0 = time.monotonic()
    try:
        raw = socket.create_connection((url_host, port), timeout=timeout)
        s = tls.wrap_socket(raw, server_hostname=url_host) if tls else raw
        with s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if not s.recv(100).startswith(b"HTTP/1.1 200"):
                return None
    except OSError:
        return None
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=120)
    args = ap.parse_args()
    adj = serving.adjustments(PortalConfig(trusted_proxies=1))
    with tempfile.TemporaryDirectory() as tmp, serve_wsgi(ok_app, **adj) as upstream:
        host, port = upstream.removeprefix("http://").split(":")
        print(f"waitress alone, {args.clients} slow clients:")
        print(f"  normal client before: {probe(host, int(port), None, 5):.3f} s")
        slow = Trickle(lambda: socket.create_connection((host, int(port)), timeout=5),
                       args.clients)
        time.sleep(0.5)
        took = probe(host, int(port), None, 5)
        print("  normal client during: " + (f"{took:.3f} s" if took else "no answer in 5 s"))
        slow.close()
        time.sleep(0.5)
        print(f"  normal client after they go: {probe(host, int(port), None, 5):.3f} s")

        ca = make_ca(Path(tmp) / "tls")
        tls = ssl.create_default_context(cafile=str(ca.ca_pem))
        with run_nginx(Path(tmp) / "nginx", ca, upstream.removeprefix("http://")) as proxy:
            def connect() -> socket.socket:
                raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                return tls.wrap_socket(raw, server_hostname="127.0.0.1")

            print(f"nginx in front (TLS), {args.clients} slow clients:")
            slow = Trickle(connect, args.clients)
            time.sleep(0.5)
            took = probe("127.0.0.1", proxy.port, tls, 5)
            print("  normal client during: " + (f"{took:.3f} s" if took else "no answer in 5 s"))
            deadline = time.monotonic() + 20
            while len(slow.closed_after) < args.clients and time.monotonic() < deadline:
                time.sleep(0.5)
            cut = sorted(slow.closed_after)
            if cut:
                print(f"  slow clients cut off by nginx: {len(cut)}/{args.clients}, after "
                      f"{cut[0]:.1f}-{cut[-1]:.1f} s (client_header_timeout 10s)")
            else:
                print("  no slow client was cut off within 20 s")
            slow.close()


if __name__ == "__main__":
    main()
