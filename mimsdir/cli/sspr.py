"""``mimsdir sspr serve``: the portal under waitress, a production WSGI server."""

from __future__ import annotations

import logging

import click

from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.connect import refuse_on_consumer


@click.group()
def sspr() -> None:
    """The MIMS portal: self-service password reset, password and question changes, and the
    teacher view."""


@sspr.command()
@click.option("--listen", help="host:port (default portal.listen).")
@click.option("--threads", type=int, help="Worker threads (default portal.threads).")
@click.option("--metrics-listen", metavar="HOST:PORT|off",
              help="Where /metrics is served (default portal.metrics_listen; off: nowhere).")
@pass_ctx
def serve(ctx: Ctx, listen: str | None, threads: int | None,
          metrics_listen: str | None) -> None:
    """Serve the portal with waitress until stopped (Ctrl-C or SIGTERM).

    /metrics is served on its own listener (portal.metrics_listen, loopback by default), never
    on the portal's address. Behind a proxy, set portal.trusted_proxies (docs/deploy.md).

    \b
    Example:
      mimsdir sspr serve --listen 0.0.0.0:8080 --threads 16
    """
    from mimsdir.portal import create_app, serving

    cfg = ctx.cfg
    refuse_on_consumer(cfg, "the portal")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = listen or cfg.portal.listen
    count = threads or cfg.portal.threads
    metrics_where = cfg.portal.metrics_listen if metrics_listen is None else (
        None if metrics_listen == "off" else metrics_listen)
    for option, value in (("--listen", where), ("--metrics-listen", metrics_where)):
        host, _, port = (value or "h:0").rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(f"expected host:port, got {value!r}", param_hint=option)
    app = create_app(cfg)
    behind = (f", trusting {cfg.portal.trusted_proxies} proxy(ies) at "
              f"{cfg.portal.trusted_proxy_address}") if cfg.portal.trusted_proxies else ""
    click.echo(f"MIMS portal on http://{where}/ ({count} threads{behind}); metrics "
               + (f"on http://{metrics_where}/metrics" if metrics_where else "off"), err=True)
    serving.serve(cfg, app, where, count, metrics_where)
