"""``mimsdir app add|list|show|remove|rotate-secret`` and ``mimsdir app keys rotate|list``:
the applications that may sign people in through the portal (OpenID Connect clients, SAML
service providers) and the identity provider's signing keys.

Registrations act as ICT staff (``ldap.admin_dn`` if configured, else the host's root over
ldapi), like the other staff commands, and are logged in the operator log. A client secret is
printed once, when it is made (``add``, ``rotate-secret``), and never again: the directory
keeps only its argon2id hash, and neither the operator log nor ``show`` carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from mimsdir.apps.keys import KeyInfo, saml_credentials, store_for
from mimsdir.apps.model import (
    ID_TOKEN_ALGS,
    LEVELS,
    ROLES,
    SCOPES,
    App,
    hash_secret,
    new_client_id,
    new_client_secret,
    validate_app,
    validate_redirect_uri,
)
from mimsdir.apps.registry import NoSecret, Registry
from mimsdir.apps.saml_metadata import parse_sp_metadata
from mimsdir.cli.context import Ctx, pass_ctx
from mimsdir.cli.staff import LoggedGroup, connect, dns_of, echo_json
from mimsdir.errors import NotFound, UsageError
from mimsdir.staff.model import show_time

#: Printed (on stderr) next to a new client secret.
_SHOWN_ONCE = ("Store the secret in the application's configuration now: it is shown only "
               "this once (`mimsdir app rotate-secret {id}` makes a new one).")


@click.group(cls=LoggedGroup)
def app() -> None:
    """Register the applications people sign in to through the portal, and manage the
    identity provider's signing keys.

    \b
    Example:
      mimsdir app add "Maths Quest" --oidc --redirect-uri https://mathsquest.example/cb
      mimsdir app add "Library" --saml --metadata library-sp.xml --role student
      mimsdir app list
    """


def _unique(values: Iterable[str], fold: bool = False) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for v in values:
        key = v.casefold() if fold else v
        if key not in seen:
            seen.add(key)
            out.append(v)
    return tuple(out)


def _check_uris(option: str, uris: Iterable[str]) -> tuple[str, ...]:
    for uri in uris:
        try:
            validate_redirect_uri(uri)
        except ValueError as exc:
            raise UsageError(f"{option} {uri!r} {exc}") from None
    return _unique(uris)


def _registry(ctx: Ctx) -> tuple[Registry, Any]:
    conn = connect(ctx)
    return Registry(conn, dns_of(ctx)), conn


# -- add -------------------------------------------------------------------------------------

_OIDC_ONLY = ("--redirect-uri", "--post-logout-uri", "--backchannel-logout-uri", "--public",
              "--scope", "--consent", "--pairwise", "--id-token-alg")


@app.command("add")
@click.argument("name")
@click.option("--oidc", is_flag=True, help="An OpenID Connect client (needs --redirect-uri).")
@click.option("--saml", is_flag=True, help="A SAML service provider (needs --metadata).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, metavar="URI",
              help="OIDC: where the portal may send the browser back (exact; https, or http "
                   "to a loopback host). Repeat for several.")
@click.option("--post-logout-uri", "post_logout_uris", multiple=True, metavar="URI",
              help="OIDC: where the browser may go after signing out. Repeatable.")
@click.option("--backchannel-logout-uri", metavar="URI",
              help="OIDC: the app's back-channel logout endpoint.")
@click.option("--public", is_flag=True,
              help="OIDC: a public client (a native or browser app that cannot keep a "
                   "secret): no secret, PKCE only.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES),
              help="OIDC: a scope the app may ask for (default: all of them). Repeatable.")
@click.option("--consent", is_flag=True,
              help="OIDC: ask people before their first sign-in (default: no consent page "
                   "for school-managed apps).")
@click.option("--pairwise", is_flag=True,
              help="OIDC: give this app its own subject identifier for each person.")
@click.option("--id-token-alg", type=click.Choice(ID_TOKEN_ALGS), default=None,
              help="OIDC: sign this app's ID tokens with RS256 (default) or ES256.")
@click.option("--metadata", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="SAML: the service provider's metadata XML.")
@click.option("--level", "levels", multiple=True, type=click.Choice(LEVELS, case_sensitive=False),
              help="Only students of this level (teachers and staff: see --role). Repeatable.")
@click.option("--school", "schools", multiple=True, metavar="CODE",
              help="Only people of this school. Repeatable.")
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES, case_sensitive=False),
              help="Only people with this role. Repeatable.")
@click.option("--description", help="A note for ICT staff (shown by `app show`).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"client_id": ..., "client_secret": ...} and nothing else.')
@pass_ctx
def add(ctx: Ctx, name: str, oidc: bool, saml: bool, redirect_uris: tuple[str, ...],
        post_logout_uris: tuple[str, ...], backchannel_logout_uri: str | None, public: bool,
        scopes: tuple[str, ...], consent: bool, pairwise: bool, id_token_alg: str | None,
        metadata: Path | None,
        levels: tuple[str, ...], schools: tuple[str, ...], roles: tuple[str, ...],
        description: str | None, as_json: bool) -> None:
    """Register an application; print its client id and, for a confidential OpenID Connect
    client, its secret: once, now, never again.

    With no --level, --school or --role, everybody may sign in to it. A bad redirect URI or
    metadata file is refused with one line (exit 2) and nothing is written; a SAML entity ID
    that is registered already is refused (exit 3).

    \b
    Example:
      mimsdir app add "Maths Quest" --oidc \\
          --redirect-uri https://mathsquest.example/oidc/callback --level P4 --level P5
      mimsdir app add "Reading app" --oidc --public --redirect-uri http://127.0.0.1/cb --json
      mimsdir app add "Library e-books" --saml --metadata library-sp.xml --role student
    """
    if oidc == saml:
        raise UsageError("app add: give exactly one of --oidc and --saml")
    common: dict[str, Any] = {
        "client_id": new_client_id(), "name": name.strip(), "description": description,
        "allowed_levels": _unique(lv.upper() for lv in levels),
        "allowed_schools": _unique((s.strip() for s in schools), fold=True),
        "allowed_roles": _unique(r.lower() for r in roles),
    }
    secret: str | None = None
    if oidc:
        if metadata is not None:
            raise UsageError("app add: --metadata is for --saml")
        if not redirect_uris:
            raise UsageError("app add: --oidc needs at least one --redirect-uri")
        if public:
            secret_hash = None
        else:
            secret = new_client_secret()
            secret_hash = hash_secret(secret)
        new = App(protocol="oidc", **common,
                  redirect_uris=_check_uris("--redirect-uri", redirect_uris),
                  post_logout_redirect_uris=_check_uris("--post-logout-uri", post_logout_uris),
                  backchannel_logout_uri=_check_uris("--backchannel-logout-uri",
                                                     [backchannel_logout_uri])[0]
                  if backchannel_logout_uri is not None else None,
                  public=public, secret_hash=secret_hash,
                  scopes=_unique(scopes) if scopes else App.scopes,
                  consent=consent, pairwise=pairwise, id_token_alg=id_token_alg or "RS256")
    else:
        given = [opt for opt, value in zip(_OIDC_ONLY, (
            redirect_uris, post_logout_uris, backchannel_logout_uri, public, scopes, consent,
            pairwise, id_token_alg), strict=True) if value]
        if given:
            raise UsageError(f"app add: {', '.join(given)} only for --oidc (a SAML SP's "
                             f"addresses come from its metadata)")
        if metadata is None:
            raise UsageError("app add: --saml needs --metadata FILE")
        new = _saml_app(metadata, common)
    try:
        validate_app(new)
    except ValueError as exc:
        raise UsageError(f"app add: {exc}") from None
    registry, conn = _registry(ctx)
    with conn:
        registry.add(new)
    if as_json:
        echo_json({"client_id": new.client_id, "client_secret": secret})
        return
    kind = ("SAML service provider" if new.protocol == "saml" else
            "OpenID Connect, public client" if new.public else "OpenID Connect, confidential")
    click.echo(f"registered {new.name!r} ({kind})")
    click.echo(f"client_id:     {new.client_id}")
    if new.protocol == "saml":
        click.echo(f"entity_id:     {new.saml_entity_id}")
        for url in new.redirect_uris:
            click.echo(f"acs:           {url}")
    else:
        click.echo(f"issuer:        {ctx.cfg.portal.public_url}")
    if secret is not None:
        click.echo(f"client_secret: {secret}")
        click.echo(_SHOWN_ONCE.format(id=new.client_id), err=True)


def _saml_app(metadata: Path, common: dict[str, Any]) -> App:
    try:
        data = metadata.read_bytes()
    except OSError as exc:
        raise UsageError(f"{metadata}: cannot read: {exc.strerror}") from None
    try:
        md = parse_sp_metadata(data)
    except ValueError as exc:
        raise UsageError(f"{metadata}: {exc}") from None
    for url in md.acs_urls:
        try:
            validate_redirect_uri(url)
        except ValueError as exc:
            raise UsageError(f"{metadata}: AssertionConsumerService {url!r} {exc}") from None
    return App(protocol="saml", **common, redirect_uris=md.acs_urls, scopes=(),
               saml_entity_id=md.entity_id, saml_metadata=md.xml)


# -- list, show ------------------------------------------------------------------------------

def _kind(a: App) -> str:
    if a.protocol == "saml":
        return "saml"
    return "oidc-public" if a.public else "oidc"


def _who(a: App) -> str:
    parts = []
    if a.allowed_roles:
        parts.append("/".join(a.allowed_roles))
    if a.allowed_levels:
        parts.append("students " + ",".join(a.allowed_levels))
    if a.allowed_schools:
        parts.append("school " + ",".join(a.allowed_schools))
    return "; ".join(parts) or "everyone"


def app_view(a: App, metadata: bool = True) -> dict[str, Any]:
    """What ``list``/``show --json`` print: everything but the secret's hash (whether there
    is one is ``has_secret``)."""
    view: dict[str, Any] = {
        "client_id": a.client_id, "name": a.name, "protocol": a.protocol,
        "public": a.public, "has_secret": a.secret_hash is not None,
        "redirect_uris": list(a.redirect_uris),
        "post_logout_redirect_uris": list(a.post_logout_redirect_uris),
        "backchannel_logout_uri": a.backchannel_logout_uri,
        "scopes": list(a.scopes), "consent": a.consent, "pairwise": a.pairwise,
        "id_token_alg": a.id_token_alg if a.protocol == "oidc" else None,
        "allowed_levels": list(a.allowed_levels), "allowed_schools": list(a.allowed_schools),
        "allowed_roles": list(a.allowed_roles), "saml_entity_id": a.saml_entity_id,
        "description": a.description,
    }
    if metadata:
        view["saml_metadata"] = a.saml_metadata
    return view


@app.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list (no secrets, no metadata).")
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List the registered applications: client id, kind, name, who may sign in.

    \b
    Example:
      mimsdir app list
      mimsdir app list --json
    """
    registry, conn = _registry(ctx)
    with conn:
        apps = registry.list()
    if as_json:
        echo_json([app_view(a, metadata=False) for a in apps])
        return
    if not apps:
        click.echo("no applications registered (mimsdir app add --help)")
        return
    width = max(len(a.client_id) for a in apps)
    for a in apps:
        click.echo(f"{a.client_id:<{width}}  {_kind(a):<11}  {a.name}  ({_who(a)})")


@app.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="JSON (no secret, no secret hash).")
@pass_ctx
def show(ctx: Ctx, client_id: str, as_json: bool) -> None:
    """Show one application's registration (never its secret nor the secret's hash).

    \b
    Example:
      mimsdir app show app-3kZ9w1bq0xT4m2Lp
    """
    registry, conn = _registry(ctx)
    with conn:
        a = registry.get(client_id)
    if a is None:
        raise NotFound(f"no application {client_id!r} (mimsdir app list)")
    if as_json:
        echo_json(app_view(a))
        return
    secret = ("none (public client: PKCE)" if a.public else "none (SAML)"
              if a.protocol == "saml" else "set (stored as an argon2id hash; not shown)")
    rows: list[tuple[str, str]] = [
        ("client id", a.client_id), ("name", a.name),
        ("protocol", "SAML 2.0" if a.protocol == "saml" else "OpenID Connect"),
        ("secret", secret),
    ]
    if a.protocol == "oidc":
        rows += [("redirect URI", u) for u in a.redirect_uris]
        rows += [("post-logout URI", u) for u in a.post_logout_redirect_uris]
        if a.backchannel_logout_uri:
            rows.append(("back-channel logout", a.backchannel_logout_uri))
        rows += [("scopes", " ".join(a.scopes)), ("consent page", "yes" if a.consent else "no"),
                 ("pairwise subject", "yes" if a.pairwise else "no")]
    else:
        rows.append(("entity ID", a.saml_entity_id or "-"))
        rows += [("ACS URL", u) for u in a.redirect_uris]
        rows.append(("metadata", f"{len((a.saml_metadata or '').encode())} bytes "
                                 f"(--json shows it)"))
    rows += [("who may sign in", _who(a)), ("description", a.description or "-")]
    for label, value in rows:
        click.echo(f"{label:<20}{value}")


# -- remove, rotate-secret -------------------------------------------------------------------

@app.command("remove")
@click.argument("client_id")
@pass_ctx
def remove(ctx: Ctx, client_id: str) -> None:
    """Remove an application: nobody can sign in to it through the portal any more. Exit 1
    if there is no such application.

    \b
    Example:
      mimsdir app remove app-3kZ9w1bq0xT4m2Lp
    """
    registry, conn = _registry(ctx)
    with conn:
        if not registry.remove(client_id):
            raise NotFound(f"no application {client_id!r} (mimsdir app list)")
    click.echo(f"removed {client_id}")


@app.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"client_id": ..., "client_secret": ...} and nothing else.')
@pass_ctx
def rotate_secret(ctx: Ctx, client_id: str, as_json: bool) -> None:
    """Give a confidential OpenID Connect client a new secret, printed once. The old secret
    stops working at once: update the application straight away. Public clients and SAML
    apps have no secret (exit 2).

    \b
    Example:
      mimsdir app rotate-secret app-3kZ9w1bq0xT4m2Lp
    """
    registry, conn = _registry(ctx)
    with conn:
        a = registry.get(client_id)
        if a is None:
            raise NotFound(f"no application {client_id!r} (mimsdir app list)")
        if a.protocol != "oidc" or a.public:
            kind = "a SAML app" if a.protocol == "saml" else "a public client"
            raise NoSecret(f"{client_id} is {kind}: it has no secret")
        secret = new_client_secret()
        registry.set_secret_hash(client_id, hash_secret(secret))
    if as_json:
        echo_json({"client_id": client_id, "client_secret": secret})
        return
    click.echo(f"client_id:     {client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The old secret no longer works. " + _SHOWN_ONCE.format(id=client_id), err=True)


@app.command("saml-cert")
@pass_ctx
def saml_cert(ctx: Ctx) -> None:
    """Print the SAML IdP's signing certificate (PEM): what a service provider pins, e.g.
    Google Workspace's "Verification certificate" (docs/apps.md). The same certificate is
    in the IdP metadata, <portal.public_url>/saml/metadata. Made on first use if the portal
    has not made it yet (run as the portal's user).

    \b
    Example:
      mimsdir app saml-cert > mims-idp-cert.pem
    """
    _key, cert = saml_credentials(ctx.cfg.secrets_dir)
    click.echo(cert.read_text(encoding="ascii"), nl=False)


# -- keys ------------------------------------------------------------------------------------

@app.group("keys")
def keys() -> None:
    """The identity provider's signing keys (in <secrets_dir>/oidc-keys, shared by every
    portal instance).

    \b
    Example:
      mimsdir app keys list
      mimsdir app keys rotate
    """


def _key_view(k: KeyInfo) -> dict[str, Any]:
    return {"kid": k.kid, "alg": k.alg, "state": k.state, "created": k.created.isoformat(),
            "retire_after": k.retire_after.isoformat() if k.retire_after else None}


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help='Print {"rotated": [kid, ...], '
                                                      '"retired": [kid, ...]}.')
@pass_ctx
def keys_rotate(ctx: Ctx, as_json: bool) -> None:
    """Make new signing keys (RS256 and ES256) and sign with them from now on. The old ones
    stay published for oidc.key_grace_hours, so tokens they signed still verify; keys whose
    grace has ended are deleted.

    \b
    Example:
      mimsdir app keys rotate
    """
    store = store_for(ctx.cfg)
    new = store.rotate()
    retired = store.retire_expired()
    if as_json:
        echo_json({"rotated": new, "retired": retired})
        return
    listed = store.keys()
    infos = {k.kid: k for k in listed}
    for kid in new:
        click.echo(f"new signing key {kid} ({infos[kid].alg})")
    previous = [k for k in infos.values() if k.state == "previous"]
    if previous:
        until = max(k.retire_after for k in previous if k.retire_after)
        click.echo(f"previous keys stay published until {show_time(until)}; run this again "
                   f"after that to delete them (or let the next rotation do it)")
    for kid in retired:
        click.echo(f"deleted retired key {kid}")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list (public facts only).")
@pass_ctx
def keys_list(ctx: Ctx, as_json: bool) -> None:
    """List the signing keys: kid, algorithm, state (active, previous), made at, published
    until. Never a private part.

    \b
    Example:
      mimsdir app keys list
    """
    infos = store_for(ctx.cfg).keys()
    if as_json:
        echo_json([_key_view(k) for k in infos])
        return
    if not infos:
        click.echo("no signing keys yet (the portal makes them on first use, or: mimsdir app "
                   "keys rotate)")
        return
    for k in infos:
        until = f", published until {show_time(k.retire_after)}" if k.retire_after else ""
        click.echo(f"{k.kid}  {k.alg}  {k.state:<8}  made {show_time(k.created)}{until}")
