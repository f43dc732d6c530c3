#!/usr/bin/env python3
"""Give the demo's well-known people a password and print how to sign in.

Demo only: each password is generated once into the state dir's secrets (mode 0600) so that
`make demo` prints the same ones every time; a real school issues passwords with slips.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shlex
import sys
from pathlib import Path

import ldap

from mimsdir.config import load_config
from mimsdir.directory.server import root_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import MimsError
from mimsdir.ldapio import first

ROOT = Path(__file__).resolve().parent.parent


def _fixtures():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("demo_fixtures",
                                                  ROOT / "scripts" / "make_demo_fixtures.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["demo_fixtures"] = mod
    spec.loader.exec_module(mod)
    return mod


def _demo_password(secrets_dir: Path, who: str) -> str:
    path = secrets_dir / f"demo-{who}.pw"
    if not path.exists():
        words = ("Mango", "Tiger", "Panda", "Otter", "Lotus", "Comet")
        digits = 6 if who in ("teacher", "ict-admin") else 4  # staff policy: 10 characters
        pw = secrets.choice(words) + "".join(secrets.choice("23456789") for _ in range(digits))
        path.write_text(pw + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def main() -> int:
    cfg = load_config(sys.argv[1] if len(sys.argv) > 1 else None)
    fx = _fixtures()
    dns = Dns(cfg.ldap.base_dn)
    people = {
        "student": (dns.student(fx.DEMO_P2_STUDENT), "a P2 student"),
        "p4-student": (dns.student(fx.DEMO_P4_STUDENT), "a P4 student"),
        "teacher": (f"uid={fx.DEMO_TEACHER},{dns.staff}", "the form teacher of 4A"),
        "ict-admin": (f"uid={fx.DEMO_ICT_ADMIN},{dns.staff}", "the ICT admin"),
    }
    lines = []
    with root_conn(cfg) as root:
        for who, (dn, label) in people.items():
            pw = _demo_password(cfg.secrets_dir, who)
            root.set_password(dn, pw, doing=f"setting the demo password of {label}")
            # A demo account starts settled, not "must change after reset".
            with contextlib.suppress(MimsError):
                root.modify(dn, [(ldap.MOD_DELETE, "pwdReset", None)], "clearing pwdReset")
            mail = first(root.get(dn, ["mail"], "reading the demo login ID") or {}, "mail")
            lines.append((label, mail, pw, dn))
    print("\nDemo accounts (login ID = email):")
    for label, mail, pw, _dn in lines:
        print(f"  {label:24} {mail:45} password: {pw}")
    label, mail, pw, dn = lines[0]
    print("\nSign in as the P2 student with ldap-utils, as an SSOE device would bind:")
    print(f"  ldapwhoami -x -H {cfg.ldap.uri} -D {shlex.quote(dn)} -w {shlex.quote(pw)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
