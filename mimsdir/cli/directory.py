"""``mimsdir directory up|down|status|load``: the embedded slapd."""

from __future__ import annotations

from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.directory import loader, server
from mimsdir.directory import tls as dirtls


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
    t = ctx.cfg.ldap.tls
    tls = f", TLS {'required' if t.require else 'offered'}" if t.on else ""
    if started:
        click.echo(f"directory started: pid {st.pid}, {st.uri}{tls}, state {st.state_dir}")
    else:
        click.echo(f"directory already running: pid {st.pid}, {st.uri}")
        if not server.config_is_current(ctx.cfg):
            click.echo("note: the configuration changed since it started (ldap.tls, ports, "
                       "...); `mimsdir directory down && mimsdir directory up` applies it")


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
    click.echo(f"  tls:      {_tls_summary(ctx)}")


def _tls_summary(ctx: Ctx) -> str:
    t = ctx.cfg.ldap.tls
    if not t.on:
        return "off"
    how = ("required (StartTLS or ldaps; nothing else in clear)" if t.require
           else "offered (StartTLS, ldaps)")
    if t.ldaps_uri:
        how += f", also {t.ldaps_uri}"
    cert = dirtls.current_server_cert(ctx.cfg)
    if cert is None:
        return f"{how}; no certificate yet"
    return (f"{how}; certificate serial {cert.serial:x}, valid until "
            f"{cert.not_after:%Y-%m-%d} ({cert.days_left()} days)")


@directory.group()
def tls() -> None:
    """The directory's TLS certificate (ldap.tls): show the CA to trust, renew."""


@tls.command()
@pass_ctx
def show(ctx: Ctx) -> None:
    """Print the CA certificate (PEM) that devices and clients must trust.

    With `ldap.tls.mode: generate` it is the project's own CA (made by `directory up`);
    with `files`, the configured `ldap.tls.ca_file`. Only the PEM goes to stdout.

    \b
    Example:
      mimsdir directory tls show > mims-directory-ca.pem
    """
    click.echo(dirtls.ca_pem(ctx.cfg), nl=False)


@tls.command()
@pass_ctx
def renew(ctx: Ctx) -> None:
    """Renew slapd's certificate and load it into the running slapd, without a restart.

    `generate`: a new certificate (and key) from the same CA, so no client needs a change.
    `files`: check the replaced cert_file/key_file (key matches, valid now, issued by
    ca_file) and load them. Connections already open carry on; new ones get the new one.

    \b
    Example:
      mimsdir directory tls renew
    """
    cert = dirtls.renew(ctx.cfg)
    running = server.status(ctx.cfg).running
    names = ", ".join(cert.dns_names + cert.ip_addresses)
    click.echo(f"certificate serial {cert.serial:x} for {names}, valid until "
               f"{cert.not_after:%Y-%m-%d}")
    if running:
        click.echo("slapd uses it now for new connections (no restart)")
    else:
        click.echo("directory not running: the next `mimsdir directory up` uses it")


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
