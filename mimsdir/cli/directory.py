"""``mimsdir directory up|down|status|load|compact``: the embedded slapd."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.connect import refuse_on_consumer
from mimsdir.directory import devices, loader, posixfill, server
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
@click.option("--count-students", is_flag=True,
              help="also count the students (reads every one: seconds at national size)")
@pass_ctx
def status(ctx: Ctx, count_students: bool) -> None:
    """Say whether slapd runs, where, how many entries it holds, its replication role and how
    far its copy goes (contextCSN: compare between servers). Exit 4 if not running.

    \b
    Example:
      mimsdir directory status
      mimsdir directory status --count-students
    """
    st = server.status(ctx.cfg, count_students=count_students)
    if not st.running:
        click.echo(f"directory not running (state {st.state_dir})")
        raise SystemExit(4)
    click.echo(f"directory running: pid {st.pid}")
    click.echo(f"  uri:      {st.uri}")
    click.echo(f"  ldapi:    {st.ldapi_uri}")
    click.echo(f"  state:    {st.state_dir}")
    click.echo(f"  entries:  {st.entries if st.entries is not None else '?'}")
    if count_students:
        click.echo(f"  students: {st.students if st.students is not None else '?'}")
    click.echo(f"  tls:      {_tls_summary(ctx)}")
    r = ctx.cfg.directory.replication
    if r.consumer:
        click.echo(f"  role:     read-only consumer of {', '.join(r.providers)}")
    elif r.server_id:
        click.echo(f"  role:     provider, server id {r.server_id}, peers {', '.join(r.peers)}")
    # How far this copy goes (replication's contextCSN, one per provider): compare the lines
    # between servers (docs/replication.md, "A consumer out of date").
    for csn in st.context_csns:
        click.echo(f"  csn:      {csn}")


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
@click.option("--offline", is_flag=True,
              help="slapadd into the stopped directory: a national file or a full backup")
@pass_ctx
def load(ctx: Ctx, ldif: Path, offline: bool) -> None:
    """Add the entries of an LDIF file (as the host's root over ldapi).

    Entries that already exist are left as they are and counted, so loading twice is safe.
    With --offline the directory must be stopped: slapadd writes the database directly
    (hundreds of thousands of entries, operational attributes of a backup kept), and the
    database is synced to disk before it returns; an entry that exists already stops the
    load there.

    \b
    Example:
      mimsdir directory load ldap-fixtures/demo-school.ldif
      mimsdir directory down && mimsdir directory load --offline national.ldif \\
        && mimsdir directory up
    """
    if offline:
        res = loader.load_offline(ctx.cfg, ldif)
        click.echo(f"{ldif}: {res.entries} entries loaded in {res.seconds:.1f} s "
                   f"({res.rate:.0f} a second); start it: mimsdir directory up")
        return
    added, existing = loader.load_ldif(ctx.cfg, ldif)
    click.echo(f"{ldif}: {added} added, {existing} already present")
    if added:
        _backfill(ctx, dry_run=False)


@directory.command()
@click.option("--restart", is_flag=True,
              help="stop the running directory first and start it again after")
@pass_ctx
def compact(ctx: Ctx, restart: bool) -> None:
    """Compact the stopped directory's database files: the pages that bulk writes freed made
    every later write dearer (docs/operations.md, "After a big night"). Seconds at national
    size; the entries are unchanged.

    \b
    Example:
      mimsdir directory down && mimsdir directory compact && mimsdir directory up
      mimsdir directory compact --restart
    """
    from mimsdir.directory import compact as compacting

    stopped_at = None
    if restart and server.status(ctx.cfg).running:
        server.down(ctx.cfg)
        stopped_at = time.monotonic()
    try:
        for c in compacting.compact(ctx.cfg):
            click.echo(f"{c.database}: {c.free_pages_before} free pages -> "
                       f"{c.free_pages_after}, {c.mib_before} MiB -> {c.mib_after} MiB in use, "
                       f"{c.seconds} s")
    finally:
        # Stopped here: started again whatever happened (a failed copy changes nothing).
        if stopped_at is not None:
            server.up(ctx.cfg)
            click.echo(f"directory up again after {time.monotonic() - stopped_at:.1f} s")


@directory.command("posix-backfill")
@click.option("--dry-run", is_flag=True, help="count who lacks them; change nothing")
@pass_ctx
def posix_backfill(ctx: Ctx, dry_run: bool) -> None:
    """Give staff and students without posixAccount their uid/gid numbers, home and shell.

    Staff never pass through the sync; run this after adding staff by hand, and once after
    upgrading a directory made before the posix attributes (`directory load` runs it
    itself). Whoever has them already is left alone: running it twice changes nothing.

    \b
    Example:
      mimsdir directory posix-backfill --dry-run
      mimsdir directory posix-backfill
    """
    _backfill(ctx, dry_run)


def _backfill(ctx: Ctx, dry_run: bool) -> None:
    refuse_on_consumer(ctx.cfg, "the posix back-fill")
    res = posixfill.backfill(ctx.cfg, lambda: server.root_conn(ctx.cfg), dry_run=dry_run)
    verb = "would get" if dry_run else "got"
    click.echo(f"posix attributes: {res.staff} staff and {res.students} students {verb} them"
               + (f" (groups: {', '.join(sorted(res.groups))})" if res.groups else ""))
    for line in res.failures:
        click.echo(f"  failed: {line}", err=True)
    if res.failures:
        raise SystemExit(1)


@directory.group()
def device() -> None:
    """A school's own device account, which sees that school's people only."""


@device.command("add")
@click.argument("school")
@pass_ctx
def device_add(ctx: Ctx, school: str) -> None:
    """Add cn=device-<school>; its password goes to <secrets_dir>/device-<school>.pw (0600).

    Configure that school's devices (nslcd binddn, SSSD ldap_default_bind_dn) with it
    instead of cn=device: they see the school's students and staff only (docs/devices.md).
    Run again when the password file is lost: the account gets a new password.

    \b
    Example:
      mimsdir directory device add DEMOPS
    """
    refuse_on_consumer(ctx.cfg, "adding a device account")
    with server.root_conn(ctx.cfg) as conn:
        dev, written = devices.add(ctx.cfg, conn, school)
    what = "added" if written else "already there"
    click.echo(f"{dev.dn}: {what}; password in {dev.password_file}")


@device.command("remove")
@click.argument("school")
@pass_ctx
def device_remove(ctx: Ctx, school: str) -> None:
    """Remove a school's device account and its password file.

    \b
    Example:
      mimsdir directory device remove DEMOPS
    """
    refuse_on_consumer(ctx.cfg, "removing a device account")
    with server.root_conn(ctx.cfg) as conn:
        gone = devices.remove(ctx.cfg, conn, school)
    click.echo(f"device account of {school.upper()}: {'removed' if gone else 'not found'}")


@device.command("list")
@pass_ctx
def device_list(ctx: Ctx) -> None:
    """List the school device accounts and whether their password file is here.

    \b
    Example:
      mimsdir directory device list
    """
    with server.root_conn(ctx.cfg) as conn:
        found = devices.list_all(ctx.cfg, conn)
    for d in found:
        click.echo(f"{d.school:16} {d.dn}  {d.password_file if d.has_file else '(no file)'}")
    if not found:
        click.echo("no school device accounts (devices use cn=device)")
