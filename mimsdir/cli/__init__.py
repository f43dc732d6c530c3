"""The ``mimsdir`` command: a click group, one module per noun.

Errors are mapped to exit codes here and nowhere else (design-notes §6): a ``MimsError``
prints one line on stderr and exits with its code; anything else is a bug, logged with a
reference, and exits 4 without a traceback that could carry a secret.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.errors import ExitCode, MimsError


class MimsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MimsError as exc:
            click.echo(f"mimsdir: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except OSError as exc:
            # A file that cannot be read or written (a report path, a slips folder): one
            # line naming it, not a traceback.
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"mimsdir: {exc.strerror or exc}{where}", err=True)
            sys.exit(int(ExitCode.USAGE))


@click.group(cls=MimsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="MIMS_CONFIG", help="YAML config (default: $MIMS_CONFIG, ./config.yaml).")
@click.version_option(package_name="mimsdir")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Student MIMS directory: students, rosters, passwords and challenge answers in OpenLDAP.

    \b
    Example:
      mimsdir --config /etc/mimsdir/config.yaml directory status
    """
    ctx.obj = Ctx(config_path)


def _register() -> None:
    from mimsdir.cli import app, directory, sspr, staff, sync

    main.add_command(directory.directory)
    main.add_command(sync.sync)
    main.add_command(sspr.sspr)
    staff.register(main)
    main.add_command(app.app)


_register()

__all__ = ["ExitCode", "main", "pass_ctx"]
