"""One error tree for the whole project, mapped to exit codes once, at the CLI's edge.

Every error a person may see carries a one-line message that says what was being attempted;
none carries a password or an answer.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of design-notes §6, for cron and scripts."""

    OK = 0
    ROW_ERRORS = 1
    USAGE = 2
    REFUSED = 3
    DIRECTORY = 4


class MimsError(Exception):
    """Root of every error mimsdir raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE
    code = "error"


class ConfigError(MimsError):
    """The configuration file or the command line is wrong; nothing was done."""

    exit_code = ExitCode.USAGE
    code = "config"


class UsageError(MimsError):
    exit_code = ExitCode.USAGE
    code = "usage"


class RefusedError(MimsError):
    """A safety limit refused the run before anything was written."""

    exit_code = ExitCode.REFUSED
    code = "refused"


class DirectoryError(MimsError):
    """The directory is unreachable or failed mid-run; rerunning converges."""

    exit_code = ExitCode.DIRECTORY
    code = "directory"


class DirectoryUnavailable(DirectoryError):
    code = "unavailable"


class TlsRefused(DirectoryUnavailable):
    """No TLS session with the directory: it offers no StartTLS there, or its certificate is
    not one we trust for that host. Nothing was sent; retrying soon will not help."""

    code = "tls"


class NotFound(MimsError):
    exit_code = ExitCode.ROW_ERRORS
    code = "not-found"


class PolicyViolation(MimsError):
    """slapd's password policy refused a password (too short, in history, ...).

    ``ppolicy_error`` is the password policy control's error (mimsdir.ldapio.PP_*), when
    slapd sent one; ``diagnostic`` the server's text. slapd's password check module
    (slapd-modules/mims_pwcheck.c) starts its text with a stable code, ``check_code``.
    """

    exit_code = ExitCode.ROW_ERRORS
    code = "policy"
    ppolicy_error: int | None = None
    diagnostic: str = ""

    @property
    def check_code(self) -> str | None:
        """The check module's rule that refused the password ("common", "name", "login",
        "school", "repeat", "sequence", "space", "long", "unavailable"), or None."""
        head = self.diagnostic.split(" ", 1)[0]
        return head[len("mims:"):] if head.startswith("mims:") and len(head) > 5 else None


class Conflict(MimsError):
    """Someone else changed the entry first (an assertion failed, or it already exists)."""

    exit_code = ExitCode.ROW_ERRORS
    code = "conflict"


class AccessDenied(MimsError):
    """slapd's ACLs refused the operation for the identity we were bound as."""

    exit_code = ExitCode.ROW_ERRORS
    code = "access"
