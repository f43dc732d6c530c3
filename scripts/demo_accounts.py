#!/usr/bin/env python3
"""Give the demo's well-known people a password and print how to sign in.

Demo only: each password is generated once into the state dir's secrets (mode 0600) so that
`make demo` prints the same ones every time; a real school issues passwords with slips.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import shlex
import sys
from pathlib import Path

import ldap

from mimsdir.challenge import encode_challenge
from mimsdir.config import Config, load_config
from mimsdir.connect import network_conn, root_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Conn, first
from mimsdir.staff.cards import catalogue, hasher_for
from mimsdir.wordlist import generate_card_answer

ROOT = Path(__file__).resolve().parent.parent
LOCKED_4A_STUDENT = "S2984958B"  # Kai Wen Goh, 4A, in ldap-fixtures/demo-school.csv


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


def _demo_card(secrets_dir: Path, who: str, qids: list[str]) -> dict[str, str]:
    """Card answers for a demo student, generated once (demo only: real cards are printed)."""
    path = secrets_dir / f"demo-card-{who}.json"
    if not path.exists():
        answers = {q: generate_card_answer() for q in qids}
        path.write_text(json.dumps(answers), encoding="utf-8")
        path.chmod(0o600)
    return json.loads(path.read_text(encoding="utf-8"))


def _give_card(root: Conn, cfg: Config, dn: str, answers: dict[str, str],
               must_change: bool) -> None:
    h = hasher_for(cfg)
    values = [encode_challenge(q, h.hash(a)).encode() for q, a in answers.items()]
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsChallenge", values),
                     (ldap.MOD_REPLACE, "mimsChallengeOrigin", [b"card"]),
                     (ldap.MOD_REPLACE, "mimsQnaMustChange", [b"TRUE"] if must_change else [])],
                "giving a demo student card answers")


def _lock(cfg: Config, dn: str) -> None:
    """Make the demo's locked student wait the way a classmate would: wrong passwords."""
    for _ in range(cfg.policies.upper_primary.max_failures + 1):
        with network_conn(cfg) as c:
            c.bind_ppolicy(dn, "not-the-password")


def main() -> int:
    cfg = load_config(sys.argv[1] if len(sys.argv) > 1 else None)
    fx = _fixtures()
    dns = Dns(cfg.ldap.base_dn)
    people = {
        "student": (dns.student(fx.DEMO_P2_STUDENT), "a P2 student (card)"),
        "p4-student": (dns.student(fx.DEMO_P4_STUDENT), "a P4 student (old card)"),
        # In 4A, so the demo's form teacher can unlock them.
        "locked-student": (dns.student(LOCKED_4A_STUDENT), "a locked student (4A)"),
        "teacher": (f"uid={fx.DEMO_TEACHER},{dns.staff}", "the form teacher of 4A"),
        "ict-admin": (f"uid={fx.DEMO_ICT_ADMIN},{dns.staff}", "the ICT admin"),
    }
    qids = [q.id for q in catalogue(cfg)][: cfg.qna.register_count]
    cards = {}
    lines = []
    with root_conn(cfg) as root:
        for who, (dn, label) in people.items():
            pw = _demo_password(cfg.secrets_dir, who)
            root.set_password(dn, pw, doing=f"setting the demo password of {label}")
            # A demo account starts settled: not "must change after reset", not locked.
            root.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", []),
                             (ldap.MOD_REPLACE, "pwdAccountLockedTime", []),
                             (ldap.MOD_REPLACE, "pwdFailureTime", [])], "settling")
            if who in ("student", "p4-student"):
                cards[who] = _demo_card(cfg.secrets_dir, who, qids)
                _give_card(root, cfg, dn, cards[who], must_change=who == "p4-student")
            mail = first(root.get(dn, ["mail"], "reading the demo login ID") or {}, "mail")
            lines.append((who, label, mail, pw, dn))
    _lock(cfg, people["locked-student"][0])
    print("\nDemo accounts (login ID = email):")
    for _who, label, mail, pw, _dn in lines:
        print(f"  {label:26} {mail:42} password: {pw}")
    texts = {q.id: q.text for q in catalogue(cfg)}
    print("\nThe P2 student's card (for 'Forgot your password?'):")
    for q, a in cards["student"].items():
        print(f"  {texts[q]:58} {a}")
    print("The P4 student still has card answers: the portal makes them set their own.")
    wait = cfg.policies.upper_primary.lockout_seconds
    print(f"The locked student typed a wrong password too often: sign-ins wait {wait} s "
          f"(it ends by itself); the 4A teacher can unlock now.")
    _who, label, mail, pw, dn = lines[0]
    print("\nSign in as the P2 student with ldap-utils, as an SSOE device would bind:")
    print(f"  {whoami_line(cfg, dn, pw)}")
    if cfg.ldap.tls.on:
        print("  (over TLS: the directory's CA is what `mimsdir directory tls show` prints)")
    return 0


def whoami_line(cfg: Config, dn: str, pw: str) -> str:
    """The ldapwhoami command line, with StartTLS required (-ZZ) and the directory's CA when
    TLS is on, so the password never crosses the network in clear."""
    prefix, zz = "", ""
    if cfg.tls_ca_file is not None:
        prefix = f"LDAPTLS_CACERT={shlex.quote(str(cfg.tls_ca_file))} "
    if cfg.ldap.tls.client_starttls and cfg.ldap.uri.startswith("ldap://"):
        zz = "-ZZ "
    return (f"{prefix}ldapwhoami -x {zz}-H {cfg.ldap.uri} -D {shlex.quote(dn)} "
            f"-w {shlex.quote(pw)}")


if __name__ == "__main__":
    raise SystemExit(main())
