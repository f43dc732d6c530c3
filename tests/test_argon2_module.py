"""slapd's argon2 module (slapd-modules/mims_argon2.c on argon2's reference code, SIMD chosen
at load by slapd-modules/argon2_simd.c): every compiled width hashes as an independent argon2
does, slapd reuses a hash's memory from one sign-in to the next, hashes made by the modules
before it still sign in, and a stored value it cannot read is a refused bind, not a crash."""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import argon2
import argon2.low_level as al
import ldap
import pytest

from benchmarks import workloads
from mimsdir.config import PWCHECK_BUILD_DIR
from mimsdir.connect import network_conn
from mimsdir.directory import server

LIB = PWCHECK_BUILD_DIR / "libmims_argon2.so"
WIDTHS = ("avx512f", "avx2", "ssse3", "sse2")
# (type, t, m KiB, p): slapd's own parameters, argon2i as Debian's module made it, several
# lanes, argon2d, and the smallest memory.
VECTORS = [(al.Type.ID, 3, 19456, 1), (al.Type.I, 3, 8192, 1), (al.Type.ID, 2, 4096, 4),
           (al.Type.D, 1, 64, 2), (al.Type.ID, 1, 8, 1)]
SECRET, SALT = "Sïgn-in ✓ 7".encode(), b"sixteen byte salt"

# Run in a process of its own: the width is chosen once, when the library is loaded. Each
# vector hashed as slapd's module hashes (argon2_kept.c), with a fixed salt.
PROBE = f"""
import argon2
from benchmarks.workloads import mims_argon2, mims_hash
lib = mims_argon2()
print(lib.mims_argon2_simd().decode())
for t, tc, m, p in {[(v[0].value, *v[1:]) for v in VECTORS]!r}:
    a = argon2.Parameters(type=argon2.Type(t), version=0x13, salt_len={len(SALT)}, hash_len=32,
                          time_cost=tc, memory_cost=m, parallelism=p)
    print(mims_hash(lib, a, {SECRET!r}, {SALT!r}))
"""
REPO = Path(__file__).resolve().parents[1]


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def probe(width: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "MIMS_ARGON2_SIMD"}
    if width is not None:
        env["MIMS_ARGON2_SIMD"] = width
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=REPO, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def expected() -> list[str]:
    return [al.hash_secret(SECRET, SALT, time_cost=t, memory_cost=m, parallelism=p,
                           hash_len=32, type=kind, version=0x13).decode()
            for kind, t, m, p in VECTORS]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the SIMD widths are x86-64's")
@pytest.mark.parametrize("width", WIDTHS)
def test_each_simd_width_hashes_as_argon2_cffi(width: str) -> None:
    """Each width is its own compiled copy of opt.c: each must give argon2's answer."""
    if width not in cpu_flags():
        pytest.skip(f"this CPU has no {width}")
    out = probe(width)
    assert out[0] == width
    assert out[1:] == expected()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the SIMD widths are x86-64's")
def test_the_widest_width_the_cpu_has_is_chosen() -> None:
    widest = next(w for w in WIDTHS if w in cpu_flags())
    assert probe(None)[0] == widest
    # A width the CPU lacks or no width at all is never taken at its word.
    assert probe("avx1024")[0] == widest


def kept_lib():  # type: ignore[no-untyped-def]
    """The library's hash and check with the thread's kept memory (argon2_kept.c)."""
    lib = workloads.mims_argon2()
    assert lib is not None, f"{LIB} is not built (scripts/bootstrap.sh builds it)"
    return lib


def kept_hash(lib, m: int, password: bytes, kind: al.Type = al.Type.ID) -> str:  # type: ignore[no-untyped-def]
    a = argon2.Parameters(type=kind, version=0x13, salt_len=16, hash_len=32, time_cost=2,
                          memory_cost=m, parallelism=1)
    return workloads.mims_hash(lib, a, password, os.urandom(16))


def test_the_kept_memory_hashes_and_checks_as_argon2_does() -> None:
    lib = kept_lib()
    made = kept_hash(lib, 4096, SECRET)
    assert made.startswith("$argon2id$v=19$m=4096,t=2,p=1$")
    assert argon2.PasswordHasher().verify(made, SECRET)
    for kind in (al.Type.ID, al.Type.I, al.Type.D):
        theirs = al.hash_secret(SECRET, os.urandom(16), time_cost=2, memory_cost=2048,
                                parallelism=2, hash_len=32, type=kind)
        assert lib.mims_argon2_verify(theirs, SECRET, len(SECRET), kind.value) == 0
        assert lib.mims_argon2_verify(theirs, b"other", 5, kind.value) != 0
    # a thread's block grows for a larger m and is used for smaller ones after
    for m in (8192, 2048, 16384, 1024):
        made = kept_hash(lib, m, b"pw")
        assert lib.mims_argon2_verify(made.encode(), b"pw", 2, al.Type.ID.value) == 0


@pytest.mark.parametrize("m", [19456, 40960])
def test_a_thread_hashes_in_the_memory_it_kept_whatever_m(m: int) -> None:
    """glibc hands a freed block back only below its mmap threshold (at most 32 MiB): at
    m=32768 and above each hash faulted its pages in again (8,193 faults at 32 MiB). The
    thread's kept block: after its first hash, none."""
    lib = kept_lib()
    kept_hash(lib, m, b"warm")
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(3):
        made = kept_hash(lib, m, b"pw")
        assert lib.mims_argon2_verify(made.encode(), b"pw", 2, al.Type.ID.value) == 0
    per_hash = (resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 6
    assert per_hash < m // 4 / 20, f"{per_hash:.0f} page faults a hash"


def student_hash(root, dn: str, value: bytes) -> None:
    root.modify(dn, [(ldap.MOD_REPLACE, "userPassword", [value])], "a stored hash")


def binds(cfg, dn: str, password: str) -> bool:
    c = network_conn(cfg, timeout=10)
    try:
        return c.bind_ppolicy(dn, password).ok
    finally:
        c.close()


def minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def test_slapd_reuses_a_hash_memory_between_sign_ins(slapd, make) -> None:
    """libsodium mapped 19 MiB a hash and unmapped it after: 4,864 page faults every sign-in
    and slapd's threads queueing for the memory-map lock. malloc's memory is kept by the
    thread's arena and reused: past the first hash of each arena, a sign-in faults in almost
    nothing."""
    s = make.student(password="Reuse-pass-31")
    pid = server.status(slapd).pid
    assert pid
    for _ in range(40):  # every arena slapd's threads use hashes once
        assert binds(slapd, s.dn, "Reuse-pass-31")
    before = minor_faults(pid)
    for _ in range(20):
        assert binds(slapd, s.dn, "Reuse-pass-31")
    per_signin = (minor_faults(pid) - before) / 20
    pages = slapd.directory.argon2.m // 4
    assert per_signin < pages / 5, f"{per_signin:.0f} page faults a sign-in"


def libsodium_hash(password: bytes) -> str:
    lib = workloads.libsodium()
    if lib is None:
        pytest.skip("libsodium is not installed")
    out = ctypes.create_string_buffer(128)
    assert lib.crypto_pwhash_str_alg(out, password, ctypes.c_ulonglong(len(password)),
                                     ctypes.c_ulonglong(3), ctypes.c_size_t(19456 * 1024),
                                     lib.crypto_pwhash_alg_argon2id13()) == 0
    return out.value.decode()


def test_hashes_made_by_the_libsodium_module_still_sign_in(slapd, make, root) -> None:
    """Every password set from 2026-12-01 to 2026-12-02 was hashed by libsodium."""
    s = make.student(password="Unused-pass-56")
    made = libsodium_hash(b"Sodium-made-pass-4")
    assert made.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    student_hash(root, s.dn, b"{ARGON2}" + made.encode())
    assert binds(slapd, s.dn, "Sodium-made-pass-4")
    assert not binds(slapd, s.dn, "Sodium-made-pass-5")


@pytest.mark.parametrize("stored", [
    b"{ARGON2}not-a-hash",
    b"{ARGON2}$argon2id$v=19$m=19456,t=3,p=1$c2FsdHNhbHRzYWx0$" + b"A" * 600,
    b"{ARGON2}$argon2x$v=19$m=19456,t=3,p=1$c2FsdHNhbHRzYWx0$AAAA",
    b"{ARGON2}$argon2id$v=19$m=19456,t=3,p=1$c2FsdHNhbHRzYWx0",
    b"{ARGON2}",
], ids=["garbage", "too-long", "unknown-type", "no-hash", "empty"])
def test_a_stored_value_the_module_cannot_read_refuses_the_bind(slapd, make, root,
                                                                stored: bytes) -> None:
    s = make.student(password="Unused-pass-57")
    student_hash(root, s.dn, stored)
    assert not binds(slapd, s.dn, "Unused-pass-57")
    # slapd is still there for everyone else
    other = make.student(password="Still-there-58")
    assert binds(slapd, other.dn, "Still-there-58")


def slappasswd(cfg, args: str, password: str = "Module-arg-pass-9",
               scheme: str = "{ARGON2}") -> subprocess.CompletedProcess:
    pw_file = cfg.secrets_dir / "argon2-module-test.pw"
    pw_file.write_text(password)
    try:
        return subprocess.run(
            ["/usr/sbin/slappasswd", "-o", f"module-load={cfg.directory.argon2_module} {args}",
             "-h", scheme, "-T", str(pw_file)], capture_output=True, text=True)
    finally:
        pw_file.unlink()


def test_the_module_takes_openldaps_arguments_and_more_lanes(slapd) -> None:
    out = slappasswd(slapd, "m=20480 t=4 p=2")
    assert out.returncode == 0, out.stderr
    made = out.stdout.strip()
    assert made.startswith("{ARGON2}$argon2id$v=19$m=20480,t=4,p=2$")
    assert argon2.PasswordHasher().verify(made[len("{ARGON2}"):], "Module-arg-pass-9")


@pytest.mark.parametrize("args", ["m=4", "t=0", "q=1", "m=lots", "p=0", "m=8 p=2"])
def test_the_module_refuses_arguments_argon2_cannot_use(slapd, args: str) -> None:
    """Refused when slapd loads the module, not at the first password: the module is
    loaded here and another scheme asked for, so no argon2 hash is made."""
    assert slappasswd(slapd, "", scheme="{SSHA}").returncode == 0  # the module loads
    assert slappasswd(slapd, args, scheme="{SSHA}").returncode != 0
