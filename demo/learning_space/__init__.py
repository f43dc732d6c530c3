"""The demo learning space (``app.py``): an OpenID Connect application on
http://127.0.0.1:8081 (``LEARNING_SPACE_LISTEN``), registered by ``make demo`` once.

Its registration, as ICT staff would make it::

    mimsdir app add "Demo learning space" --oidc \\
        --redirect-uri http://127.0.0.1:8081/callback \\
        --post-logout-uri http://127.0.0.1:8081/signed-out \\
        --backchannel-logout-uri http://127.0.0.1:8081/backchannel-logout --json
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from demo.common import MARK, Context, DemoApp, State
from demo.learning_space.app import Settings, create_app

NAME = "Demo learning space"
KEY = "learning-space"

__all__ = ["DEMO", "NAME", "Settings", "create_app"]


def _matches(registered: dict[str, Any], s: Settings) -> bool:
    return (registered.get("protocol") == "oidc" and registered.get("has_secret") is True
            and registered.get("redirect_uris") == [s.redirect_uri]
            and registered.get("post_logout_redirect_uris") == [s.post_logout_uri]
            and registered.get("backchannel_logout_uri") == s.backchannel_uri)


def register(ctx: Context, listen: str) -> State:
    """The learning space's registration: the saved one if the directory still has it with
    these addresses; otherwise a new one (and any stale copy removed)."""
    want = Settings(issuer=ctx.cfg.portal.public_url, base_url=f"http://{listen}")
    saved = ctx.load_state(KEY) or {}
    client_id = saved.get("client_id")
    registered = ctx.app_json(client_id) if isinstance(client_id, str) else None
    if registered is not None and saved.get("client_secret") and _matches(registered, want):
        action = "reused"
    else:
        if registered is not None:  # moved to another address: register it anew
            ctx.mimsdir("app", "remove", str(client_id))
        out = json.loads(ctx.mimsdir(
            "app", "add", NAME, "--oidc", "--redirect-uri", want.redirect_uri,
            "--post-logout-uri", want.post_logout_uri,
            "--backchannel-logout-uri", want.backchannel_uri,
            "--description", f"the demo's OpenID Connect application ({MARK})",
            "--json").stdout)
        client_id, saved["client_secret"] = out["client_id"], out["client_secret"]
        action = "registered"
    ctx.remove_stale(NAME, keep=str(client_id))
    return {"client_id": client_id, "client_secret": saved["client_secret"],
            "issuer": want.issuer, "url": want.base_url, "listen": listen, "action": action}


def from_state(state: State) -> Any:
    return create_app(Settings(issuer=state["issuer"], base_url=state["url"],
                               client_id=state["client_id"],
                               client_secret=state["client_secret"]))


def how_to_try(state: State) -> Sequence[str]:
    return [f"Try it: open {state['url']}/, press \"Sign in with my school account\" and sign in",
            "as the P2 student: the learning space shows who signed in and what the portal told",
            "it. \"Sign out\" there signs you out of the portal and of every demo application."]


DEMO = DemoApp(key=KEY, title="the learning space (OpenID Connect)",
               listen_env="LEARNING_SPACE_LISTEN", default_listen="127.0.0.1:8081",
               register=register, create_app=from_state, how_to_try=how_to_try)
