"""``mimsdir requests import FORM.csv``: reset the students named by a reset-form export."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import LoggedGroup, connect, dns_of, finish_batch
from mimsdir.errors import NotFound, UsageError
from mimsdir.ldapio import Conn
from mimsdir.staff import credentials
from mimsdir.staff.lookup import find_student, iter_students
from mimsdir.staff.model import StudentRecord, student_filter
from mimsdir.staff.requests import FormFile, match_rows, parse_form
from mimsdir.staff.secret_output import StagedSecretFile


@click.group(cls=LoggedGroup)
def requests() -> None:
    """Handle "Student Password Reset Form" requests exported as CSV.

    \b
    Example:
      mimsdir requests import responses.csv --school DEMOPS -o reset-slips.pdf
    """


def read_form(path: Path) -> FormFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (export the form as CSV UTF-8)"
                         ) from None
    return parse_form(text, str(path))


class _Directory:
    """The look-ups matching needs, with one search per school (cached)."""

    def __init__(self, ctx: Ctx, conn: Conn) -> None:
        self.ctx, self.conn = ctx, conn
        self._schools: dict[str, list[StudentRecord]] = {}

    def by_email(self, email: str) -> StudentRecord | None:
        try:
            return find_student(self.conn, dns_of(self.ctx), email)
        except NotFound:
            return None

    def school(self, code: str) -> Sequence[StudentRecord]:
        key = code.strip().upper()
        if key not in self._schools:
            filterstr = student_filter(school=code.strip(), status="active")
            self._schools[key] = list(iter_students(
                self.conn, dns_of(self.ctx), filterstr,
                ["uid", "mail", "cn", "givenName", "sn", "displayName", "mimsSchoolCode",
                 "mimsLevel", "mimsClass", "mimsAccountStatus", "mimsCredentialPending"],
                doing=f"listing the students of school {code.strip()}"))
        return self._schools[key]


@requests.command("import")
@click.argument("form", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The slips PDF (mode 0600); default: "
                   "<sync.slips_dir>/reset-requests-<time>.pdf.")
@click.option("--school", help="School code for rows that name a student by name + class "
                               "and have no School column.")
@click.option("--dry-run", is_flag=True, help="Match and report only; reset nobody.")
@pass_ctx
def import_(ctx: Ctx, form: Path, output: Path | None, school: str | None,
            dry_run: bool) -> None:
    """Reset every student named by a reset-form CSV export; slips grouped by class.

    Each row must name exactly one active student: by the student's email (login ID),
    else by student name + class within the school (the School column, else --school),
    ignoring case and spaces. Matched students get a default password (must change at next
    sign-in), with one slip each in one PDF, sorted by class then name. Unmatched or
    ambiguous rows are listed with their line number (exit 1); a student requested twice is
    reset once. Accepted column names are listed in docs/operations.md.

    \b
    Example:
      mimsdir requests import reset-form.csv -o /root/reset-slips.pdf
      mimsdir requests import reset-form.csv --school DEMOPS --dry-run
    """
    parsed = read_form(form)
    if parsed.ignored:
        click.echo(f"note: columns not used: {', '.join(parsed.ignored)}", err=True)
    if output is None and not dry_run:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        slips_dir = ctx.cfg.path(ctx.cfg.sync.slips_dir)
        slips_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        output = slips_dir / f"reset-requests-{stamp}.pdf"
    staged = StagedSecretFile(output) if output and not dry_run else None
    if staged is not None:
        staged.check_target()
    with connect(ctx) as conn:
        directory = _Directory(ctx, conn)
        matches = match_rows(parsed, directory.by_email, directory.school, school)
        for m in matches.matched:
            click.echo(f"{form}:{m.row.line}: {m.student.uid}  {m.student.display}  "
                       f"class {m.student.class_name}  (requested by {m.row.requester})")
        for row, first in matches.duplicates:
            click.echo(f"{form}:{row.line}: same student as line {first}: reset once")
        errors = parsed.errors + matches.errors
        if dry_run:
            click.echo(f"dry run: {len(matches.matched)} student(s) would be reset")
            finish_batch(errors)
            return
        students = [m.student for m in matches.matched]
        result = credentials.reset_batch(conn, ctx.cfg, students, output=staged)
    n = len(result.slips)
    if n:
        click.echo(f"{n} password(s) reset; {n} slip(s) in {output} (mode 0600): print, hand "
                   "out, then delete the file")
    else:
        click.echo("no password reset")
    finish_batch(errors + result.errors, result.interrupted)

