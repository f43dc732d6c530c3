#!/usr/bin/env python3
"""What a student's bind costs with slapd's argon2 parameters, against a floor measured in the
same run: raw argon2 at the same parameters (the code of slapd's module; one thread), which
is the least any bind must cost, and an LDAP whoami round trip (the protocol's own cost without
hashing).

Usage: .venv/bin/python benchmarks/bind_cost.py [--config config.yaml] [--n 50]
Needs a running directory (`make demo`); creates and deletes one throwaway student.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import ldap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory.server import root_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import MimsError


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    cfg = load_config(args.config)
    a = workloads.slapd_params(cfg)
    one_hash = workloads.hasher(a)
    dns = Dns(cfg.ldap.base_dn)
    dn = dns.student("BENCH0001")
    pw = "Bench-pass-1234"
    with root_conn(cfg) as root:
        with contextlib.suppress(MimsError):  # absent: nothing to clean
            root.delete(dn, "cleanup")
        root.add(dn, {"objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [b"BENCH0001"],
                      "cn": [b"Bench"], "sn": [b"Bench"], "mimsSchoolCode": [b"BENCH"],
                      "mimsLevel": [b"P4"], "mimsAccountStatus": [b"active"]}, "bench add")
        root.set_password(dn, pw)
        root.modify(dn, [(ldap.MOD_DELETE, "pwdReset", None)], "bench")
    try:
        t0 = time.perf_counter()
        for _ in range(args.n):
            one_hash()
        raw = (time.perf_counter() - t0) / args.n

        c = network_conn(cfg)
        c.bind(dn, pw)
        t0 = time.perf_counter()
        for _ in range(args.n):
            c.whoami()
        rtt = (time.perf_counter() - t0) / args.n
        c.close()

        # A new connection, TLS as configured (StartTLS and the certificate check), no bind.
        t0 = time.perf_counter()
        for _ in range(args.n):
            with network_conn(cfg) as c:
                c.whoami()
        connect = (time.perf_counter() - t0) / args.n

        t0 = time.perf_counter()
        for _ in range(args.n):
            with network_conn(cfg) as c:
                c.bind(dn, pw)
        bind = (time.perf_counter() - t0) / args.n
    finally:
        with root_conn(cfg) as root:
            root.delete(dn, "cleanup")
    print(f"argon2{a.type.name.lower()} m={a.memory_cost} t={a.time_cost} p={a.parallelism}, "
          f"n={args.n}, sequential, one client")
    tls = "StartTLS + " if cfg.ldap.tls.client_starttls else ""
    rows = [("raw argon2 hash (floor):", raw, 1), ("LDAP whoami round trip:", rtt, 2),
            (f"connect + {tls}whoami:", connect, 2), ("connect + bind as student:", bind, 1)]
    for label, seconds, digits in rows:
        print(f"  {label:30} {seconds * 1000:7.{digits}f} ms")
    print(f"  (a bind costs {bind / raw:.2f}x the raw argon2 floor)")

if __name__ == "__main__":
    main()
