"""What every demo application has: a key, an address, an idempotent registration, a WSGI
app, and lines saying how to try it.

A demo app's registration is kept in ``$VAR/demo-apps/<key>.json`` (folder 0700, file 0600:
it holds the client secret, printed once by ``mimsdir app add``). ``make demo`` run again
reuses it as long as the directory still has that application with the same addresses, so
the directory does not fill up with copies and a running demo app keeps working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mimsdir.config import Config, load_config

#: Every demo registration says so in its description (and ``make demo`` finds stale ones by it).
MARK = "registered by make demo"

State = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """Where ``make demo`` runs: its config (the portal's issuer, the directory) and ``$VAR``."""

    config_path: Path
    cfg: Config
    var: Path

    @classmethod
    def load(cls, config_path: str | Path) -> Context:
        path = Path(config_path)
        return cls(path, load_config(path), Path(os.environ.get("VAR") or "var"))

    def state_path(self, key: str) -> Path:
        return self.var / "demo-apps" / f"{key}.json"

    def load_state(self, key: str) -> State | None:
        try:
            data = json.loads(self.state_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save_state(self, key: str, state: State) -> None:
        """Written 0600 in a 0700 folder, atomically: a running demo app never reads half."""
        path = self.state_path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
        tmp.chmod(0o600)
        tmp.replace(path)

    def mimsdir(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``mimsdir --config CONFIG ARGS...``: the demo registers its applications the way
        ICT staff do, with the CLI."""
        exe = Path(sys.executable).with_name("mimsdir")
        res = subprocess.run([str(exe), "--config", str(self.config_path), *args],
                             capture_output=True, text=True, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"mimsdir {' '.join(args[:2])} failed ({res.returncode}): "
                               f"{(res.stderr or res.stdout).strip()}")
        return res

    def app_json(self, client_id: str) -> dict[str, Any] | None:
        """``mimsdir app show CLIENT_ID --json``, or None when there is no such app (exit 1;
        any other failure, such as the directory being down, is raised)."""
        res = self.mimsdir("app", "show", client_id, "--json", check=False)
        if res.returncode == 1:
            return None
        if res.returncode != 0:
            raise RuntimeError(f"mimsdir app show failed ({res.returncode}): "
                               f"{(res.stderr or res.stdout).strip()}")
        data = json.loads(res.stdout)
        return data if isinstance(data, dict) else None

    def remove_stale(self, name: str, keep: str) -> list[str]:
        """Remove the demo's registrations of ``name`` other than ``keep`` (left behind when
        a state file was deleted: their secrets are lost with it)."""
        apps = json.loads(self.mimsdir("app", "list", "--json").stdout)
        gone = []
        for a in apps:
            if (a.get("name") == name and a.get("client_id") != keep
                    and MARK in (a.get("description") or "")):
                self.mimsdir("app", "remove", a["client_id"])
                gone.append(a["client_id"])
        return gone


@dataclass(frozen=True)
class DemoApp:
    """One demo application.

    - ``key``: names its files: ``$VAR/demo-apps/<key>.json`` (registration),
      ``$VAR/demo-<key>.pid`` and ``$VAR/demo-<key>.log`` (``scripts/demo_apps.sh``).
    - ``listen_env``/``default_listen``: where it listens (``host:port``); the environment
      variable overrides the default.
    - ``register(ctx, listen)``: make sure the directory has it (reuse, never a copy) and
      return the state to save; it must contain ``url`` and ``listen``.
    - ``create_app(state)``: its WSGI app, served by waitress (``python -m demo serve KEY``).
    - ``how_to_try(state)``: the lines ``make demo`` prints for it.
    """

    key: str
    title: str
    listen_env: str
    default_listen: str
    register: Callable[[Context, str], State]
    create_app: Callable[[State], Any]
    how_to_try: Callable[[State], Sequence[str]]

    def listen(self) -> str:
        return os.environ.get(self.listen_env) or self.default_listen
