#!/usr/bin/env python3
"""`make bench`: every national-scale workload against its floor, measured in one run.

Starts a throwaway directory (temp state dir, free port, TLS required as in production),
loads the national data set of SIZE students (benchmarks/national.py) with
``directory load --offline``, then measures, each against a floor taken in the same run:

- a no-op nightly sync (nothing changed) vs ``ldapsearch`` as cn=sync of the same entries
  and attributes plus reading the CSV; its peak memory (the sync runs as its own process);
- a guard refusing (exit 3, nothing written) vs the same floor;
- 2% class moves: the whole sync vs ``ldapmodify`` of the same modifies;
- ``directory status`` at SIZE;
- the "next night" roster (new pupils, leavers, moves, name and email changes): reported,
  no floor (new pupils' passwords cost argon2, measured by benchmarks/sync_speed.py).

Writes benchmarks/results/<date>-<size>.json and .md. Usage:
  .venv/bin/python benchmarks/bench.py [--size 100000] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import national
from mimsdir.config import Config, load_config
from mimsdir.directory import loader, server
from mimsdir.sync.state import ATTRS as STATE_ATTRS

RESULTS = Path(__file__).resolve().parent / "results"
MIMSDIR = str(Path(sys.executable).with_name("mimsdir"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in bytes) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n{err[-2000:]}")
    return seconds, proc.returncode, usage.ru_maxrss * 1024


def read_csv(path: Path) -> int:
    """Floor of reading a roster: every row through Python's csv module, nothing else."""
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh))


class Bench:
    def __init__(self, size: int, tmp: Path) -> None:
        self.size, self.tmp = size, tmp
        cfg_path = tmp / "config.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}",
                     "tls": {"mode": "generate", "require": True}},
            "directory": {"state_dir": str(tmp / "state")},
            "sync": {"slips_dir": str(tmp / "slips"), "state_dir": str(tmp / "sync")},
        }))
        self.cfg_path = cfg_path
        self.cfg: Config = load_config(cfg_path)
        self.env = {**os.environ, "LDAPTLS_CACERT": str(self.cfg.tls_ca_file)}
        self.results: dict[str, Any] = {}

    def ldap_tool(self, tool: str, *args: str) -> list[str]:
        pw_file = self.cfg.secrets_dir / "sync.pw"
        return [tool, "-x", "-ZZ", "-H", self.cfg.ldap.uri, "-D",
                f"cn=sync,ou=services,{self.cfg.ldap.base_dn}", "-y", str(pw_file), *args]

    def sync(self, roster: Path, report: Path) -> tuple[float, int, int, dict[str, Any]]:
        seconds, code, rss = run_measured(
            [MIMSDIR, "--config", str(self.cfg_path), "sync", str(roster), "--report",
             str(report)], env=self.env)
        return seconds, code, rss, json.loads(report.read_text())

    def floor_read(self, roster: Path) -> tuple[float, float]:
        """(ldapsearch seconds, CSV read seconds): what any sync must at least do."""
        base = f"ou=students,{self.cfg.ldap.base_dn}"
        search = self.ldap_tool("ldapsearch", "-LLL", "-b", base, "-s", "one", "-E",
                                "pr=1000/noprompt", "(objectClass=mimsStudent)", *STATE_ATTRS)

        def run_search() -> None:
            with open(os.devnull, "wb") as null:
                subprocess.run(search, check=True, stdout=null, env=self.env)

        t_search, _ = timed(run_search)
        t_csv, _ = timed(lambda: read_csv(roster))
        return t_search, t_csv

    def run(self) -> dict[str, Any]:
        n, tmp, r = self.size, self.tmp, self.results
        base_rows = list(national.rows(n))
        roster = national.write_roster(tmp / "roster.csv", base_rows)
        ldif = tmp / "national.ldif"
        server.up(self.cfg)  # cn=config, the base tree, the secrets
        server.down(self.cfg)
        pw_hash = server.hash_password(self.cfg, "Bench-Only-Password-1")
        t_gen, entries = timed(lambda: national.write_ldif(ldif, roster, self.cfg.ldap.base_dn,
                                                            pw_hash, self.cfg.posix))
        r["generate"] = {"entries": entries, "seconds": round(t_gen, 2)}

        load = loader.load_offline(self.cfg, ldif)
        r["load_offline"] = {"entries": load.entries, "seconds": round(load.seconds, 2),
                             "per_second": round(load.rate)}
        t_up, _ = timed(lambda: server.up(self.cfg))
        r["directory_up"] = {"seconds": round(t_up, 2)}
        t_status, st = timed(lambda: server.status(self.cfg))
        r["directory_status"] = {"seconds": round(t_status, 3), "students": st.students}
        print(f"loaded {load.entries} entries in {load.seconds:.1f} s; up {t_up:.1f} s; "
              f"status {t_status:.2f} s", flush=True)

        # The no-op sync, twice (the first warms slapd's caches as a nightly run finds them).
        for attempt in (1, 2):
            t_noop, code, rss, rep = self.sync(roster, tmp / f"noop{attempt}.json")
            changed = {k: v for k, v in rep["planned"].items() if v and k != "unchanged"}
            if code != 0 or changed or rep["planned"]["unchanged"] != n:
                raise SystemExit(f"the no-op sync was not one: exit {code}, {rep['planned']}")
        t_search, t_csv = self.floor_read(roster)
        floor = t_search + t_csv
        r["noop_sync"] = {"seconds": round(t_noop, 2), "peak_rss_mib": round(rss / 2**20),
                          "floor_seconds": round(floor, 2), "floor_ldapsearch": round(t_search, 2),
                          "floor_csv": round(t_csv, 2), "ratio": round(t_noop / floor, 2)}
        print(f"no-op sync {t_noop:.1f} s ({rss / 2**20:.0f} MiB) vs floor {floor:.1f} s "
              f"(ldapsearch {t_search:.1f} + csv {t_csv:.1f}): {t_noop / floor:.1f}x", flush=True)

        # A guard refusing: every tenth pupil missing from the same file that the cron job
        # reads (more than sync.max_disable would be disabled).
        national.write_roster(roster, [b for i, b in enumerate(base_rows) if i % 10])
        t_guard, code, _, rep = self.sync(roster, tmp / "guard.json")
        national.write_roster(roster, base_rows)
        if code != 3:
            raise SystemExit(f"the guard did not refuse: exit {code}")
        r["guard_refusal"] = {"seconds": round(t_guard, 2), "vs_noop": round(t_guard / t_noop, 2),
                              "refused": rep["refused"][:1]}
        print(f"guard refusal {t_guard:.1f} s ({t_guard / t_noop:.2f}x the no-op)", flush=True)

        # 2% class moves: the whole sync vs ldapmodify of the same modifies.
        moved_rows, moved = national.class_moves(base_rows, 0.02)
        national.write_roster(roster, moved_rows)
        t_delta, code, _, rep = self.sync(roster, tmp / "delta.json")
        if code != 0 or rep["applied"].get("move", 0) != len(moved):
            raise SystemExit(f"the class moves were not applied: {rep.get('applied')}")
        mods = tmp / "mods.ldif"
        teachers = self._teacher_dns()
        with mods.open("w", encoding="utf-8") as fh:
            # Back to the original classes: the same number of the same modifies.
            by_id = {b.student_id: b for b in base_rows}
            for m in moved:
                b = by_id[m.student_id]
                fh.write(f"dn: uid={m.student_id},ou=students,{self.cfg.ldap.base_dn}\n"
                         f"changetype: modify\nreplace: mimsClass\nmimsClass: {b.class_name}\n-\n"
                         f"replace: mimsFormTeacher\nmimsFormTeacher: {teachers[b.teacher]}\n"
                         f"-\n\n")

        def run_modify() -> None:
            subprocess.run(self.ldap_tool("ldapmodify", "-f", str(mods)), check=True,
                           stdout=subprocess.DEVNULL, env=self.env)

        t_modify, _ = timed(run_modify)
        r["delta_2pct"] = {"changes": len(moved), "seconds": round(t_delta, 2),
                           "floor_ldapmodify": round(t_modify, 2),
                           "ratio": round(t_delta / t_modify, 2)}
        print(f"2% class moves ({len(moved)}): sync {t_delta:.1f} s vs ldapmodify "
              f"{t_modify:.1f} s: {t_delta / t_modify:.1f}x", flush=True)
        return r

    def _teacher_dns(self) -> dict[str, str]:
        out = subprocess.run(self.ldap_tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b",
                                            f"ou=staff,{self.cfg.ldap.base_dn}", "-E",
                                            "pr=1000/noprompt", "(mail=*)", "mail"),
                             check=True, capture_output=True, text=True, env=self.env).stdout
        found: dict[str, str] = {}
        dn = ""
        for line in out.splitlines():
            if line.startswith("dn: "):
                dn = line[4:]
            elif line.startswith("mail: "):
                found[line[6:]] = dn
        return found


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "load_before": [round(load1, 2), round(load5, 2)],
            "slapd": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "slapd"],
                                    capture_output=True, text=True).stdout}


def markdown(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [
        ("no-op nightly sync", f"{r['noop_sync']['seconds']} s, "
         f"{r['noop_sync']['peak_rss_mib']} MiB peak",
         f"ldapsearch + CSV {r['noop_sync']['floor_seconds']} s", f"{r['noop_sync']['ratio']}x"),
        ("a guard refusing", f"{r['guard_refusal']['seconds']} s", "the no-op sync",
         f"{r['guard_refusal']['vs_noop']}x"),
        (f"2% class moves ({r['delta_2pct']['changes']})", f"{r['delta_2pct']['seconds']} s",
         f"ldapmodify {r['delta_2pct']['floor_ldapmodify']} s", f"{r['delta_2pct']['ratio']}x"),
        ("directory status", f"{r['directory_status']['seconds']} s", "", ""),
        ("offline load (slapadd)", f"{r['load_offline']['seconds']} s",
         f"{r['load_offline']['per_second']} entries/s", ""),
    ]
    m = data["machine"]
    head = (f"`make bench SIZE={data['size']}` on {data['date']}: {m['cores']} cores, "
            f"load before {m['load_before']}, slapd {m['slapd']}\n\n"
            "| workload | measured | floor (same run) | ratio |\n|---|---|---|---|\n")
    return head + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="leave the temp directory")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mims-bench-"))
    started = datetime.now(UTC)
    info = machine()
    bench = Bench(args.size, tmp)
    try:
        results = bench.run()
    finally:
        server.down(bench.cfg)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    data = {"size": args.size, "date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": info,
            "results": results}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{started:%Y-%m-%d}-{args.size}"
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    table = markdown(data)
    stem.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
