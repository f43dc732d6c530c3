"""``mimsdir report``: students per school, level and class; what needs attention."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import LoggedCommand, connect, dns_of, echo_json
from mimsdir.staff.lookup import Lockouts, iter_students
from mimsdir.staff.model import student_filter
from mimsdir.staff.report import REPORT_ATTRS, ReportAggregator


@click.command(cls=LoggedCommand)
@click.option("--school", help="Only this school (code).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@pass_ctx
def report(ctx: Ctx, school: str | None, as_json: bool) -> None:
    """Per school, level and class: active and departed students, lockouts, passwords
    waiting to be changed, challenge answers (registered, still the card's at P4+, missing)
    and passwords that no slip has carried.

    One paged search over the students, counted as it streams: fine for 500,000 students.
    The legend under the table explains each column.

    \b
    Example:
      mimsdir report --school DEMOPS
      mimsdir report --json > report.json
    """
    now = datetime.now(UTC)
    with connect(ctx) as conn:
        lockouts = Lockouts.read(conn, dns_of(ctx))
        agg = ReportAggregator(now, lockouts.seconds)
        agg.add_all(iter_students(conn, dns_of(ctx), student_filter(school=school),
                                  REPORT_ATTRS, doing="counting students for the report"))
    result = agg.report()
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.to_table(), nl=False)
