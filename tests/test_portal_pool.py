"""The portal reuses bound service connections, and recovers when slapd restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mimsdir.config import load_config
from mimsdir.directory import server
from tests.conftest import free_port, write_config
from tests.portal_helpers import Browserish, make_app

# Each test starts a slapd of its own (tests/conftest.py: no clock shift).
pytestmark = pytest.mark.real_clock


@pytest.fixture
def own(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = load_config(write_config(tmp_path / "config.yaml", tmp_path / "state", free_port()))
    server.up(cfg)
    yield cfg
    server.down(cfg)


def test_pool_reuses_and_survives_a_restart(own) -> None:  # type: ignore[no-untyped-def]
    app = make_app(own)
    web = Browserish(app.test_client())
    assert web.get("/healthz").status_code == 200
    pool = app.extensions["mims_pool"]
    first = pool._idle.queue[-1]
    assert web.get("/healthz").status_code == 200
    assert pool._idle.queue[-1] is first  # the same bound connection, no new bind
    server.down(own)
    assert web.get("/healthz").status_code == 503
    server.up(own)
    assert web.get("/healthz").status_code == 200  # the dead connection was replaced
    assert web.login("nobody@x.sg", "whatever").status_code == 200
