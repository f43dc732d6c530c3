"""The portal reuses bound service connections and its sign-in connections, and recovers
when slapd restarts."""

from __future__ import annotations

from pathlib import Path

import ldap
import pytest

from mimsdir.config import load_config
from mimsdir.connect import network_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import first
from mimsdir.portal.directory import ServicePool
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
    kept = pool._idle.queue[-1][0]
    assert web.get("/healthz").status_code == 200
    assert pool._idle.queue[-1][0] is kept  # the same bound connection, no new bind
    mail = _student(own, "POOL1", "Pool-pass-123")
    assert _signed_in(Browserish(app.test_client()), mail, "Pool-pass-123")
    binds = app.extensions["mims_binds"]
    signing = binds._idle.queue[-1]
    server.down(own)
    assert not signing.looks_alive()  # seen without a round trip
    assert web.get("/healthz").status_code == 503
    server.up(own)
    assert web.get("/healthz").status_code == 200  # the dead connection was replaced
    assert web.login("nobody@x.sg", "whatever").status_code == 200
    # The sign-in connection slapd closed is replaced before a password goes to it.
    assert _signed_in(Browserish(app.test_client()), mail, "Pool-pass-123")
    assert binds._idle.queue[-1] is not signing


def _student(cfg, uid: str, password: str) -> str:  # type: ignore[no-untyped-def]
    dns = Dns(cfg.ldap.base_dn)
    mail = f"{uid.lower()}@students.pool.sg"
    with server.root_conn(cfg) as root:
        root.add(dns.student(uid), {
            "objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [uid.encode()],
            "cn": [b"Pool"], "sn": [b"Pool"], "mail": [mail.encode()],
            "mimsSchoolCode": [b"P"], "mimsLevel": [b"P2"],
            "mimsAccountStatus": [b"active"]}, "adding a test student")
        root.set_password(dns.student(uid), password)
        root.modify(dns.student(uid), [(ldap.MOD_DELETE, "pwdReset", None)], "settled")
    return mail


def _signed_in(web: Browserish, mail: str, password: str) -> bool:
    r = web.login(mail, password)
    return r.status_code == 302 and "/login" not in r.headers["Location"]


def test_sign_ins_share_a_bind_connection_and_nothing_carries_over(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    """One connection serves sign-ins one after the other; each bind is the person's own:
    a must-change bind before does not gate the next person, a wrong password after is
    refused and counted by ppolicy, and the right one still works."""
    app = make_app(slapd)
    told = make.student(level="P3")
    root.set_password(told.dn, "Default-4821")  # a reset: slapd sets pwdReset
    other = make.student(level="P3")
    web = Browserish(app.test_client())
    assert _signed_in(web, told.mail, "Default-4821")
    assert web.get("/").headers["Location"].endswith("/password")
    binds = app.extensions["mims_binds"]
    (conn,) = binds._idle.queue
    web = Browserish(app.test_client())
    assert _signed_in(web, other.mail, other.password)
    assert web.get("/").headers["Location"].endswith("/home")
    assert list(binds._idle.queue) == [conn]  # the same connection, no new handshake
    assert not _signed_in(Browserish(app.test_client()), other.mail, "Wrong-pass-1")
    assert first(root.get(other.dn, ["pwdFailureTime"], "reading") or {}, "pwdFailureTime")
    assert _signed_in(Browserish(app.test_client()), other.mail, other.password)
    assert list(binds._idle.queue) == [conn]


def test_service_pool_asks_the_directory_only_after_a_pause(slapd, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A connection given back moments ago is used at once (no WhoAmI); one idle longer
    than FRESH is asked first, so a directory host that vanished without closing it is
    found out before a request depends on it."""
    pool = ServicePool(slapd, 2)
    conn = pool.borrow()
    asked: list[str] = []
    real = conn.whoami
    monkeypatch.setattr(conn, "whoami", lambda: asked.append("whoami") or real())
    pool.give_back(conn)
    assert pool.borrow() is conn and asked == []
    pool.give_back(conn)
    monkeypatch.setattr(ServicePool, "FRESH", 0.0)
    assert pool.borrow() is conn and asked == ["whoami"]
    conn.close()
    pool.give_back(conn)
    replaced = pool.borrow()  # closed here: never handed out again
    assert replaced is not conn
    replaced.close()


def test_looks_alive_without_a_round_trip(slapd) -> None:  # type: ignore[no-untyped-def]
    conn = network_conn(slapd)
    assert conn.looks_alive()
    conn.close()
    assert not conn.looks_alive()
