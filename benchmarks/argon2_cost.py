#!/usr/bin/env python3
"""What one argon2 hash at slapd's parameters costs in user CPU and in the kernel, for each
implementation on this machine, and the kernel's transparent-huge-page mode.

Why the kernel column: libsodium (slapd's module until 2026-12-02) maps each hash's memory
(19 MiB at m=19456) with mmap and unmaps it after, so every hash faults its pages in again:
8-10 ms of a 19-25 ms hash here, where the project's build of argon2's reference code
(slapd's module now, and the benchmark's floor), argon2-cffi's and Debian's libargon2
(malloc, memory reused) spend under a millisecond there (docs/performance.md, "Capacity
plan"). Each runs in a process of its own, one after another.
Usage: .venv/bin/python benchmarks/argon2_cost.py [--hashes 40] [--m 19456] [--t 3]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import resource
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import argon2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.workloads import hasher, libsodium, mims_argon2

SECRET = b"Bench-Only-Password-1"


def _sodium(m: int, t: int) -> Callable[[], None] | None:
    lib = libsodium()
    if lib is None:
        return None
    out = ctypes.create_string_buffer(32)
    salt = os.urandom(16)
    alg = lib.crypto_pwhash_alg_argon2id13()

    def one() -> None:
        if lib.crypto_pwhash(out, ctypes.c_ulonglong(32), SECRET, ctypes.c_ulonglong(len(SECRET)),
                             salt, ctypes.c_ulonglong(t), ctypes.c_size_t(m * 1024), alg):
            raise RuntimeError("crypto_pwhash failed")
    return one


def _mims(m: int, t: int) -> Callable[[], None] | None:
    """The project's build (build/mims_pwcheck/libmims_argon2.so), through the code of slapd's
    module (its memory kept from hash to hash), as the benchmark's floor hashes."""
    if mims_argon2() is None:
        return None
    return hasher(argon2.Parameters(type=argon2.Type.ID, version=0x13, salt_len=16,
                                    hash_len=32, time_cost=t, memory_cost=m, parallelism=1))


def _libargon2(m: int, t: int) -> Callable[[], None] | None:
    """Debian's libargon2 (the portable reference code: what Debian's slapd module uses)."""
    try:
        lib = ctypes.CDLL("libargon2.so.1")
    except OSError:
        return None
    out = ctypes.create_string_buffer(32)
    salt = os.urandom(16)

    def one() -> None:
        if lib.argon2id_hash_raw(ctypes.c_uint32(t), ctypes.c_uint32(m), ctypes.c_uint32(1),
                                 SECRET, ctypes.c_size_t(len(SECRET)), salt, ctypes.c_size_t(16),
                                 out, ctypes.c_size_t(32)):
            raise RuntimeError("argon2id_hash_raw failed")
    return one


def _cffi(m: int, t: int) -> Callable[[], None] | None:
    import argon2.low_level as al

    salt = os.urandom(16)

    def one() -> None:
        al.hash_secret_raw(SECRET, salt, time_cost=t, memory_cost=m, parallelism=1, hash_len=32,
                           type=al.Type.ID)
    return one


IMPLEMENTATIONS = {"mimsdir": _mims, "libsodium": _sodium, "libargon2 (Debian)": _libargon2,
                   "argon2-cffi": _cffi}


def measure(name: str, m: int, t: int, hashes: int) -> dict[str, float] | None:
    """In a process of its own: (user ms, kernel ms) a hash, after one hash of warm-up."""
    one = IMPLEMENTATIONS[name](m, t)
    if one is None:
        return None
    one()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(hashes):
        one()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"user_ms": round((after.ru_utime - before.ru_utime) * 1000 / hashes, 1),
            "kernel_ms": round((after.ru_stime - before.ru_stime) * 1000 / hashes, 1)}


def thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    return text[text.index("[") + 1:text.index("]")] if "[" in text else text.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashes", type=int, default=40)
    ap.add_argument("--m", type=int, default=19456, help="KiB, as directory.argon2.m")
    ap.add_argument("--t", type=int, default=3)
    args = ap.parse_args()
    for name in IMPLEMENTATIONS:
        # A process of its own each: no memory, no heap threshold left by the one before.
        with ProcessPoolExecutor(1) as pool:
            got = pool.submit(measure, name, args.m, args.t, args.hashes).result()
        if got is None:
            print(f"{name}: not on this machine", flush=True)
        else:
            print(f"{name}: {got['user_ms']} ms user + {got['kernel_ms']} ms kernel "
                  f"= {got['user_ms'] + got['kernel_ms']:.1f} ms a hash", flush=True)
    print(f"m={args.m} KiB, t={args.t}, p=1; transparent huge pages: {thp_mode()}")


if __name__ == "__main__":
    main()
