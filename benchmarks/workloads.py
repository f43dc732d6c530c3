"""The sign-in workloads of `make bench` and the argon2 floor they (and the first load) share.

- ``argon2_rate``: argon2 hashes a second at the parameters of a given hash (read from the
  directory: type, version, m, t, p, lengths), every core busy at once, each core its own
  process, with the fastest argon2 here (the project's build of argon2's reference code, as
  slapd's module: see ``floor_implementation``). A verification is one hash and a
  comparison, and slapd hashes every new password and every sign-in: this rate is the most
  sign-ins or first passwords a second the machine can give, whatever serves them.
- ``device_storm``: CLIENTS devices signing students in over StartTLS with simple binds and
  the password policy control, as nslcd and SSSD do. ``reconnect=False``: one connection
  per device, each sign-in a new bind on it; ``reconnect=True``: a new connection (TCP,
  StartTLS, the certificate check) for every sign-in, which is what nslcd's PAM
  authentication does (its ``try_bind`` opens a session of its own and closes it).
- ``portal_signins``: CLIENTS browsers signing in on the portal (GET /login, POST it), the
  portal served by waitress in this process (benchmarks/portal_speed.py).

Every workload counts the sign-ins that end inside a window that opens after a warm-up
(connections made, every client busy) and closes ``seconds`` later: a steady state, no
ramp-up or draining counted; latencies are those of the same sign-ins. Over the same window,
the CPU time of slapd, of the clients (and the portal: this process and its workers) and of
everything else on the machine (other work sharing it), from /proc: clients and server share
the cores here, where devices and browsers would bring their own.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import argon2
import argon2.low_level as al

from mimsdir.config import Config
from mimsdir.connect import client_tls
from mimsdir.ldapio import Conn, TlsClient

#: One sign-in: (latency in seconds, accepted, accepted with must-change).
Signin = tuple[float, bool, bool]


def argon2_of(stored: str) -> argon2.Parameters:
    """The parameters of a userPassword value as slapd stores it: ``{ARGON2}$argon2i$...``."""
    scheme, _, encoded = stored.partition("}")
    if scheme.upper() != "{ARGON2":
        raise ValueError(f"not an {{ARGON2}} hash: {stored[:20]!r}")
    return argon2.extract_parameters(encoded)


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of a live process."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, every core."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    idle = v[3] + v[4]  # idle, iowait
    return (sum(v[:8]) - idle) / TICK, idle / TICK


class CpuWindow:
    """CPU seconds spent over [t0, t1] by each group of processes (``groups[name]()``: their
    pids, asked at t0), by everything else on the machine ("others") and idle ("idle"):
    sampled by a thread of its own."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], t0: float,
                 t1: float) -> None:
        self.used: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, args=(groups, t0, t1), daemon=True)
        self._thread.start()

    @staticmethod
    def _sleep_until(t: float) -> None:
        time.sleep(max(0.0, t - time.monotonic()))

    @staticmethod
    def _sample(pids: dict[str, list[int]]) -> list[float]:
        busy, idle = machine_cpu()
        return [*(sum(process_cpu(p) for p in group) for group in pids.values()), busy, idle]

    def _run(self, groups: dict[str, Callable[[], list[int]]], t0: float, t1: float) -> None:
        self._sleep_until(t0)
        pids = {name: get() for name, get in groups.items()}
        a = self._sample(pids)
        self._sleep_until(t1)
        b = self._sample(pids)
        d = [y - x for x, y in zip(a, b, strict=True)]
        ours = d[:len(pids)]
        self.used = {**{name: round(v, 2) for name, v in zip(pids, ours, strict=True)},
                     "others": round(max(0.0, d[-2] - sum(ours)), 2), "idle": round(d[-1], 2)}

    def result(self) -> dict[str, float]:
        self._thread.join()
        return self.used


def _started(_: int) -> int:
    return os.getpid()


@functools.cache
def libsodium() -> Any:
    """libsodium, slapd's module's argon2 until 2026-12-02 (a comparison now); None without it."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sodium")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    if lib.sodium_init() < 0:
        return None
    return lib


@functools.cache
def mims_argon2() -> Any:
    """The project's argon2 (build/mims_pwcheck/libmims_argon2.so, the objects of slapd's
    module: argon2's reference code, SIMD chosen at load); None where it is not built."""
    import ctypes

    from mimsdir.config import PWCHECK_BUILD_DIR

    path = PWCHECK_BUILD_DIR / "libmims_argon2.so"
    if not path.is_file():
        return None
    lib = ctypes.CDLL(str(path))
    lib.mims_argon2_simd.restype = ctypes.c_char_p
    u32, size, ptr = ctypes.c_uint32, ctypes.c_size_t, ctypes.c_void_p
    # slapd-modules/argon2_kept.h: the hash and the check slapd's module makes
    lib.mims_argon2_hash_encoded.argtypes = [u32, u32, u32, ptr, size, ptr, size, size,
                                             ctypes.c_char_p, size, ctypes.c_int]
    lib.mims_argon2_verify.argtypes = [ctypes.c_char_p, ptr, size, ctypes.c_int]
    return lib


#: argon2_type in argon2.h
ARGON2_TYPES = {argon2.Type.D: 0, argon2.Type.I: 1, argon2.Type.ID: 2}


def mims_hash(lib: Any, a: argon2.Parameters, secret: bytes, salt: bytes) -> str:
    """``secret`` hashed as slapd's module hashes (argon2_kept.c: the thread's kept memory),
    at ``a``'s parameters (argon2 version 0x13, the only one it makes), encoded."""
    import ctypes

    out = ctypes.create_string_buffer(64 + 2 * (len(salt) + a.hash_len))
    rc = lib.mims_argon2_hash_encoded(a.time_cost, a.memory_cost, a.parallelism, secret,
                                      len(secret), salt, len(salt), a.hash_len, out, len(out),
                                      ARGON2_TYPES[a.type])
    if rc:
        raise RuntimeError(f"mims_argon2_hash_encoded failed: {rc}")
    return out.value.decode()


def slapd_params(cfg: Config) -> argon2.Parameters:
    """The parameters slapd hashes with: argon2id from the project's module, argon2i from
    Debian's (``directory.argon2_module`` empty)."""
    a = cfg.directory.argon2
    return argon2.Parameters(
        type=argon2.Type.ID if cfg.directory.argon2_module else argon2.Type.I, version=19,
        salt_len=16, hash_len=32, time_cost=a.t, memory_cost=a.m, parallelism=a.p)


def floor_implementation() -> str:
    """Which argon2 the floor hashes with: the project's build (the code of slapd's module,
    and the fastest here: 11.6 ms of CPU a hash with AVX-512F against libsodium's 24 and
    argon2-cffi's 38), else argon2-cffi."""
    lib = mims_argon2()
    return f"mimsdir {lib.mims_argon2_simd().decode()}" if lib is not None else "argon2-cffi"


def hasher(a: argon2.Parameters) -> Callable[[], None]:
    """One argon2 hash at ``a``'s parameters, with the floor's implementation: slapd's
    module's own code where it is built (its memory kept from one hash to the next)."""
    secret = b"Bench-Only-Password-1"
    salt = os.urandom(a.salt_len)
    lib = mims_argon2()
    if lib is not None and a.version == 0x13:
        def mims() -> None:
            mims_hash(lib, a, secret, salt)
        return mims

    def cffi() -> None:
        al.hash_secret_raw(secret, salt, time_cost=a.time_cost, memory_cost=a.memory_cost,
                           parallelism=a.parallelism, hash_len=a.hash_len, type=a.type,
                           version=a.version)
    return cffi


def _hash_until(a: argon2.Parameters, t0: float, t1: float) -> tuple[int, float]:
    """(hashes completed inside [t0, t1], this process's CPU seconds over the window); t0
    and t1 on time.monotonic, the same clock in every process."""
    one = hasher(a)
    done, cpu0, cpu1 = 0, 0.0, 0.0
    while True:
        one()
        end = time.monotonic()
        if end >= t1:
            return done, cpu1 - cpu0
        if end >= t0:
            if not done:
                cpu0 = cpu1  # the CPU clock at the first hash's start inside the window
            done += 1
        cpu1 = time.process_time()


@dataclass(frozen=True)
class Floor:
    """Argon2 hashes a second on every core, the CPU seconds a hash took, and the CPU
    seconds other work on the machine took over the same window."""

    workers: int
    seconds: float
    hashes: int
    cpu: float
    others: float = 0.0

    @property
    def others_share(self) -> float:
        return self.others / (self.seconds * self.workers)

    @property
    def rate(self) -> float:
        return self.hashes / self.seconds

    @property
    def cpu_per_hash(self) -> float:
        return self.cpu / self.hashes if self.hashes else float("nan")


def argon2_rate(a: argon2.Parameters, seconds: float, workers: int | None = None) -> Floor:
    """Hashes a second at ``a``'s parameters with ``workers`` processes (every core)."""
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_started, range(workers)))
        t0 = time.monotonic() + 0.5  # every worker's first hash (its memory mapped) before
        jobs = [pool.submit(_hash_until, a, t0, t0 + seconds) for _ in range(workers)]
        cpu = CpuWindow({"floor": lambda: [os.getpid(), *_pool_pids(pool)]}, t0, t0 + seconds)
        got = [j.result() for j in jobs]
    return Floor(workers, seconds, sum(n for n, _ in got), sum(c for _, c in got),
                 cpu.result()["others"])


def nearest_rank(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)] if s else float("nan")


@dataclass(frozen=True)
class Measured:
    clients: int
    seconds: float
    signins: int
    refused: int
    must_change: int
    p50: float
    p99: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.signins / self.seconds

    def summary(self) -> dict[str, Any]:
        per = {f"{k}_ms_per_signin": round(v / self.signins * 1000, 1)
               for k, v in self.cpu.items()
               if k in ("slapd", "clients", "portal", "browsers") and self.signins}
        return {"clients": self.clients, "seconds": self.seconds, "signins": self.signins,
                "per_second": round(self.rate, 1), "refused": self.refused,
                "must_change": self.must_change, "p50_ms": round(self.p50 * 1000),
                "p99_ms": round(self.p99 * 1000), "cpu_seconds": self.cpu, **per}


def warmup_for(seconds: float) -> float:
    return max(0.5, min(2.0, seconds / 5))


def _pool_pids(pool: Executor) -> list[int]:
    procs = getattr(pool, "_processes", None) or {}  # a ProcessPoolExecutor's workers
    return list(procs)


def _window(clients: int, seconds: float, one: Callable[..., list[Signin]],
            pool: Executor, slapd: int) -> Measured:
    """Run ``one(i, t0, t1)`` for each client in ``pool``; each returns its sign-ins that
    ended inside [t0, t1]."""
    t0 = time.monotonic() + warmup_for(seconds)
    jobs = [pool.submit(one, i, t0, t0 + seconds) for i in range(clients)]
    cpu = CpuWindow({"slapd": lambda: [slapd],
                     "clients": lambda: [os.getpid(), *_pool_pids(pool)]}, t0, t0 + seconds)
    done = [s for j in jobs for s in j.result()]
    lat = [s[0] for s in done]
    return Measured(clients, seconds, len(done), sum(1 for s in done if not s[1]),
                    sum(1 for s in done if s[2]), nearest_rank(lat, 0.5),
                    nearest_rank(lat, 0.99), cpu.result())


def _device(uri: str, tls: TlsClient | None, timeout: float, dns: list[Sequence[str]],
            password: str, reconnect: bool, i: int, t0: float, t1: float) -> list[Signin]:
    """Device ``i``: its students' binds in turn until t1."""
    mine = dns[i % len(dns)]
    out: list[Signin] = []
    conn = None if reconnect else Conn(uri, timeout, tls)
    try:
        k = 0
        while True:
            dn = mine[k % len(mine)]
            k += 1
            start = time.monotonic()
            if conn is None:
                with Conn(uri, timeout, tls) as c:
                    r = c.bind_ppolicy(dn, password)
            else:
                r = conn.bind_ppolicy(dn, password)
            end = time.monotonic()
            if end >= t1:
                return out
            if end >= t0:
                out.append((end - start, r.ok, r.must_change))
    finally:
        if conn is not None:
            conn.close()


def device_storm(cfg: Config, slapd: int, dns: list[Sequence[str]], password: str,
                 clients: int, seconds: float, *, reconnect: bool = False,
                 processes: bool = False) -> Measured:
    """``clients`` devices, device i signing in the students ``dns[i]`` in turn. Threads by
    default (python-ldap waits for slapd without the GIL); ``processes``: one each."""
    one = partial(_device, cfg.ldap.uri, client_tls(cfg), cfg.ldap.timeout, dns, password,
                  reconnect)
    pool: Executor = (ProcessPoolExecutor(clients) if processes
                      else ThreadPoolExecutor(clients))
    with pool:
        return _window(clients, seconds, one, pool, slapd)


def portal_signins(cfg: Config, slapd: int, logins: list[Sequence[str]], password: str,
                   clients: int, seconds: float) -> Measured:
    """``clients`` browsers on the portal, browser i signing in ``logins[i]`` in turn; the
    portal (waitress, ``portal.threads``) in this process, as benchmarks/portal_speed.py."""
    import logging

    from benchmarks.portal_speed import free_port, serve, sign_in, stop
    from mimsdir.portal import create_app

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    port = free_port()
    srv = serve(create_app(cfg), port, threads=cfg.portal.threads)
    lock = threading.Lock()
    errors: list[str] = []
    browsers_cpu: list[float] = []  # the client threads' own CPU over their counted sign-ins

    def one(i: int, t0: float, t1: float) -> list[Signin]:
        mine = logins[i % len(logins)]
        out: list[Signin] = []
        k = 0
        cpu_start = cpu_end = 0.0
        while True:
            login = mine[k % len(mine)]
            k += 1
            start = time.monotonic()
            cpu = time.thread_time()
            try:
                ok = sign_in(port, login, password)
            except Exception as exc:  # counted as refused, the first told below
                ok = False
                with lock:
                    errors.append(f"{login}: {exc!r}")
            end = time.monotonic()
            if end >= t1:
                with lock:
                    browsers_cpu.append(cpu_end - cpu_start)
                return out
            if end >= t0:
                if not out:
                    cpu_start = cpu
                out.append((end - start, ok, False))
                cpu_end = time.thread_time()

    try:
        with ThreadPoolExecutor(clients) as pool:
            got = _window(clients, seconds, one, pool, slapd)
    finally:
        stop(srv)
    if errors:
        print(f"portal sign-ins: {len(errors)} errors, the first: {errors[0]}", flush=True)
    # "clients" is this process: the browsers' threads and the portal's; told apart.
    browsers = round(sum(browsers_cpu), 2)
    cpu = {**got.cpu, "browsers": browsers, "portal": round(got.cpu["clients"] - browsers, 2)}
    return replace(got, cpu=cpu)
