#!/usr/bin/env python3
"""Portal throughput against floors measured in the same run, on a throwaway directory:

- GET /login (render + headers)       vs  waitress serving a bare "ok" WSGI app
- a sign-in (POST /login, ppolicy bind) vs  the same number of LDAP binds as the student
  made directly with python-ldap (slapd's argon2 check is the floor of any sign-in)

Clients are threads on this machine, so client, portal and slapd share the same cores.
``serve`` and ``sign_in`` are also the portal workload of `make bench` (benchmarks/bench.py).
Usage: .venv/bin/python benchmarks/portal_speed.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import re
import socket
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import ldap
import waitress
import yaml

from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.portal import create_app

PASSWORD = "Bench-Pass-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app, port: int, threads: int = 8):  # type: ignore[no-untyped-def]
    srv = waitress.create_server(app, host="127.0.0.1", port=port, threads=threads)
    threading.Thread(target=srv.run, daemon=True).start()
    return srv


def stop(srv) -> None:  # type: ignore[no-untyped-def]
    """Let the worker threads finish what they serve, then close: closing first races a
    worker still answering (its wake-up of the closed loop fails with EBADF)."""
    srv.task_dispatcher.shutdown()
    srv.close()


def hammer(seconds: float, clients: int, one) -> float:  # type: ignore[no-untyped-def]
    """Requests per second of ``one()`` from ``clients`` threads for ``seconds``."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            one()
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def get(port: int, path: str) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    c.getresponse().read()
    c.close()


def sign_in(port: int, mail: str, password: str = PASSWORD) -> bool:
    """A browser's sign-in: GET /login (the form and its CSRF token), POST it. True when the
    portal signed the student in (a redirect elsewhere than back to /login); False when it
    answered with the form again (wrong password, throttled)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/login")
    r = c.getresponse()
    body = r.read().decode()
    cookie = r.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"csrf_token": token, "login_id": mail, "password": password})
    c.request("POST", "/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status == 302 and "/login" not in r.getheader("Location", "/login")


def sign_in_ok(port: int, mail: str) -> None:
    assert sign_in(port, mail), "the portal refused a sign-in"


def main() -> None:
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mims-portal-bench-"))
    (tmp / "config.yaml").write_text(yaml.safe_dump({
        # TLS required, as in production (docs/deploy.md).
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}",
                 "tls": {"mode": "generate", "require": True}},
        "directory": {"state_dir": str(tmp / "state")},
        # Every sign-in comes from one address, as the same login ID, from a new browser:
        # budgets no real client approaches (the throttle's check is still paid).
        "portal": {"address_limit": "1000000 per minute",
                   "account_limit": "1000000 per minute"},
    }))
    cfg = load_config(tmp / "config.yaml")
    server.up(cfg)
    dns = Dns(cfg.ldap.base_dn)
    dn = dns.student("BENCH1")
    mail = "bench1@students.bench.sg"
    try:
        with server.root_conn(cfg) as root:
            root.add(dn, {"objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [b"BENCH1"],
                          "cn": [b"Bench"], "sn": [b"Bench"], "mail": [mail.encode()],
                          "mimsSchoolCode": [b"B"], "mimsLevel": [b"P2"],
                          "mimsAccountStatus": [b"active"]}, "bench")
            root.set_password(dn, PASSWORD)
            root.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", [])], "bench")

        def bare(environ, start_response):  # type: ignore[no-untyped-def]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        p_bare, p_portal = free_port(), free_port()
        servers = [serve(bare, p_bare), serve(create_app(cfg), p_portal)]
        time.sleep(0.3)
        s, n = args.seconds, args.clients
        floor_get = hammer(s, n, lambda: get(p_bare, "/"))
        page = hammer(s, n, lambda: get(p_portal, "/login"))

        def bind() -> None:
            with network_conn(cfg) as c:
                assert c.bind_ppolicy(dn, PASSWORD).ok

        floor_bind = hammer(s, n, bind)
        signin = hammer(s, n, lambda: sign_in_ok(p_portal, mail))
        for srv in servers:
            stop(srv)
    finally:
        server.down(cfg)
    print(f"portal, {args.clients} client threads, {args.seconds:.0f} s each, this machine:")
    print(f"  GET /login:  {page:7.0f}/s  vs bare waitress {floor_get:7.0f}/s "
          f"({floor_get / page:.1f}x slower)")
    print(f"  sign-ins:    {signin:7.1f}/s  vs direct LDAP binds {floor_bind:6.1f}/s "
          f"({signin / floor_bind:.2f} of the floor)")


if __name__ == "__main__":
    main()
