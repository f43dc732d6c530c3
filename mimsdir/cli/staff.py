"""Registers the ICT staff commands (student, qna, requests, report, audit) on the main group,
and logs every run of them to the operator log.

Why a wrapper here rather than in each command: every staff command, including one that fails
on a usage error, a directory outage or a row error, must leave one line in the operator log
(design: ``mimsdir audit`` puts the OS user next to the directory's writes). The noun groups
and top-level commands registered here are ``Logged*`` classes that time the run, take the exit
code from however it ended, and append the record; nothing is logged for ``--help``.

The helpers below (connections, printing row errors, the exit code of a batch) are shared by
the staff command modules, which import them from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from mimsdir import operator_log
from mimsdir.cli.context import Ctx
from mimsdir.connect import admin_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import ExitCode, MimsError
from mimsdir.ldapio import Conn
from mimsdir.staff.model import RowError

_RUN_KEY = "mimsdir.operator_run"
_HELP = {"--help", "-h"}
#: Commands that act as the host's root whatever the config says (only root reads cn=accesslog).
_AS_ROOT = {"audit"}


@dataclass
class _Run:
    owner: int
    name: str
    args: list[str]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    done: bool = False


def _exit_code(exc: BaseException) -> int | None:
    if isinstance(exc, click.exceptions.Exit):
        return int(exc.exit_code)
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, MimsError):
        return int(exc.exit_code)
    if isinstance(exc, click.ClickException):
        return int(exc.exit_code)
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return 1
    return None  # a bug: the record says the run crashed


def _finish(ctx: click.Context, command: click.Command, exit_code: int | None) -> None:
    run = ctx.meta.get(_RUN_KEY)
    if not isinstance(run, _Run) or run.owner != id(ctx) or run.done:
        return
    run.done = True
    if _HELP.intersection(run.args):
        return
    obj = ctx.find_object(Ctx)
    if obj is None:
        return
    try:
        cfg = obj.cfg
    except MimsError:
        return  # no config, no log path: the command itself reports the config error
    args = list(run.args)
    name = run.name
    if isinstance(command, click.Group) and args and args[0] in command.commands:
        name = f"{name} {args.pop(0)}"
    as_dn = Dns(cfg.ldap.base_dn).root if run.name in _AS_ROOT or not cfg.ldap.admin_dn \
        else cfg.ldap.admin_dn
    record = operator_log.make_record(name, args, exit_code, run.started, as_dn=as_dn,
                                      config=obj.config_path)
    path = cfg.path(cfg.cli.operator_log)
    try:
        operator_log.append(path, record)
    except OSError as exc:
        click.echo(f"mimsdir: warning: could not write the operator log {path}: "
                   f"{exc.strerror}", err=True)


class _LoggedMixin:
    """parse_args + invoke hooks; the outermost logged command of a run owns the record."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if _RUN_KEY not in ctx.meta:
            ctx.meta[_RUN_KEY] = _Run(owner=id(ctx), name=ctx.info_name or "?", args=list(args))
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc,no-any-return]
        except click.exceptions.Exit:
            raise  # --help
        except click.ClickException as exc:
            _finish(ctx, self, exc.exit_code)  # type: ignore[arg-type]
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            rv = super().invoke(ctx)  # type: ignore[misc]
        except BaseException as exc:
            _finish(ctx, self, _exit_code(exc))  # type: ignore[arg-type]
            raise
        _finish(ctx, self, 0)  # type: ignore[arg-type]
        return rv


class LoggedGroup(_LoggedMixin, click.Group):
    """A staff noun (student, qna, requests): every run of a subcommand is logged."""


class LoggedCommand(_LoggedMixin, click.Command):
    """A top-level staff command (report, audit), logged the same way."""


# -- shared helpers for the staff command modules ----------------------------------------------

def connect(ctx: Ctx) -> Conn:
    """Staff commands act as ldap.admin_dn if configured, else the host's root over ldapi."""
    return admin_conn(ctx.cfg)


def dns_of(ctx: Ctx) -> Dns:
    return Dns(ctx.cfg.ldap.base_dn)


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def report_errors(errors: list[RowError]) -> None:
    for err in errors:
        click.echo(f"error: {err}", err=True)


def finish_batch(errors: list[RowError], interrupted: MimsError | None = None) -> None:
    """Exit per design-notes §6: 4 if the directory went away mid-run, 1 with row errors."""
    report_errors(errors)
    if interrupted is not None:
        raise interrupted
    if errors:
        raise click.exceptions.Exit(int(ExitCode.ROW_ERRORS))


def register(group: click.Group) -> None:
    """Add each staff noun's click group (and report, audit) to ``group``."""
    from mimsdir.cli import audit, qna, report, requests, student

    group.add_command(student.student)
    group.add_command(qna.qna)
    group.add_command(requests.requests)
    group.add_command(report.report)
    group.add_command(audit.audit)
