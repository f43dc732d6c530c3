"""`make bench`'s first load and sign-in workloads (benchmarks/bench.py, benchmarks/workloads.py)
at tiny sizes against a throwaway directory: each runs, counts what it did, and is compared
with its floor; nothing is refused. The figures themselves are `make bench`'s business."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from benchmarks import bench, workloads
from mimsdir.directory import server

pytestmark = [pytest.mark.real_clock, pytest.mark.slow]  # a slapd of its own, ~15 s


def test_first_load_and_sign_ins_are_measured_against_their_floors(tmp_path: Path) -> None:
    b = bench.Bench(50, tmp_path)
    try:
        b.setup()
        # Short windows: the floors keep both cores busy, and the figures are not checked.
        first = b.first_load(10, 0.5)
        b.signin(clients=8, seconds=0.5)
    finally:
        server.down(b.cfg)
    r = b.results
    # The entries slapd counts (cn=Monitor): the loaded ones and the base tree's few.
    assert r["load_offline"]["entries"] < r["directory_status"]["entries"] \
        < r["load_offline"]["entries"] + 30

    # 10 new students of a new school, with slips; the floor at the parameters slapd used.
    assert first["students"] == 10 and first["slips"] >= 1
    # The project's slapd module: argon2id; the floor hashes with the module's own code.
    assert re.fullmatch(r"argon2id m=19456 t=3 p=1 \(mimsdir (avx512f|avx2|ssse3|sse2|ref)\)",
                        first["argon2"]), first["argon2"]
    assert first["seconds"] > 0 and first["floor_seconds"] > 0
    assert first["ratio"] == pytest.approx(first["seconds"] / first["floor_seconds"], rel=0.05)
    assert first["cpu_seconds"]["slapd"] > 0 and first["cpu_seconds"]["sync"] > 0

    floor = r["argon2_verify_floor"]
    assert len(floor["runs"]) == 4 and min(floor["runs"]) > 0 and floor["cpu_ms_per_hash"] > 0
    assert len(first["floor_runs"]) == 2  # before and after: the same parameters
    for name in ("device_storm", "device_storm_reconnect", "portal_signins"):
        s = r[name]
        assert s["signins"] > 0 and s["refused"] == 0, (name, s)
        assert s["per_second"] == pytest.approx(s["signins"] / s["seconds"], abs=0.1)
        assert 0 < s["p50_ms"] <= s["p99_ms"], (name, s)
        assert s["ratio"] == pytest.approx(s["per_second"] / s["floor_per_second"], abs=0.02)
        assert min(floor["runs"]) <= s["floor_per_second"] <= max(floor["runs"])
        assert s["slapd_ms_per_signin"] > 0 and isinstance(s["met"], bool)
    # The students must change their first password: the bind says so, and still succeeds.
    for name in ("device_storm", "device_storm_reconnect"):
        assert r[name]["must_change"] == r[name]["signins"]
    assert r["portal_signins"]["portal_ms_per_signin"] > 0

    table = bench.markdown({"size": 50, "date": "today", "machine": bench.machine(),
                            "only": "signin", "results": r})
    assert "| first load, 10 new students" in table
    assert "| device sign-in storm, 8 devices, a connection each" in table
    assert "| portal sign-ins, 8 browsers" in table
    assert "no-op" not in table  # the sync workloads did not run


def test_argon2_of_reads_the_parameters_of_a_stored_hash() -> None:
    a = workloads.argon2_of("{ARGON2}$argon2i$v=19$m=19456,t=3,p=1$"
                            "rf8jnHeU4YwZpKno7L/Hbw$i9ZO2wXKVtqDKLPRYuSTL3CMTTuakuNDbuDJKKxOa9o")
    assert (a.type.name, a.memory_cost, a.time_cost, a.parallelism, a.hash_len) == \
        ("I", 19456, 3, 1, 32)
    with pytest.raises(ValueError, match="not an"):
        workloads.argon2_of("{SSHA}abc")
    assert workloads.nearest_rank([3.0, 1.0, 2.0], 0.5) == 2.0
    assert workloads.nearest_rank([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert math.isnan(workloads.nearest_rank([], 0.5))


def test_argon2_cost_measures_every_implementation_here() -> None:
    """benchmarks/argon2_cost.py (docs/performance.md, "Capacity plan"): the four
    implementations this machine has all hash, and their CPU is counted (small parameters)."""
    from benchmarks.argon2_cost import IMPLEMENTATIONS, measure, thp_mode

    for name in IMPLEMENTATIONS:
        got = measure(name, m=256, t=1, hashes=3)
        assert got is not None, f"{name} is not installed (scripts/bootstrap.sh installs it)"
        assert got["user_ms"] >= 0 and got["kernel_ms"] >= 0
    assert thp_mode() in {"always", "madvise", "never", "unknown"}
