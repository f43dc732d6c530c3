"""``mimsdir directory up|down|status|load``: the embedded slapd."""

from __future__ import annotations

from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.directory import loader, server


@click.group()
def directory() -> None:
    """Run the embedded OpenLDAP directory (state dir and URI from the config)."""


@directory.command()
@pass_ctx
def up(ctx: Ctx) -> None:
    """Start slapd with schema, policies, ACLs and service accounts. Idempotent.

    \b
    Example:
      mimsdir directory up
    """
    st, started = server.up(ctx.cfg)
    if started:
        click.echo(f"directory started: pid {st.pid}, {st.uri}, state {st.state_dir}")
    else:
        click.echo(f"directory already running: pid {st.pid}, {st.uri}")


@directory.command()
@pass_ctx
def down(ctx: Ctx) -> None:
    """Stop the embedded slapd (by its pid file).

    \b
    Example:
      mimsdir directory down
    """
    if server.down(ctx.cfg):
        click.echo("directory stopped")
    else:
        click.echo("directory was not running")


@directory.command()
@pass_ctx
def status(ctx: Ctx) -> None:
    """Say whether slapd runs, where, and how many entries it holds. Exit 4 if not running.

    \b
    Example:
      mimsdir directory status
    """
    st = server.status(ctx.cfg)
    if not st.running:
        click.echo(f"directory not running (state {st.state_dir})")
        raise SystemExit(4)
    click.echo(f"directory running: pid {st.pid}")
    click.echo(f"  uri:      {st.uri}")
    click.echo(f"  ldapi:    {st.ldapi_uri}")
    click.echo(f"  state:    {st.state_dir}")
    click.echo(f"  entries:  {st.entries if st.entries is not None else '?'}")
    click.echo(f"  students: {st.students if st.students is not None else '?'}")


@directory.command()
@click.argument("ldif", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def load(ctx: Ctx, ldif: Path) -> None:
    """Add the entries of an LDIF file (as the host's root over ldapi).

    Entries that already exist are left as they are and counted, so loading twice is safe.

    \b
    Example:
      mimsdir directory load ldap-fixtures/demo-school.ldif
    """
    added, existing = loader.load_ldif(ctx.cfg, ldif)
    click.echo(f"{ldif}: {added} added, {existing} already present")
