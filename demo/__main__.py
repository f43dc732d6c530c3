"""``python -m demo`` (run from the repository, as ``make demo`` does):

    python -m demo list                    one line per demo app: KEY HOST:PORT
    python -m demo register [CONFIG]       register each demo app once (reused after that)
    python -m demo serve KEY [CONFIG]      serve one with waitress, in the foreground
    python -m demo instructions [CONFIG]   how to try them (printed by make demo)

The registrations are kept in ``$VAR/demo-apps/`` (default ``var/``).
"""

from __future__ import annotations

import argparse
import sys

from demo.catalogue import demo_apps
from demo.common import Context


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo")
    ap.add_argument("command", choices=("list", "register", "serve", "instructions"))
    ap.add_argument("args", nargs="*")
    ns = ap.parse_args(argv)
    apps = demo_apps()
    if ns.command == "list":
        for a in apps:
            print(a.key, a.listen())
        return 0
    if ns.command == "serve":
        if not ns.args:
            ap.error("serve KEY [CONFIG]")
        key, rest = ns.args[0], ns.args[1:]
        chosen = next((a for a in apps if a.key == key), None)
        if chosen is None:
            ap.error(f"no demo app {key!r}: one of {', '.join(a.key for a in apps)}")
        ctx = Context.load(rest[0] if rest else "config.yaml")
        state = ctx.load_state(chosen.key)
        if state is None:
            print(f"{chosen.key} is not registered yet: python -m demo register",
                  file=sys.stderr)
            return 2
        import waitress

        waitress.serve(chosen.create_app(state), listen=state["listen"], threads=4,
                       ident="mims-demo")
        return 0
    ctx = Context.load(ns.args[0] if ns.args else "config.yaml")
    if ns.command == "register":
        for a in apps:
            state = a.register(ctx, a.listen())
            action = state.pop("action", "registered")
            if ctx.load_state(a.key) != state:  # unchanged: untouched (a running app stays)
                ctx.save_state(a.key, state)
            print(f"demo app {a.key}: {action} ({state['url']}/)")
        return 0
    print("\nDemo applications (single sign-on: sign in once, with a demo account above):")
    for a in apps:
        state = ctx.load_state(a.key) or {}
        print(f"  {a.title:40} {state.get('url', '?')}/")
    for a in apps:
        for line in a.how_to_try(ctx.load_state(a.key) or {}):
            print(line)
    if len(apps) > 1:
        print("Signed in to one demo application, open another: the portal does not ask for "
              "the password again.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
