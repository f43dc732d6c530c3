"""A PDF of secrets (cards, slips), staged so the paper always matches the directory.

The order, and why (issue 4): a card or slip is only useful if the directory holds what it
prints, and the directory's new secret is only usable if a card or slip carries it.

1. Render the whole batch in memory first: a missing font or a card that does not fit fails
   here, before the directory is touched.
2. Stage it: write the bytes to ``.<name>.pending`` next to the output (mode 0600, atomic).
   This proves the folder is writable and the disk has room, still before any write to the
   directory.
3. Store the secrets in the directory, student by student.
4. Commit: if every student was stored, rename the staged file into place (atomic); if some
   failed, render again with only the stored ones and write that instead; if none, delete it.
   A directory outage mid-batch commits the students stored so far, then reports exit 4.

So a delivered PDF (one at the name the operator asked for) only ever holds secrets that the
directory has. What a crash (power loss, kill -9) between 3 and 4 can leave is some students
with new secrets and the PDF still under its ``.pending`` name: not delivered. Rerunning the
same command re-issues (cards replace all answers; resets set new passwords) and overwrites
the pending file, so a rerun converges; the report's "credentials pending" column shows
students whose reset password never reached a slip.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mimsdir.disk import fsync_dir
from mimsdir.errors import UsageError
from mimsdir.secret_docs import write_secret_file


class StagedSecretFile:
    """One output PDF with its staged twin ``.<name>.pending`` in the same folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.pending = self.path.parent / f".{self.path.name}.pending"

    def check_target(self) -> None:
        """Refuse early (exit 2) when the output cannot be written: before any secret exists."""
        parent = self.path.parent
        if not parent.is_dir():
            raise UsageError(f"{self.path}: folder {parent} does not exist")
        if self.path.exists() and not self.path.is_file():
            raise UsageError(f"{self.path}: exists and is not a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{self.path}: folder {parent} is not writable")

    def stage(self, data: bytes) -> None:
        self.check_target()
        try:
            write_secret_file(self.pending, data)
        except OSError as exc:
            raise UsageError(f"{self.pending}: cannot write: {exc.strerror}") from None

    def commit(self, data: bytes | None = None) -> None:
        """Put the staged file in place, or (``data`` given) write these bytes instead."""
        if data is None:
            os.replace(self.pending, self.path)
            fsync_dir(self.path.parent)
            return
        write_secret_file(self.path, data)
        self.discard()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pending)

