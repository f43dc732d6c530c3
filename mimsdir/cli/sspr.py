"""``mimsdir sspr serve``: the portal under waitress, a production WSGI server."""

from __future__ import annotations

import logging

import click

from mimsdir.cli.context import Ctx, pass_ctx


@click.group()
def sspr() -> None:
    """The MIMS portal: self-service password reset, password and question changes, and the
    teacher view."""


@sspr.command()
@click.option("--listen", help="host:port (default portal.listen).")
@click.option("--threads", type=int, help="Worker threads (default portal.threads).")
@pass_ctx
def serve(ctx: Ctx, listen: str | None, threads: int | None) -> None:
    """Serve the portal with waitress until stopped (Ctrl-C or SIGTERM).

    \b
    Example:
      mimsdir sspr serve --listen 0.0.0.0:8080 --threads 16
    """
    import waitress

    from mimsdir.portal import create_app

    cfg = ctx.cfg
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(cfg)
    where = listen or cfg.portal.listen
    click.echo(f"MIMS portal on http://{where}/ ({threads or cfg.portal.threads} threads)",
               err=True)
    waitress.serve(app, listen=where, threads=threads or cfg.portal.threads,
                   ident="mims-portal", clear_untrusted_proxy_headers=True)
