"""``mimsdir qna cards|reset``: challenge answers. Cards for P2-P3; clearing answers for anyone."""

from __future__ import annotations

from pathlib import Path

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import LoggedGroup, connect, dns_of, finish_batch
from mimsdir.staff import cards, credentials
from mimsdir.staff.lookup import iter_students, resolve_students
from mimsdir.staff.model import CARD_LEVELS, RowError, student_filter
from mimsdir.staff.secret_output import StagedSecretFile


@click.group(cls=LoggedGroup)
def qna() -> None:
    """Challenge questions and answers: print P2-P3 cards, clear a student's answers.

    \b
    Example:
      mimsdir qna cards --school DEMOPS --class 2A -o cards-2A.pdf
    """


@qna.command("cards")
@click.argument("idents", nargs=-1, metavar="[ID-or-EMAIL]...")
@click.option("--school", help="Every active P2-P3 student of this school (or --class).")
@click.option("--class", "class_name", help="Only this class (with --school).")
@click.option("--level", "levels", multiple=True,
              type=click.Choice(CARD_LEVELS, case_sensitive=False),
              help="P2 or P3 (repeatable); default both.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The PDF to write (mode 0600), four A6 cards per A4 sheet.")
@pass_ctx
def cards_cmd(ctx: Ctx, idents: tuple[str, ...], school: str | None, class_name: str | None,
              levels: tuple[str, ...], output: Path) -> None:
    """Issue pre-set challenge cards: for lower primary (P2 and P3) only.

    Each active student in scope gets new questions and answers, printed on a card for the
    student handbook; the directory keeps only argon2id hashes, and the answers exist
    nowhere but in this PDF (mode 0600): print it, then delete it. Re-issuing replaces a
    student's answers (their old card stops working). P4-P6 students set their own answers
    on the portal; name students one by one to replace a lost card.

    \b
    Example:
      mimsdir qna cards --school DEMOPS -o /root/cards-2027.pdf
      mimsdir qna cards --school DEMOPS --class 2A -o /root/cards-2A.pdf
      mimsdir qna cards S2614023J -o /root/card-lost.pdf
    """
    if idents and (school or class_name or levels):
        raise click.UsageError("give student IDs, or --school (with --class/--level), not both")
    if not idents and not school:
        raise click.UsageError("give student IDs, or --school")
    if class_name and not school:
        raise click.UsageError("--class needs --school")
    staged = StagedSecretFile(output)
    staged.check_target()
    errors: list[RowError] = []
    with connect(ctx) as conn:
        if idents:
            students, errors = resolve_students(conn, dns_of(ctx), idents)
            eligible = []
            for s in students:
                why = cards.card_refusal(s)
                if why:
                    errors.append(RowError(s.uid, why))
                else:
                    eligible.append(s)
        else:
            filterstr = student_filter(school=school, class_name=class_name,
                                       levels=levels or CARD_LEVELS, status="active")
            eligible = list(iter_students(conn, dns_of(ctx), filterstr))
        if not eligible and not errors:
            click.echo("no active P2-P3 students in scope: no cards written")
            return
        result = cards.issue_cards(conn, ctx.cfg, eligible, staged)
    for s in result.changed:
        click.echo(f"card {s.uid}  {s.display}  class {s.class_name}")
    if result.cards:
        click.echo(f"{result.cards} card(s) in {output} (mode 0600): print, cut, put in the "
                   "handbooks, then delete the file")
    else:
        click.echo("no cards written")
    finish_batch(errors + result.errors, result.interrupted)


@qna.command("reset")
@click.argument("idents", nargs=-1, required=True, metavar="ID-or-EMAIL...")
@pass_ctx
def reset(ctx: Ctx, idents: tuple[str, ...]) -> None:
    """Clear students' challenge answers; they must register new ones.

    P4-P6 students are asked for new questions and answers at their next visit to the
    portal. For P2-P3, issue a new card afterwards (`mimsdir qna cards ID`).

    \b
    Example:
      mimsdir qna reset S2614023J
    """
    with connect(ctx) as conn:
        students, errors = resolve_students(conn, dns_of(ctx), idents)
        result = credentials.apply_steps(conn, students, credentials.plan_qna_reset,
                                         "clearing the challenge answers of")
    for s in result.changed:
        hint = ("issue a new card: mimsdir qna cards " + s.uid if s.level in CARD_LEVELS
                else "new answers at the next sign-in to the portal")
        click.echo(f"cleared {s.uid}  {s.display}  class {s.class_name}: {hint}")
    finish_batch(errors + result.errors, result.interrupted)
