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
- a first load: N new pupils of new schools (``--first-load``) synced with passwords and
  slips vs N argon2 hashes at the parameters of the hashes slapd made, on every core at once;

and the sign-ins (benchmarks/workloads.py), against the argon2 verifications a second of every
core at the parameters of the students' hashes (taken before, between and after them; each
workload against the mean of the two around it):

- a storm of device sign-ins (``--clients`` devices, simple binds over StartTLS as distinct
  students), one connection a device, and a new connection each sign-in (as nslcd does);
- portal sign-ins (``--clients`` browsers, benchmarks/portal_speed.py's portal and sign-in).

``--only sync`` measures the sync workloads and the first load, ``--only signin`` the
sign-ins (the data set is generated and loaded either way); ``--compact`` compacts the
directory between them (``mimsdir directory compact --restart``), as an operator does after
a big night.

Writes benchmarks/results/<date>-<size>.json and .md (``-sync``/``-signin`` with ``--only``;
``-<HHMM>`` after it when an earlier run of the day wrote that name).
Usage:
  .venv/bin/python benchmarks/bench.py [--size 100000] [--only sync|signin|all] [--compact] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argon2
import ldap

from benchmarks import national, workloads
from mimsdir.config import Config, load_config
from mimsdir.directory import loader, server
from mimsdir.directory.slapdconf import Dns
from mimsdir.sync.state import ATTRS as STATE_ATTRS

RESULTS = Path(__file__).resolve().parent / "results"
MIMSDIR = str(Path(sys.executable).with_name("mimsdir"))
#: Every student of the data set has this password (hashed once by slapd's slappasswd).
PASSWORD = "Bench-Only-Password-1"
#: The goals of issue 11 for the workloads measured here against an argon2 floor.
FIRST_LOAD_GOAL = 1.2  # at most this many times the floor
NOOP_GOAL, NOOP_SECONDS_GOAL, NOOP_MIB_GOAL = 1.5, 15, 600  # the no-op: ratio, seconds, MiB
DELTA_GOAL = 1.5  # 2% class moves: at most this many times ldapmodify
SIGNIN_GOAL = 0.85  # at least this share of the floor
GUARD_TURNS = 3  # refusals measured, a no-op between each two
P99_GOAL = 1.0  # seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, Any]:
    """(seconds, exit code, resource usage) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = ""
    if proc.stderr:
        with proc.stderr:
            err = proc.stderr.read().decode("utf-8", "replace")
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n{err[-2000:]}")
    return seconds, proc.returncode, usage


# Starts the command from a small process that reports its peak RSS on the fd it is given.
# A child forked from this benchmark (which holds the data set) would count the benchmark's
# own pages as its peak until exec: measured, /bin/true "peaked" at 411 MiB from a 400 MiB
# parent.
_LAUNCH = """import os, sys
fd = int(sys.argv[1])
os.set_inheritable(fd, False)
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss).encode())
os._exit(os.waitstatus_to_exitcode(status) & 255)
"""


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in bytes) of one child process."""
    read_end, write_end = os.pipe()
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(write_end), *cmd],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                pass_fds=(write_end,))
        os.close(write_end)
        write_end = -1
        _, err = proc.communicate()
        seconds = time.perf_counter() - t0
        peak_kib = int(os.read(read_end, 64) or b"0")
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n"
                         f"{err.decode('utf-8', 'replace')[-2000:]}")
    return seconds, proc.returncode, peak_kib * 1024


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
            # The portal's sign-ins all come from one address, some login IDs more than once
            # at small sizes: budgets no run reaches (the throttle's check is still paid).
            "portal": {"address_limit": "1000000 per minute",
                       "account_limit": "1000000 per minute"},
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

    def setup(self) -> None:
        """The data set of SIZE students generated, loaded offline, the directory up."""
        n, tmp, r = self.size, self.tmp, self.results
        self.base_rows = base_rows = list(national.rows(n))
        self.roster = roster = national.write_roster(tmp / "roster.csv", base_rows)
        ldif = tmp / "national.ldif"
        server.up(self.cfg)  # cn=config, the base tree, the secrets
        server.down(self.cfg)
        pw_hash = server.hash_password(self.cfg, PASSWORD)
        t_gen, entries = timed(lambda: national.write_ldif(ldif, roster, self.cfg.ldap.base_dn,
                                                            pw_hash, self.cfg.posix))
        r["generate"] = {"entries": entries, "seconds": round(t_gen, 2)}

        load = loader.load_offline(self.cfg, ldif)
        r["load_offline"] = {"entries": load.entries, "seconds": round(load.seconds, 2),
                             "per_second": round(load.rate)}
        t_up, _ = timed(lambda: server.up(self.cfg))
        r["directory_up"] = {"seconds": round(t_up, 2)}
        t_status, st = timed(lambda: server.status(self.cfg))
        # slapd's own count (cn=Monitor): every loaded entry and the base tree's.
        r["directory_status"] = {"seconds": round(t_status, 3), "entries": st.entries}
        print(f"loaded {load.entries} entries in {load.seconds:.1f} s; up {t_up:.1f} s; "
              f"status {t_status:.2f} s", flush=True)

    def run_sync(self) -> dict[str, Any]:
        """The nightly sync's workloads."""
        n, tmp, r = self.size, self.tmp, self.results
        base_rows, roster = self.base_rows, self.roster
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
        # reads (more than sync.max_disable would be disabled). Refusals and no-ops taken
        # in turn, three of each, medians compared: one pair differed by up to 10% from
        # the machine's noise alone, the size of the difference being measured.
        guards_s, noops_s = [], [t_noop]
        for turn in range(GUARD_TURNS):
            national.write_roster(roster, [b for i, b in enumerate(base_rows) if i % 10])
            t_guard, code, _, rep = self.sync(roster, tmp / "guard.json")
            national.write_roster(roster, base_rows)
            if code != 3:
                raise SystemExit(f"the guard did not refuse: exit {code}")
            guards_s.append(t_guard)
            if turn < GUARD_TURNS - 1:
                noops_s.append(self.sync(roster, tmp / "noop-again.json")[0])
        t_guard, t_between = statistics.median(guards_s), statistics.median(noops_s)
        r["guard_refusal"] = {"seconds": round(t_guard, 2),
                              "vs_noop": round(t_guard / t_between, 2),
                              "runs": [round(t, 2) for t in guards_s],
                              "noop_runs": [round(t, 2) for t in noops_s],
                              "refused": rep["refused"][:1]}
        print(f"guard refusal {t_guard:.1f} s ({t_guard / t_between:.2f}x the no-op; runs "
              f"{guards_s}, no-ops {noops_s})", flush=True)

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

    def stored_hash(self, uid: str) -> argon2.Parameters:
        """The argon2 parameters of a student's userPassword, read as root: what slapd made
        (its module, its type), so a floor hashes with exactly those. slapd 2.5.13's argon2
        module stores the hashes it makes itself (a password set over LDAP) with the C
        string's NUL and a stray byte after it; it verifies up to the NUL, so do we."""
        dn = Dns(self.cfg.ldap.base_dn).student(uid)
        with server.root_conn(self.cfg) as c:
            got = c.search(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["userPassword"],
                           "a student's password hash")
        return workloads.argon2_of(got[0][1]["userPassword"][0].split(b"\0", 1)[0].decode())

    def compact(self) -> dict[str, Any]:
        """`mimsdir directory compact --restart` as an operator runs it after a big night:
        the free pages the sync workloads left, and what compacting them took."""
        t, code, _ = run_child([MIMSDIR, "--config", str(self.cfg_path), "directory",
                                "compact", "--restart"], env=self.env)
        if code != 0:
            raise SystemExit(f"directory compact: exit {code}")
        from mimsdir.directory import compact

        size, used, free = compact.pages(self.cfg.state_dir / "data")
        out = {"seconds": round(t, 2), "data_mib_in_use": round(used * size / 2**20),
               "data_free_pages": free}
        self.results["compact"] = out
        print(f"directory compact --restart: {t:.1f} s", flush=True)
        return out

    def slapd_pid(self) -> int:
        pid = server.status(self.cfg).pid
        if pid is None:
            raise SystemExit("slapd is not running")
        return pid

    def first_load(self, n: int, seconds: float) -> dict[str, Any]:
        """N new pupils of new schools, as their schools' first roster: the sync (a process,
        as the nightly job) adds them, has slapd hash a password each, writes the slips. The
        floor: N argon2 hashes at the parameters of the hashes it made, every core busy,
        measured before and after the sync (their mean: other work on the machine moves).
        Also the CPU seconds of the sync and of slapd: what the time went to."""
        tmp = self.tmp
        start = -(-self.size // national.SCHOOL_SIZE) * national.SCHOOL_SIZE  # next school
        new = [replace(b, teacher="")  # new schools: their form teachers are not here yet
               for b in national.rows(n, seed=20261202, start=start)]
        roster = national.write_roster(tmp / "first-load.csv", new)
        report = tmp / "first-load.json"
        slapd = self.slapd_pid()
        loaded = self.stored_hash(self.base_rows[0].student_id)
        before = workloads.argon2_rate(loaded, seconds)
        slapd_cpu = workloads.process_cpu(slapd)
        busy = workloads.machine_cpu()[0]
        t_sync, code, usage = run_child(
            [MIMSDIR, "--config", str(self.cfg_path), "sync", str(roster), "--report",
             str(report)], env=self.env)
        slapd_cpu = workloads.process_cpu(slapd) - slapd_cpu
        sync_cpu = usage.ru_utime + usage.ru_stime
        others = max(0.0, workloads.machine_cpu()[0] - busy - slapd_cpu - sync_cpu)
        rep = json.loads(report.read_text())
        if (code != 0 or rep["applied"].get("create", 0) != n
                or rep["credentials_issued"] != n or rep["write_failures"]
                or not rep["slips"]):
            raise SystemExit(f"the first load did not add {n} students with slips: exit "
                             f"{code}, {rep.get('applied')}, {rep.get('write_failures')}")
        a = self.stored_hash(new[0].student_id)  # the hashes the sync had slapd make
        after = workloads.argon2_rate(a, seconds)
        floors = [before, after] if a == loaded else [after]
        rate = sum(f.rate for f in floors) / len(floors)
        hash_s = sum(f.cpu for f in floors) / sum(f.hashes for f in floors)
        floor = n / rate
        workers = after.workers
        out = {"students": n, "seconds": round(t_sync, 2),
               # No peak memory here: wait4's ru_maxrss counts the pages the child shared
               # with this benchmark before its exec (2 GiB at 500,000), see run_measured.
               "slips": len(rep["slips"]),
               "argon2": _argon2_name(a), "floor_per_second": round(rate, 1),
               "floor_runs": [round(f.rate, 1) for f in floors],
               "floor_others_share": [round(f.others_share, 2) for f in floors],
               "floor_seconds": round(floor, 3), "ratio": round(t_sync / floor, 2),
               "goal": FIRST_LOAD_GOAL, "met": t_sync / floor <= FIRST_LOAD_GOAL,
               "cpu_seconds": {"sync": round(sync_cpu, 2), "slapd": round(slapd_cpu, 2),
                               "others": round(others, 2)},
               "argon2_cpu_ms_per_hash": round(hash_s * 1000, 1),
               "slapd_cpu_ms_per_student": round(slapd_cpu / n * 1000, 1),
               "sync_cpu_ms_per_student": round(sync_cpu / n * 1000, 1),
               # The ratio by CPU: the work done for N students over N hashes' work, what
               # the ratio would be on a machine of its own with every core kept busy.
               "cpu_ratio": round((slapd_cpu + sync_cpu) / (n * hash_s), 2),
               "others_share": round(others / (t_sync * workers), 2)}
        self.results["first_load"] = out
        print(f"first load of {n}: {t_sync:.1f} s (CPU: sync {sync_cpu:.1f} s, slapd "
              f"{slapd_cpu:.1f} s, others {others:.1f} s) vs {n} hashes ({_argon2_name(a)}) "
              f"at {rate:.1f}/s = {floor:.1f} s: {t_sync / floor:.2f}x", flush=True)
        return out

    def signin(self, clients: int, seconds: float, processes: bool = False) -> dict[str, Any]:
        """Device storms and portal sign-ins against the argon2 verify rate of every core,
        measured before, between and after them: each is compared with the mean of the two
        floors around it (other work on the machine moves)."""
        dns = Dns(self.cfg.ldap.base_dn)
        slapd = self.slapd_pid()
        # Students spread over the data set; device (browser) i signs in its own in turn.
        want = min(len(self.base_rows), clients * 50)
        step = max(1, len(self.base_rows) // want)
        picked = self.base_rows[::step][:want]
        mine = [picked[i::clients] or [picked[i % len(picked)]] for i in range(clients)]
        students = [[dns.student(b.student_id) for b in m] for m in mine]
        a = self.stored_hash(picked[0].student_id)

        def floor_now() -> workloads.Floor:
            f = workloads.argon2_rate(a, seconds)
            print(f"argon2 floor ({_argon2_name(a)}): {f.rate:.1f}/s (others "
                  f"{f.others_share:.0%} of the CPU)", flush=True)
            return f

        workload: dict[str, Callable[[], workloads.Measured]] = {
            "device_storm": lambda: workloads.device_storm(
                self.cfg, slapd, students, PASSWORD, clients, seconds, processes=processes),
            "device_storm_reconnect": lambda: workloads.device_storm(
                self.cfg, slapd, students, PASSWORD, clients, seconds, reconnect=True,
                processes=processes),
            "portal_signins": lambda: workloads.portal_signins(
                self.cfg, slapd, [[b.email for b in m] for m in mine], PASSWORD, clients,
                seconds),
        }
        floors = [floor_now()]
        runs: dict[str, workloads.Measured] = {}
        for name, run in workload.items():
            runs[name] = run()
            print(f"{name}: {runs[name].summary()}", flush=True)
            floors.append(floor_now())
        hash_ms = sum(f.cpu for f in floors) / sum(f.hashes for f in floors) * 1000
        self.results["argon2_verify_floor"] = {
            "argon2": _argon2_name(a), "workers": floors[0].workers, "seconds": seconds,
            "runs": [round(f.rate, 1) for f in floors],
            "others_share": [round(f.others_share, 2) for f in floors],
            "per_second": round(sum(f.rate for f in floors) / len(floors), 1),
            "cpu_ms_per_hash": round(hash_ms, 1)}
        for k, (name, m) in enumerate(runs.items()):
            floor = (floors[k].rate + floors[k + 1].rate) / 2
            ratio = m.rate / floor
            device = name != "portal_signins"  # the p99 goal is the devices'
            # The ratio by CPU: argon2's share of the server's work a sign-in (slapd's, and
            # the portal's), what a machine of its own would reach with the clients elsewhere.
            server_ms = (m.cpu["slapd"] + m.cpu.get("portal", 0.0)) / m.signins * 1000 \
                if m.signins else float("nan")
            self.results[name] = {**m.summary(), "cpu_ratio": round(hash_ms / server_ms, 2),
                                  "others_share": round(m.cpu["others"]
                                                        / (m.seconds * floors[0].workers), 2),
                                  "clients_in": "processes" if processes and device
                                  else "threads",
                                  "floor_per_second": round(floor, 1), "ratio": round(ratio, 2),
                                  "goal": SIGNIN_GOAL,
                                  "p99_goal_ms": round(P99_GOAL * 1000) if device else None,
                                  "met": ratio >= SIGNIN_GOAL
                                  and (m.p99 < P99_GOAL or not device)}
            print(f"{name}: {m.rate:.1f}/s, p50 {m.p50 * 1000:.0f} ms, p99 "
                  f"{m.p99 * 1000:.0f} ms vs argon2 {floor:.1f}/s: {ratio:.2f}; CPU a sign-in:"
                  f" slapd {m.cpu['slapd'] / max(1, m.signins) * 1000:.1f} ms, clients "
                  f"{m.cpu['clients'] / max(1, m.signins) * 1000:.1f} ms (argon2 "
                  f"{hash_ms:.1f} ms a hash); others {m.cpu['others']:.1f} s", flush=True)
        refused = {name: m.refused for name, m in runs.items() if m.refused or not m.signins}
        if refused:
            raise SystemExit(f"sign-ins refused (or none made): {refused}")
        if not runs["device_storm"].must_change:
            raise SystemExit("no bind reported must-change: the students should have pwdReset")
        return self.results

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


def _argon2_name(a: argon2.Parameters) -> str:
    return (f"argon2{a.type.name.lower()} m={a.memory_cost} t={a.time_cost} p={a.parallelism} "
            f"({workloads.floor_implementation()})")


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "load_before": [round(load1, 2), round(load5, 2)],
            "slapd": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "slapd"],
                                    capture_output=True, text=True).stdout}


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(data: dict[str, Any]) -> str:
    r = data["results"]
    rows: list[tuple[str, ...]] = []
    if "noop_sync" in r:
        n, g, d = r["noop_sync"], r["guard_refusal"], r["delta_2pct"]
        noop_met = (n["ratio"] <= NOOP_GOAL and n["seconds"] <= NOOP_SECONDS_GOAL
                    and n["peak_rss_mib"] <= NOOP_MIB_GOAL)
        # "As fast as the no-op": within the no-ops' own spread, measured in turn with it.
        guard_met = g["seconds"] <= max(g["noop_runs"])
        rows += [
            ("no-op nightly sync", f"{n['seconds']} s, {n['peak_rss_mib']} MiB peak",
             f"ldapsearch + CSV {n['floor_seconds']} s", f"{n['ratio']}x",
             f"{NOOP_GOAL}x, {NOOP_SECONDS_GOAL} s, {NOOP_MIB_GOAL} MiB: {_met(noop_met)}"),
            ("a guard refusing (median of 3)", f"{g['seconds']} s",
             "the no-op sync (median of 3, in turn)", f"{g['vs_noop']}x",
             f"within the no-ops' spread ({min(g['noop_runs'])}-{max(g['noop_runs'])} s): "
             f"{_met(guard_met)}"),
            (f"2% class moves ({d['changes']})", f"{d['seconds']} s",
             f"ldapmodify {d['floor_ldapmodify']} s", f"{d['ratio']}x",
             f"{DELTA_GOAL}x: {_met(d['ratio'] <= DELTA_GOAL)}"),
        ]
    if "first_load" in r:
        f = r["first_load"]
        rows.append((f"first load, {f['students']} new students (passwords, slips)",
                     f"{f['seconds']} s (CPU a student: slapd "
                     f"{f['slapd_cpu_ms_per_student']} ms, sync {f['sync_cpu_ms_per_student']}"
                     " ms)", f"{f['students']} {f['argon2']} hashes on "
                     f"{data['machine']['cores']} cores: {f['floor_seconds']} s "
                     f"({f['floor_per_second']}/s, {f['argon2_cpu_ms_per_hash']} ms CPU a hash)",
                     f"{f['ratio']}x (by CPU {f['cpu_ratio']}x; others "
                     f"{f['others_share']:.0%} of the CPU)", f"{f['goal']}x: {_met(f['met'])}"))
    labels = {"device_storm": "device sign-in storm, {c} devices, a connection each (rebind)",
              "device_storm_reconnect": "device sign-in storm, {c} devices, a new StartTLS "
                                        "connection each sign-in (as nslcd)",
              "portal_signins": "portal sign-ins, {c} browsers"}
    for key, label in labels.items():
        if key not in r:
            continue
        s = r[key]
        goal = f"{s['goal']} of the floor" + (f", p99 < {s['p99_goal_ms'] / 1000:g} s"
                                               if s["p99_goal_ms"] else "")
        fl = r["argon2_verify_floor"]
        cpu = f"slapd {s['slapd_ms_per_signin']} ms" + (
            f", portal {s['portal_ms_per_signin']} ms" if "portal_ms_per_signin" in s else "")
        rows.append((label.format(c=s["clients"]),
                     f"{s['per_second']}/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms "
                     f"(CPU a sign-in: {cpu})",
                     f"{fl['argon2']} verifications on {fl['workers']} cores: "
                     f"{s['floor_per_second']}/s ({fl['cpu_ms_per_hash']} ms CPU a hash)",
                     f"{s['ratio']} of the floor (by CPU {s['cpu_ratio']}; others "
                     f"{s['others_share']:.0%} of the CPU)", f"{goal}: {_met(s['met'])}"))
    if "compact" in r:
        rows.append(("`directory compact --restart` before the sign-ins",
                     f"{r['compact']['seconds']} s ({r['compact']['data_mib_in_use']} MiB "
                     "in use)", "", "", ""))
    rows += [
        ("directory status", f"{r['directory_status']['seconds']} s", "", "",
         "independent of size (slapd's monitor, no scan): "
         f"{_met(r['directory_status']['seconds'] < 0.1)}"),
        ("offline load (slapadd)", f"{r['load_offline']['seconds']} s",
         f"{r['load_offline']['per_second']} entries/s", "", ""),
    ]
    m = data["machine"]
    only = f" (`--only {data['only']}`)" if data.get("only", "all") != "all" else ""
    head = (f"`make bench SIZE={data['size']}`{only} on {data['date']}: {m['cores']} cores, "
            f"load before {m['load_before']}, slapd {m['slapd']}\n\n"
            "| workload | measured | floor (same run) | ratio | goal |\n|---|---|---|---|---|\n")
    notes = ""
    if any(k in r for k in ("first_load", *labels)):
        notes = ("\nBy CPU: argon2's CPU time a hash against the CPU time the server spent an "
                 "operation (slapd, and the sync or the portal), from /proc over the same "
                 "window: the ratio a machine of its own would reach. \"Others\": CPU time "
                 "of other work on this machine over the window, which moves the rates.\n")
    return head + "".join("| " + " | ".join(row) + " |\n" for row in rows) + notes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--only", choices=("sync", "signin", "all"), default="all",
                    help="sync: the sync workloads and the first load; signin: the sign-ins")
    ap.add_argument("--first-load", type=int, default=1000,
                    help="new students of the first load (at most a tenth of --size)")
    ap.add_argument("--clients", type=int, default=32, help="devices (browsers) signing in")
    ap.add_argument("--seconds", type=float, default=10,
                    help="each sign-in workload, and each argon2 floor")
    ap.add_argument("--processes", action="store_true",
                    help="devices as processes, not threads")
    ap.add_argument("--keep", action="store_true", help="leave the temp directory")
    ap.add_argument("--compact", action="store_true",
                    help="`directory compact` after the sync workloads, before the sign-ins")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mims-bench-"))
    started = datetime.now(UTC)
    info = machine()
    bench = Bench(args.size, tmp)
    try:
        bench.setup()
        if args.only in ("sync", "all"):
            bench.run_sync()
            bench.first_load(max(1, min(args.first_load, args.size // 10)), args.seconds)
        if args.compact:
            bench.compact()
        if args.only in ("signin", "all"):
            bench.signin(args.clients, args.seconds, processes=args.processes)
    finally:
        server.down(bench.cfg)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    data = {"size": args.size, "date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": info,
            "only": args.only, "options": {"first_load": args.first_load,
                                           "compact": args.compact,
                                           "clients": args.clients, "seconds": args.seconds},
            "results": bench.results}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.only == "all" else f"-{args.only}"
    stem = RESULTS / f"{started:%Y-%m-%d}-{args.size}{suffix}"
    if stem.with_suffix(".json").exists():  # an earlier run of the day: keep it
        stem = stem.with_name(f"{stem.name}-{started:%H%M}")
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    table = markdown(data)
    stem.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
