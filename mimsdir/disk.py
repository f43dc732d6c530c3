"""Making what was written survive a crash: a file's bytes, then the name a rename gave it.

Shared by every writer that promises "the old file or the whole new one" (the slips and
cards, the staged secret files, a compacted or freshly loaded database)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """The file's bytes on disk (a copy or a load another program wrote, not through us)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: the file is on disk, this makes its name so."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
