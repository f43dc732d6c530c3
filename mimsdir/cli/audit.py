"""``mimsdir audit``: who did what and when (accesslog + the operator log)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mimsdir import operator_log
from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import LoggedCommand, dns_of, echo_json
from mimsdir.connect import root_conn
from mimsdir.errors import NotFound
from mimsdir.staff.audit import (
    AuditQuery,
    accesslog_filter,
    fetch_accesslog,
    merge,
    parse_since,
    render_table,
)
from mimsdir.staff.lookup import find_student


@click.command(cls=LoggedCommand)
@click.option("--since", default="7d", show_default=True,
              help="A date (2026-11-01, local time) or an age (7d, 12h, 30m).")
@click.option("--student", "student_ident", metavar="ID-or-EMAIL",
              help="Only what concerns this student.")
@click.option("--actor", help="Only what this directory identity (DN) or OS user did.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@pass_ctx
def audit(ctx: Ctx, since: str, student_ident: str | None, actor: str | None,
          as_json: bool) -> None:
    """Who did what and when: every directory write (operation, target, actor, the names
    of the attributes changed, never their values) merged by time with the staff commands
    run on this server (OS user, command, exit code).

    A write made during a logged command run is shown with that run's OS user. Runs as the
    host's root over ldapi: only root can read the directory's audit log.

    \b
    Example:
      mimsdir audit --since 7d
      mimsdir audit --student S2614023J --since 2026-11-01
      mimsdir audit --actor uid=T9000001,ou=staff,dc=mims,dc=example --json
    """
    cfg = ctx.cfg
    now = datetime.now(UTC)
    query = AuditQuery(since=parse_since(since, now), actor=actor)
    with root_conn(cfg) as conn:
        if student_ident:
            try:
                s = find_student(conn, dns_of(ctx), student_ident)
                query.target_dn, query.student_names = s.dn, (s.uid, s.login_id, s.dn)
            except NotFound:
                if "@" in student_ident:
                    raise
                # a student purged since: the DN is still known from the ID
                query.target_dn = dns_of(ctx).student(student_ident.strip())
                query.student_names = (student_ident.strip(), query.target_dn)
        actor_dn = actor if actor and "=" in actor else None
        directory_events = list(fetch_accesslog(
            conn, accesslog_filter(query.since, query.target_dn, actor_dn)))
    records = list(operator_log.read(cfg.path(cfg.cli.operator_log), query.since))
    events = merge(directory_events, records, query)
    if actor and not actor_dn:
        # an OS user: the writes made during that user's command runs, and the runs
        events = [e for e in events if (e.operator or "").casefold() == actor.casefold()]
    if as_json:
        echo_json([e.to_json() for e in events])
    else:
        click.echo(render_table(events, cfg.ldap.base_dn), nl=False)
