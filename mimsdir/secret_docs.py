"""What cards and slips carry, and writing them safely: apart from the PDF code (fpdf2,
fontTools and Pillow: 30 MB and a third of a second to import) so that the commands that
never draw a PDF, the nightly sync on a quiet night first, do not load it. ``mimsdir.pdfs``
draws them and re-exports these names."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mimsdir.disk import fsync_dir
from mimsdir.errors import ExitCode, MimsError

__all__ = ["CardData", "FontMissing", "SlipData", "write_secret_file"]


class FontMissing(MimsError):
    """A font (or the text shaper) that cards and slips need is not installed."""

    exit_code = ExitCode.USAGE
    code = "font-missing"


@dataclass
class CardData:
    """One student's pre-set challenge card (P2-P3). `questions` holds (question text, answer)."""

    name: str
    display_name: str
    school: str
    class_name: str
    login_id: str
    questions: list[tuple[str, str]]

    def __repr__(self) -> str:  # never show the answers in a traceback or a log
        return (
            f"CardData(name={self.name!r}, class_name={self.class_name!r}, "
            f"login_id={self.login_id!r}, questions=<{len(self.questions)} hidden>)"
        )


@dataclass
class SlipData:
    """One student's default-password slip."""

    name: str
    display_name: str
    class_name: str
    login_id: str
    password: str
    school: str

    def __repr__(self) -> str:  # never show the password in a traceback or a log
        return (
            f"SlipData(name={self.name!r}, class_name={self.class_name!r}, "
            f"login_id={self.login_id!r}, password=<hidden>)"
        )


def write_secret_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only (mode 0600).

    The bytes go to a new temp file in the same directory, created with O_EXCL and mode 0600
    (so it is never readable by others, not even for a moment), fsynced, then renamed over
    `path`; the directory is fsynced so the rename survives a crash. A crash leaves either the
    old file or the whole new one, never half a PDF. An existing file at `path` is replaced.
    """
    target = Path(path)
    directory = target.parent
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask can only have removed bits; make it exact
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)

