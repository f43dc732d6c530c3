#!/usr/bin/env python3
"""What a device sign-in costs through each stack, against a bare bind in the same run.

A device sign-in: `pamtester login <email> authenticate` in the namespace of nslcd or SSSD
(tests/devices.py: the files of docs/devices.md, StartTLS, the directory's CA): the PAM
stack, the look-up as the device account, then the student's bind. The floor: `ldapwhoami
-x -ZZ` as the student (a new process, StartTLS, the certificate check, one bind), what a
device cannot do with less. Rounds take the three in turn, each round starting with another
(no order bias on a busy machine); median and p95 (nearest rank) of N each.

Usage (as root, for the namespaces):
  .venv/bin/python benchmarks/device_signin.py [--config config.yaml] [--n 20]
Needs a running directory (`make demo`); creates and deletes one throwaway student.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mimsdir.config import load_config
from mimsdir.directory.server import root_conn
from mimsdir.directory.slapdconf import Dns
from tests.conftest import Factory
from tests.devices import Device


def timed(argv: list[str], stdin: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=30)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {p.stdout} {p.stderr}")
    return took


def p95(xs: list[float]) -> float:
    return sorted(xs)[math.ceil(0.95 * len(xs)) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    cfg = load_config(args.config)
    assert cfg.tls_ca_file is not None, "the directory serves no TLS"
    env = {**os.environ, "LDAPTLS_CACERT": str(cfg.tls_ca_file)}
    with root_conn(cfg) as root:
        make = Factory(cfg, root, Dns(cfg.ldap.base_dn), school="BENCHDEV")
        s = make.student(posix=True, password="Bench-kite-4821")
        try:
            with Device("nslcd", cfg) as nslcd, Device("sssd", cfg) as sssd:
                bare = ["ldapwhoami", "-x", "-ZZ", "-H", cfg.ldap.uri, "-D", s.dn, "-w",
                        s.password]

                def device(d: Device) -> list[str]:
                    return ["nsenter", "--target", str(d.pid), "--mount", "--pid", "--",
                            "pamtester", "login", s.mail, "authenticate"]

                paths = {"bare bind (ldapwhoami -ZZ)": (bare, ""),
                         "nslcd (pamtester)": (device(nslcd), s.password + "\n"),
                         "SSSD (pamtester)": (device(sssd), s.password + "\n")}
                for argv, stdin in paths.values():  # warm up: connections, caches
                    timed(argv, stdin, env)
                times: dict[str, list[float]] = {name: [] for name in paths}
                names = list(paths)
                for i in range(args.n):
                    for name in names[i % 3:] + names[:i % 3]:
                        argv, stdin = paths[name]
                        times[name].append(timed(argv, stdin, env))
        finally:
            make.cleanup()
    floor = statistics.median(times[names[0]])
    print(f"{args.n} sign-ins each, same run ({os.cpu_count()} cores):")
    for name, xs in times.items():
        med = statistics.median(xs)
        print(f"  {name:<28} median {med * 1000:6.1f} ms   p95 {p95(xs) * 1000:6.1f} ms"
              f"   {med / floor:4.2f}x the bare bind")


if __name__ == "__main__":
    main()
