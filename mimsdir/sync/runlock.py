"""One sync at a time: an flock on a file in ``sync.state_dir``.

The kernel drops an flock when its holder dies, so a run killed at 2 a.m. never blocks the
next one; the file's content only tells a second run who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from mimsdir.errors import ExitCode, MimsError


class SyncLocked(MimsError):
    exit_code = ExitCode.USAGE
    code = "locked"


@contextlib.contextmanager
def run_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "sync.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            raise SyncLocked(f"another sync is running ({holder}); lock file {path}") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "user": _user()}
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        yield
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return f"pid {info.get('pid', '?')}, started {info.get('started', '?')} by " \
           f"{info.get('user', '?')}"


def _user() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except Exception:  # no passwd entry in a container: the uid will do
        return str(os.getuid())
