#!/usr/bin/env python3
"""How fast the roster sync is, against floors measured in the same run on the same directory.

- read + plan of an unchanged school  vs  `ldapsearch` paging the same entries and attributes
- applying N class changes            vs  `ldapmodify` of the same N modifies (one connection)
- creating N students (with passwords and slips)  vs  N raw argon2 hashes at slapd's
  parameters on all cores at once (slapd hashes every new password: the least it can cost)

Starts its own throwaway directory (temp state dir, free port), so it never touches the demo.
Usage: .venv/bin/python benchmarks/sync_speed.py [--n 1000]
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import workloads
from mimsdir.config import load_config
from mimsdir.directory import server
from mimsdir.sync.run import SyncOptions, run
from mimsdir.sync.state import ATTRS as STATE_ATTRS  # the floor reads what the sync reads

SCHOOL = "BENCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roster(path: Path, n: int, class_suffix: str = "A") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "email", "given_name", "family_name", "school_code", "level",
                    "class"])
        for i in range(n):
            level = f"P{2 + i % 5}"
            w.writerow([f"B{i:07d}", f"b{i}@students.bench.sg", f"Kid{i}", "Tan", SCHOOL, level,
                        f"{level[1]}{chr(ord(class_suffix) + (i // 5) % 4)}"])
    return path


def _argon(a) -> None:  # type: ignore[no-untyped-def]
    workloads.hasher(a)()


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    n = ap.parse_args().n
    tmp = Path(tempfile.mkdtemp(prefix="mims-bench-"))
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(yaml.safe_dump({
        # TLS required, as in production (docs/deploy.md).
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}",
                 "tls": {"mode": "generate", "require": True}},
        "directory": {"state_dir": str(tmp / "state")},
        "sync": {"slips_dir": str(tmp / "slips"), "state_dir": str(tmp / "sync"),
                 "max_disable": "100%", "max_shrink": "100%"},
    }))
    cfg = load_config(cfg_path)
    server.up(cfg)
    try:
        a = workloads.slapd_params(cfg)
        first = roster(tmp / "r1.csv", n)
        t_create = timed(lambda: run(cfg, SyncOptions(roster=first)))
        # The floor: argon2 at slapd's parameters (the code of slapd's module) on every
        # core at once (memory bandwidth, not only cores, limits parallel argon2: measure it
        # rather than divide).
        cores = os.cpu_count() or 1
        k = 20 * cores
        with ProcessPoolExecutor(cores) as pool:
            list(pool.map(_argon, [a] * cores))  # warm the workers up
            t0 = time.perf_counter()
            list(pool.map(_argon, [a] * k))
        argon = (time.perf_counter() - t0) / k  # seconds per hash, all cores busy
        floor_create = n * argon

        t_plan = timed(lambda: run(cfg, SyncOptions(roster=first, dry_run=True)))
        pw_file = cfg.secrets_dir / "sync.pw"
        base = f"ou=students,{cfg.ldap.base_dn}"
        # ldap-utils over StartTLS with the same CA, as the sync's own connection.
        env = {**os.environ, "LDAPTLS_CACERT": str(cfg.tls_ca_file)}
        search = ["ldapsearch", "-x", "-ZZ", "-LLL", "-H", cfg.ldap.uri, "-D",
                  f"cn=sync,ou=services,{cfg.ldap.base_dn}", "-y", str(pw_file), "-b", base,
                  "-E", "pr=1000/noprompt", f"(mimsSchoolCode={SCHOOL})", *STATE_ATTRS]
        t_search = timed(lambda: subprocess.run(search, check=True, capture_output=True,
                                                env=env))

        moved = roster(tmp / "r2.csv", n, class_suffix="M")
        t_update = timed(lambda: run(cfg, SyncOptions(roster=moved)))
        ldif = tmp / "mods.ldif"
        with ldif.open("w") as fh:
            for i in range(n):
                fh.write(f"dn: uid=B{i:07d},{base}\nchangetype: modify\nreplace: mimsClass\n"
                         f"mimsClass: Z{i % 7}\n\n")
        modify = ["ldapmodify", "-x", "-ZZ", "-H", cfg.ldap.uri, "-D",
                  f"cn=sync,ou=services,{cfg.ldap.base_dn}", "-y", str(pw_file), "-f", str(ldif)]
        t_modify = timed(lambda: subprocess.run(modify, check=True, capture_output=True,
                                                env=env))
    finally:
        server.down(cfg)
    print(f"mimsdir sync, {n} students, one school, {os.cpu_count()} cores, this run:")
    print(f"  read + plan, unchanged:   {t_plan:6.2f} s  vs ldapsearch same entries "
          f"{t_search:5.2f} s  ({t_plan / t_search:4.1f}x)")
    print(f"  apply {n} class changes: {t_update:6.2f} s  vs ldapmodify same modifies "
          f"{t_modify:5.2f} s  ({t_update / t_modify:4.1f}x)")
    print(f"  create {n} students:     {t_create:6.2f} s  vs argon2 floor "
          f"{floor_create:5.2f} s ({n} hashes at {1 / argon:.0f}/s on {cores} cores) "
          f"({t_create / floor_create:4.1f}x)")
    print(f"  (state in {tmp})")


if __name__ == "__main__":
    main()
