"""The CLI's own record of who ran which staff command: one JSON line per run.

Why, next to slapd's accesslog: the accesslog knows the *directory identity* that wrote
(``cn=host-root`` for everything done as root on the server, or an ICT admin's DN), not the
person at the keyboard. This log adds the OS user (``SUDO_USER`` when run through sudo, else
the login name), the command line and its exit code; ``mimsdir audit`` merges both by time
and puts the person next to each directory write made during their command.

Secrets: staff commands take none on the command line by design, and every option whose name
looks like it could carry one (password, secret, token, answer, ...) has its value replaced
before anything is written. The file is created mode 0600 (its folder 0700) and appended to
under an exclusive lock, one ``write`` per record, so concurrent runs never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REDACTED = "<redacted>"
_SECRET_OPTION = re.compile(r"pass|secret|token|answer|pwd|credential|\bpw\b|\bpin\b", re.I)


def operator_user() -> str:
    """The person: the sudo caller if any, else the login name (uid when there is none)."""
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        return sudo
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def _secret_option(arg: str) -> bool:
    return arg.startswith("-") and bool(_SECRET_OPTION.search(arg.lstrip("-")))


def redact_args(args: Sequence[str]) -> list[str]:
    """Arguments with the value of any password-looking option replaced.

    >>> redact_args(["reset-password", "S1", "--password", "Tiger4821", "--token=abc", "--show"])
    ['reset-password', 'S1', '--password', '<redacted>', '--token=<redacted>', '--show']
    """
    out: list[str] = []
    redact_next = False
    for arg in args:
        if redact_next and not arg.startswith("-"):
            out.append(REDACTED)
            redact_next = False
            continue
        redact_next = False
        name, eq, _value = arg.partition("=")
        if _secret_option(name):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(arg)
                redact_next = True
            continue
        out.append(arg)
    return out


@dataclass(frozen=True)
class OperatorRecord:
    """One command run. ``time`` and ``end`` are UTC; ``as_dn`` is the directory identity the
    command acted as (the admin DN from the config, or the host root's DN)."""

    time: datetime
    end: datetime
    user: str
    command: str
    args: list[str] = field(default_factory=list)
    exit: int | None = 0
    as_dn: str | None = None
    config: str | None = None
    login: str | None = None
    pid: int = 0

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["time"] = self.time.astimezone(UTC).isoformat()
        data["end"] = self.end.astimezone(UTC).isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OperatorRecord:
        def when(key: str) -> datetime:
            value = datetime.fromisoformat(str(data[key]))
            return value if value.tzinfo else value.replace(tzinfo=UTC)

        exit_code = data.get("exit")
        args = data.get("args")
        pid = data.get("pid")
        return cls(
            time=when("time"),
            end=when("end") if "end" in data else when("time"),
            user=str(data.get("user", "?")),
            command=str(data.get("command", "?")),
            args=[str(a) for a in args] if isinstance(args, list) else [],
            exit=int(exit_code) if isinstance(exit_code, int) else None,
            as_dn=str(data["as_dn"]) if data.get("as_dn") else None,
            config=str(data["config"]) if data.get("config") else None,
            login=str(data["login"]) if data.get("login") else None,
            pid=pid if isinstance(pid, int) else 0,
        )


def make_record(command: str, args: Sequence[str], exit_code: int | None, started: datetime,
                as_dn: str | None = None, config: str | None = None,
                ended: datetime | None = None) -> OperatorRecord:
    """``ended`` defaults to now; callers with a clock of their own (tests) pass it."""
    user = operator_user()
    login = None
    with contextlib.suppress(OSError, KeyError):
        login = getpass.getuser()
    return OperatorRecord(
        time=started, end=ended or datetime.now(UTC), user=user, command=command,
        args=redact_args(args), exit=exit_code, as_dn=as_dn, config=config,
        login=login if login != user else None, pid=os.getpid(),
    )


def append(path: str | os.PathLike[str], record: OperatorRecord) -> None:
    """Append one line (parent folder created 0700, file 0600). Raises OSError."""
    target = Path(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = (json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n").encode()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, 0o600)
    try:
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str], since: datetime | None = None
         ) -> Iterator[OperatorRecord]:
    """Every record (at or after ``since``); a missing file is empty, bad lines are skipped."""
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 (closed below, generator)
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                record = OperatorRecord.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
            if since is None or record.end >= since:
                yield record
