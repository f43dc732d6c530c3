"""A school's own device account: ``cn=device-<code>,ou=services`` (class ``mimsDevice``).

The directory's ``cn=device`` sees every student and member of staff (it must: a national
image signs anyone in). A school that configures its devices with its own account instead
limits what one leaked device password discloses to that school: the ACLs (schema/acl.in,
``${school_device}``) let such an account read exactly what ``cn=device`` reads, of people
whose ``mimsSchoolCode`` is its own, and the posix groups; the same limits apply (5 entries
per search, at most 100 examined).

Its password is generated here, set with the Password Modify operation (so slapd hashes it),
and written to ``<secrets_dir>/device-<code>.pw`` (0600); it is never printed. With several
providers the entry replicates; copy the file to wherever devices are configured.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import ldap

from mimsdir.config import Config
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import NotFound, UsageError
from mimsdir.ldapio import Conn, first

_CODE = re.compile(r"[A-Za-z0-9]{1,16}")  # the roster's school codes (roster/validate.py)


@dataclass(frozen=True)
class SchoolDevice:
    school: str
    dn: str
    password_file: Path
    has_file: bool


def _code(school: str) -> str:
    if not _CODE.fullmatch(school.strip()):
        raise UsageError(f"school code {school!r}: 1-16 letters or digits, as in the roster")
    return school.strip().upper()


def password_file(cfg: Config, school: str) -> Path:
    return cfg.secrets_dir / f"device-{_code(school).lower()}.pw"


def add(cfg: Config, conn: Conn, school: str) -> tuple[SchoolDevice, bool]:
    """Make the account (or give an existing one a new password when its file is missing).
    Returns the account and whether anything was written."""
    code = _code(school)
    dns = Dns(cfg.ldap.base_dn)
    dn = dns.school_device(code)
    path = password_file(cfg, code)
    exists = conn.get(dn, ["1.1"], f"looking for {dn}") is not None
    if exists and path.is_file():
        return SchoolDevice(code, dn, path, True), False
    if not exists:
        conn.add(dn, {"objectClass": [b"applicationProcess", b"simpleSecurityObject",
                                      b"mimsDevice"],
                      "cn": [f"device-{code.lower()}".encode()],
                      "mimsSchoolCode": [code.encode()],
                      # simpleSecurityObject needs a value: replaced at once by a real hash.
                      "userPassword": [b"{ARGON2}unusable"],
                      "pwdPolicySubentry": [dns.policy("services").encode()]},
                 f"adding the device account of {code}")
    password = secrets.token_urlsafe(24)
    conn.set_password(dn, password, doing=f"setting the password of {dn}")
    cfg.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password)  # no newline: `ldapsearch -y FILE` takes the file's whole content
    os.chmod(path, 0o600)
    return SchoolDevice(code, dn, path, True), True


def remove(cfg: Config, conn: Conn, school: str) -> bool:
    code = _code(school)
    dn = Dns(cfg.ldap.base_dn).school_device(code)
    try:
        conn.delete(dn, f"removing {dn}")
    except NotFound:
        return False
    finally:
        password_file(cfg, code).unlink(missing_ok=True)
    return True


def list_all(cfg: Config, conn: Conn) -> list[SchoolDevice]:
    dns = Dns(cfg.ldap.base_dn)
    out = []
    for dn, a in conn.search(dns.services, ldap.SCOPE_ONELEVEL, "(objectClass=mimsDevice)",
                             ["mimsSchoolCode"], "listing the school device accounts"):
        code = first(a, "mimsSchoolCode") or "?"
        path = password_file(cfg, code) if _CODE.fullmatch(code) else Path("-")
        out.append(SchoolDevice(code, dn, path, path.is_file()))
    return sorted(out, key=lambda d: d.school)
