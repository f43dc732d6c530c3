"""The object every command receives: the loaded config, loaded lazily so ``--help`` works
without one."""

from __future__ import annotations

import click

from mimsdir.config import Config, load_config


class Ctx:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._cfg: Config | None = None

    @property
    def cfg(self) -> Config:
        if self._cfg is None:
            self._cfg = load_config(self.config_path)
        return self._cfg


pass_ctx = click.make_pass_decorator(Ctx)
