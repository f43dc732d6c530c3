"""One real slapd per test session; every test gets its own students, teachers and school code.

The directory is started with the project's own `directory up` code path (so the tests cover
it), in a temp state dir on a free loopback port. Its log is printed when a test fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap
import pytest
import yaml
from hypothesis import settings

from mimsdir.config import Argon2Params, Config, load_config
from mimsdir.connect import network_conn
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns, policy_for_level
from mimsdir.errors import MimsError
from mimsdir.ldapio import Conn

# The browser fixtures (`browser`, `page`) are registered once, here: a session-scoped
# Playwright imported into two modules would start twice and collide.
from tests.browser import fixture_browser, fixture_page  # noqa: F401

# CI replays the same examples every run (a landing must not depend on luck); local runs
# keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-shift-days", type=int, default=0,
                     help="run every test that needs no slapd with the clock moved this many "
                          "days ahead (make test: 730), so a test mixing a fixed date with the "
                          "real clock fails today rather than on some later day")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the session slapd (directly or through another fixture) are marked
    ``slapd``: ``-m "not slapd"`` selects the pure unit tests."""
    for item in items:
        if "slapd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slapd)


@pytest.fixture(autouse=True)
def _shifted_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    days = request.config.getoption("--clock-shift-days")
    if not days or "slapd" in request.fixturenames or request.node.get_closest_marker(
            "real_clock"):
        # slapd (and libldap, OpenSSL) run on the real clock: tests that use them cannot be
        # shifted in-process. A certificate made "now" in a shifted test would not be valid
        # yet for the slapd that serves it, nor for the client that checks it.
        yield
        return
    import time_machine

    with time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True):
        yield


def page_cached(path: Path) -> int:
    """Bytes of ``path`` in the page cache (util-linux's fincore, which asks mincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout.strip()
    return int(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Every test directory serves TLS and requires it, as production should (docs/deploy.md): each
#: test that binds or changes a password over the network does it over StartTLS, with the
#: certificate verified against the CA that `directory up` made in the state dir.
TEST_TLS = {"mode": "generate", "require": True}


def write_config(path: Path, state_dir: Path, port: int, tls: object = TEST_TLS,
                 **extra: object) -> Path:
    ldap_cfg: dict[str, object] = {"uri": f"ldap://127.0.0.1:{port}",
                                   "base_dn": "dc=mims,dc=example"}
    if tls is not None:
        ldap_cfg["tls"] = tls
    data: dict[str, object] = {
        "ldap": ldap_cfg,
        "directory": {"state_dir": str(state_dir), "log_level": "stats"},
        # Short waits (3 wrong passwords, then 2 s) so the tests of waits finish in seconds.
        "policies": {
            "lower_primary": {"max_failures": 3, "lockout_seconds": 2,
                              "failure_window_seconds": 60},
            "upper_primary": {"max_failures": 3, "lockout_seconds": 2,
                              "failure_window_seconds": 60},
        },
    }
    for key, value in extra.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    base = tmp_path_factory.mktemp("directory")
    # A second listener speaking TLS from the first byte (ldaps), beside StartTLS.
    cfg_path = write_config(base / "config.yaml", base / "state", free_port(),
                            tls={**TEST_TLS, "ldaps_uri": f"ldaps://127.0.0.1:{free_port()}"})
    cfg = load_config(cfg_path)
    server.up(cfg)
    dns = Dns(cfg.ldap.base_dn)
    with server.root_conn(cfg) as root:
        # The ICT admin group needs a first member (groupOfNames MUST member).
        root.add(dns.admins, {"objectClass": [b"groupOfNames"], "cn": [b"ict-admins"],
                              "member": [dns.root.encode()]}, "adding the admin group")
    yield cfg
    server.down(cfg)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed and "slapd" in item.fixturenames:
        cfg = item.funcargs.get("slapd")
        if isinstance(cfg, Config):
            log = cfg.state_dir / "slapd.log"
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                rep.sections.append(("slapd log (tail)", tail))


@pytest.fixture
def dns(slapd: Config) -> Dns:
    return Dns(slapd.ldap.base_dn)


@pytest.fixture
def root(slapd: Config) -> Iterator[Conn]:
    with server.root_conn(slapd) as c:
        yield c


@dataclass
class Person:
    dn: str
    uid: str
    mail: str
    password: str


_counter = itertools.count(1)
_HASHES: dict[tuple[Argon2Params, str], bytes] = {}


@dataclass
class Factory:
    """Creates uniquely named people for one test and deletes them afterwards."""

    cfg: Config
    root: Conn
    dns: Dns
    school: str = field(default_factory=lambda: "T" + uuid.uuid4().hex[:8].upper())
    created: list[str] = field(default_factory=list)
    admin_members: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def _tag(self) -> str:
        return f"{os.getpid()}x{next(_counter)}"

    def posix(self, uid: str, staff: bool = False) -> dict[str, list[bytes]]:
        """posixAccount attributes with numbers from the real pools (as the host's root):
        the test school's group (added once) or the staff group."""
        from mimsdir.directory.idpool import UID, Group, Pools, ensure_groups, reserve
        from mimsdir.posix import STAFF_GROUP, home_directory, school_group

        p = self.cfg.posix
        pools = Pools(self.dns, p.uid_min, p.gid_min)
        group = STAFF_GROUP if staff else school_group(self.school)
        gids = ensure_groups(self.root, pools, [Group(group, "a test group")])
        if not staff and self.dns.posix_group(group) not in self.groups:
            self.groups.append(self.dns.posix_group(group))
        (number,) = reserve(self.root, pools, UID, 1)
        template = p.staff_home_template if staff else p.home_template
        return {"uidNumber": [str(number).encode()], "gidNumber": [str(gids[group]).encode()],
                "homeDirectory": [home_directory(template, uid, self.school).encode()],
                "loginShell": [p.shell.encode()]}

    def teacher(self, class_name: str = "4A", password: str = "Teacher-pass-1",
                name: str | None = None, posix: bool = False) -> Person:
        uid = f"TCH{self._tag()}"
        dn = f"uid={uid},{self.dns.staff}"
        mail = f"{uid.lower()}@staff.test.sg"
        entry = {
            "objectClass": [b"inetOrgPerson", b"mimsStaff"], "uid": [uid.encode()],
            "cn": [(name or f"Teacher {uid}").encode()], "sn": [b"Teacher"],
            "mail": [mail.encode()],
            "mimsSchoolCode": [self.school.encode()], "mimsClass": [class_name.encode()],
            "pwdPolicySubentry": [self.dns.policy("staff").encode()],
        }
        if posix:
            entry["objectClass"].append(b"posixAccount")
            entry.update(self.posix(uid, staff=True))
        entry["userPassword"] = [self._hashed(password)]
        self.root.add(dn, entry, "adding a test teacher")
        self.created.append(dn)
        return Person(dn, uid, mail, password)

    def admin(self, password: str = "Admin-pass-12") -> Person:
        p = self.teacher(class_name="ICT", password=password)
        self.root.modify(self.dns.admins, [(ldap.MOD_ADD, "member", [p.dn.encode()])],
                         "adding an ICT admin")
        self.admin_members.append(p.dn)
        return p

    def student(self, level: str = "P4", class_name: str = "4A", teacher: Person | None = None,
                password: str | None = "Student-pw-1", status: str = "active",
                posix: bool = False, **attrs: list[bytes]) -> Person:
        uid = f"S{self._tag()}"
        dn = self.dns.student(uid)
        mail = f"{uid.lower()}@students.test.sg"
        entry = {
            "objectClass": [b"inetOrgPerson", b"mimsStudent"], "uid": [uid.encode()],
            "cn": [f"Student {uid}".encode()], "sn": [b"Student"], "mail": [mail.encode()],
            "mimsSchoolCode": [self.school.encode()], "mimsLevel": [level.encode()],
            "mimsClass": [class_name.encode()], "mimsAccountStatus": [status.encode()],
            "pwdPolicySubentry": [self.dns.policy(policy_for_level(level)).encode()],
        }
        if teacher is not None:
            entry["mimsFormTeacher"] = [teacher.dn.encode()]
        if posix:
            entry["objectClass"].append(b"posixAccount")
            entry.update(self.posix(uid))
        if password:
            entry["userPassword"] = [self._hashed(password)]
        entry.update(attrs)
        self.root.add(dn, entry, "adding a test student")
        self.created.append(dn)
        return Person(dn, uid, mail, password or "")

    def _hashed(self, password: str) -> bytes:
        """The password hashed once per session with the server's own argon2 (slappasswd),
        added with the entry: a settled password (no pwdReset), as a Password Modify and a
        pwdReset removal left it, without slapd hashing it again for every test person (a
        third of the suite's argon2 work)."""
        key = (self.cfg.directory.argon2, password)
        if key not in _HASHES:
            _HASHES[key] = server.hash_password(self.cfg, password).encode()
        return _HASHES[key]

    def cleanup(self) -> None:
        for dn in self.admin_members:
            with contextlib.suppress(MimsError):
                self.root.modify(self.dns.admins, [(ldap.MOD_DELETE, "member", [dn.encode()])],
                                 "removing an ICT admin")
        for dn in [*reversed(self.created), *self.groups]:
            with contextlib.suppress(MimsError):
                self.root.delete(dn, "deleting a test entry")


@pytest.fixture
def make(slapd: Config, root: Conn, dns: Dns) -> Iterator[Factory]:
    f = Factory(slapd, root, dns)
    yield f
    f.cleanup()


def conn_as(cfg: Config, dn: str, password: str) -> Conn:
    c = network_conn(cfg, timeout=5)
    c.bind(dn, password)
    return c


def service_conn(cfg: Config, name: str) -> Conn:
    pw = (cfg.secrets_dir / f"{name}.pw").read_text().strip()
    return conn_as(cfg, Dns(cfg.ldap.base_dn).service(name), pw)
