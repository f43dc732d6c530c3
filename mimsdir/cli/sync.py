"""``mimsdir sync ROSTER``: the nightly roster sync."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.config import parse_limit
from mimsdir.errors import DirectoryUnavailable
from mimsdir.roster import FORMATS
from mimsdir.sync.report import summary
from mimsdir.sync.run import SyncOptions, SyncOutcome, run


def _limit(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_limit(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command()
@click.argument("roster", required=False, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="native", show_default=True,
              help="native CSV, a OneRoster 1.1 folder or zip, or a Google Admin export.")
@click.option("--school", help="Only this school code: the scope of disables.")
@click.option("--dry-run", is_flag=True, help="Plan and print; write nothing.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON (no secrets).")
@click.option("--slips-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where new students' password slips go (default sync.slips_dir).")
@click.option("--max-disable", callback=_limit, help="Override sync.max_disable: N or N%.")
@click.option("--force", is_flag=True, help="Override every safety limit (recorded).")
@click.option("--purge", is_flag=True,
              help="Also delete students who left more than sync.retention_days ago.")
@click.option("--plan-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan as JSON (with --dry-run: review it, then --apply-plan).")
@click.option("--apply-plan", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Apply a saved plan, if the directory has not changed since.")
@pass_ctx
def sync(ctx: Ctx, roster: Path | None, fmt: str, school: str | None, dry_run: bool,
         report_path: Path | None, slips_dir: Path | None, max_disable: str | None,
         force: bool, purge: bool, plan_out: Path | None, apply_plan: Path | None) -> None:
    """Make the directory match a school roster: create, update, promote, move, disable.

    Refuses (exit 3, nothing written) when the roster is empty, a school is missing, more
    students would be disabled than sync.max_disable allows, or a school's roster shrank by
    more than sync.max_shrink. Exit codes: 0 done, 1 done with row errors, 2 usage (or
    another sync running), 3 refused, 4 directory unreachable (a rerun converges).

    \b
    Examples:
      mimsdir sync /srv/roster/students.csv --report /var/log/mimsdir/sync.json
      mimsdir sync export.zip --format oneroster --dry-run --plan-out plan.json
      mimsdir sync --apply-plan plan.json
    """
    opts = SyncOptions(roster=roster, fmt=fmt, school=school, dry_run=dry_run, force=force,
                       purge=purge, max_disable=max_disable, slips_dir=slips_dir,
                       plan_out=plan_out, apply_plan=apply_plan)
    try:
        outcome = run(ctx.cfg, opts,
                      progress_factory=_progress_bar if sys.stderr.isatty() else None)
    except DirectoryUnavailable as exc:
        # The directory went away mid-run: report what was done, then exit 4 as usual.
        partial = getattr(exc, "outcome", None)
        if partial is not None:
            click.echo(summary(partial), err=True)
            _write_report(report_path, partial)
        raise
    click.echo(summary(outcome), err=True)
    _write_report(report_path, outcome)
    sys.exit(int(outcome.exit_code))


def _write_report(path: Path | None, outcome: SyncOutcome) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome.report(), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def _progress_bar(total: int) -> Callable[[int], None]:
    bar = click.progressbar(length=total, label="applying", file=sys.stderr)
    bar.__enter__()
    state = {"n": 0}

    def step(n: int) -> None:
        state["n"] += n
        bar.update(n)
        if state["n"] >= total:
            bar.__exit__(None, None, None)

    return step
