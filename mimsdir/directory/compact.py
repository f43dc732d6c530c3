"""Compacting the stopped directory's LMDB files (``mimsdir directory compact``).

Why: after bulk writes (a night of class moves, a first load, a purge) LMDB keeps the freed
pages in its free list and reuses them from there, and at national size that made every
later write cost slapd about 10 ms more of CPU (the portal's session record, each new
student's add, password and flag) until the list was used up; a bind, which writes nothing,
did not change (docs/performance.md, "What makes writes dearer after bulk writes").
``mdb_copy -c`` writes a copy without free pages in about a second for 1 GiB.

Safety: only a stopped directory (its files are not open); the copy is complete and on disk
before ``os.replace`` puts it in the place of the old ``data.mdb`` in one rename, so at any
moment the directory holds either the old file or the whole new one. The contents are the
same page for page of data (entryCSN, contextCSN, everything replication compares).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mimsdir.config import Config
from mimsdir.directory import server
from mimsdir.disk import fsync_dir, fsync_file
from mimsdir.errors import DirectoryError, UsageError

#: The LMDB environments under the state directory: the data and the audit log.
DATABASES = ("data", "accesslog")
MDB_COPY = "/usr/bin/mdb_copy"
MDB_STAT = "/usr/bin/mdb_stat"


@dataclass(frozen=True)
class Compacted:
    database: str
    free_pages_before: int
    free_pages_after: int
    mib_before: float  # the pages in use, not the sparse file's length (olcDbMaxSize)
    mib_after: float
    seconds: float


def pages(env: Path) -> tuple[int, int, int]:
    """(page size, pages in use, free pages) of an LMDB environment, from ``mdb_stat -ef``."""
    res = subprocess.run([MDB_STAT, "-ef", str(env)], capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        raise DirectoryError(f"{env}: mdb_stat failed: {res.stderr.strip()[:200]}")
    found = {key: int(m.group(1)) for key, pattern in (
        ("size", r"Page size: (\d+)"), ("used", r"Number of pages used: (\d+)"),
        ("free", r"Free pages: (\d+)")) if (m := re.search(pattern, res.stdout))}
    if len(found) != 3:
        raise DirectoryError(f"{env}: mdb_stat said nothing of its pages")
    return found["size"], found["used"], found["free"]


def compact(cfg: Config) -> list[Compacted]:
    """Compact every LMDB environment of the stopped directory, one after the other."""
    if server.status(cfg).running:
        raise UsageError("compact rewrites the database files: stop the directory first "
                         "(mimsdir directory down), or use --restart")
    for tool in (MDB_COPY, MDB_STAT):
        if not Path(tool).is_file():
            raise DirectoryError(f"{tool} not found (Debian's lmdb-utils; scripts/bootstrap.sh "
                                 f"installs it)")
    done = []
    for name in DATABASES:
        env = cfg.state_dir / name
        if (env / "data.mdb").is_file():
            done.append(_compact_one(name, env))
    if not done:
        raise UsageError(f"{cfg.state_dir}: no directory here yet (mimsdir directory up)")
    return done


def _compact_one(name: str, env: Path) -> Compacted:
    size, used, free = pages(env)
    t0 = time.perf_counter()
    work = env / "compact.tmp"
    shutil.rmtree(work, ignore_errors=True)  # a copy an earlier, killed run left
    work.mkdir(mode=0o700)
    try:
        res = subprocess.run([MDB_COPY, "-c", str(env), str(work)], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            raise DirectoryError(f"{env}: mdb_copy -c failed, nothing changed: "
                                 f"{res.stderr.strip()[:200]}")
        copy = work / "data.mdb"
        os.chmod(copy, 0o600)
        fsync_file(copy)
        os.replace(copy, env / "data.mdb")
        fsync_dir(env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    _, used_after, free_after = pages(env)
    return Compacted(name, free, free_after, round(used * size / 2**20, 1),
                     round(used_after * size / 2**20, 1), round(seconds, 2))
