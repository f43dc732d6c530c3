"""``mimsdir report`` and ``mimsdir audit``, the operator log, acting as an ICT admin through
ldap.admin_dn, and a captured run of every staff command that leaks no secret."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import ldap

from mimsdir.challenge import ChallengeHasher, encode_challenge
from mimsdir.ldapio import values
from tests.staff_helpers import (
    admin_config,
    bind,
    card_answers,
    card_chunks,
    config_path,
    make_class,
    run,
    slip_chunks,
    slip_password,
)

HASHER = ChallengeHasher(19456, 2, 1)


def oplog_records(slapd) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    path = slapd.path(slapd.cli.operator_log)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_report_counts_per_school_level_class(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    make_class(make, 3, "P2", "2A")
    card = encode_challenge("first-holiday", HASHER.hash("bali")).encode()
    locked = make.student(level="P5", class_name="5A", mimsChallenge=[card],
                          mimsChallengeOrigin=[b"card"])
    make.student(level="P5", class_name="5A", mimsCredentialPending=[b"TRUE"])
    make.student(level="P5", class_name="5A", mimsChallenge=[card],
                 mimsChallengeOrigin=[b"student"])
    make.student(level="P5", class_name="5B", status="left")
    reset = make.student(level="P5", class_name="5B")
    root.set_password(reset.dn, "Reset-by-ict-1")
    for _ in range(3):
        bind(slapd, locked.dn, "wrong-guess-9")

    res = run(config_path(slapd), "report", "--school", make.school, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["totals"] == {"active": 7, "left": 1, "disabled": 0, "locked": 1,
                              "must_change": 1, "qna_ok": 1, "qna_card_upper": 1,
                              "qna_missing": 5, "credential_pending": 1}
    (school,) = data["schools"]
    assert school["school"] == make.school
    p5 = school["levels"][1]
    assert p5["level"] == "P5" and [c["class"] for c in p5["classes"]] == ["5A", "5B"]
    assert p5["classes"][1]["left"] == 1 and p5["classes"][1]["must_change"] == 1

    table = run(config_path(slapd), "report", "--school", make.school).stdout
    assert re.search(rf"^{make.school}\s+P2\s+2A\s+3\s+0\s+0", table, re.M)
    assert "card-P4+" in table and "waiting to change a reset password" in table


def test_audit_shows_operator_and_actor_and_admin_dn_works(slapd, make, root,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    s = make.student(level="P3", class_name="3A")
    t = make.student(level="P3", class_name="3A")
    cfg = config_path(slapd)
    env = {"SUDO_USER": "ict-officer-lim"}
    res = run(cfg, "student", "reset-password", s.uid, "--show", env=env)
    assert res.exit_code == 0

    # acting as an ICT admin (ldap.admin_dn + password file) instead of the host's root
    admin = make.admin()
    acfg = admin_config(tmp_path, slapd, admin.dn, admin.password)
    res = run(acfg, "student", "reset-password", t.mail, "--show", env={"SUDO_USER": "ms-ng"})
    assert res.exit_code == 0, res.output
    assert bind(slapd, t.dn, re.findall(r"new password: (\S+)", res.stdout)[0]).must_change
    assert run(acfg, "student", "show", t.uid, env={"SUDO_USER": "ms-ng"}).exit_code == 0
    assert run(acfg, "report", "--school", make.school, env={"SUDO_USER": "ms-ng"}
               ).exit_code == 0
    assert run(acfg, "student", "unlock", t.uid, env={"SUDO_USER": "ms-ng"}).exit_code == 0

    res = run(cfg, "audit", "--student", s.uid, "--json")
    assert res.exit_code == 0, res.output
    events = json.loads(res.stdout)
    root_dn = f"cn=host-root,{slapd.ldap.base_dn}"
    # (another test's run in the same second may share the attribution: "x or y")
    pw_writes = [e for e in events if e["source"] == "directory"
                 and "userPassword" in e["attributes"]
                 and "ict-officer-lim" in (e["operator"] or "")]
    assert pw_writes and all(e["actor"] == root_dn for e in pw_writes)
    assert "student reset-password" in pw_writes[-1]["command"]
    runs = [e for e in events if e["source"] == "operator"]
    assert runs[-1]["operator"] == "ict-officer-lim" and runs[-1]["exit"] == 0
    assert "argon2" not in res.stdout.lower()

    res = run(cfg, "audit", "--actor", admin.dn, "--since", "1h", "--json")
    events = json.loads(res.stdout)
    assert {e["target"] for e in events if e["source"] == "directory"} == {t.dn}
    writes = [e for e in events if "userPassword" in e["attributes"]]
    assert writes and writes[0]["operator"] == "ms-ng" and writes[0]["actor"] == admin.dn
    assert {e["command"] for e in events if e["source"] == "operator"} >= {
        "student reset-password", "student unlock", "report"}
    table = run(cfg, "audit", "--actor", "ms-ng").stdout
    assert "ms-ng" in table and "userPassword" in table and "ict-officer-lim" not in table

    records = [r for r in oplog_records(slapd) if r["user"] == "ms-ng"]
    assert {r["as_dn"] for r in records} == {admin.dn}
    path = slapd.path(slapd.cli.operator_log)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_operator_log_records_failures_not_help(slapd, make) -> None:  # type: ignore[no-untyped-def]
    cfg = config_path(slapd)
    env = {"SUDO_USER": f"op-{make.school}"}
    run(cfg, "student", "reset-password", "S1", env=env)  # usage error: exit 2
    run(cfg, "student", "show", f"nobody-{make.school}", env=env)  # not found: exit 1
    run(cfg, "student", "show", "--help", env=env)
    run(cfg, "report", "--bogus", env=env)
    mine = [(r["command"], r["args"], r["exit"]) for r in oplog_records(slapd)
            if r["user"] == env["SUDO_USER"]]
    assert mine == [("student reset-password", ["S1"], 2),
                    ("student show", [f"nobody-{make.school}"], 1),
                    ("report", ["--bogus"], 2)]


def test_no_secret_leaks_anywhere(slapd, make, root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every staff command, captured: default passwords and card answers appear only in the
    PDFs and in the one --show run's output."""
    cfg = config_path(slapd)
    kids = make_class(make, 3, "P2", "2A")
    upper = make.student(level="P5", class_name="5A")
    form = tmp_path / "form.csv"
    form.write_text(f"Student email\n{upper.mail}\n", encoding="utf-8")
    outputs: list[str] = []

    def go(*args: str) -> str:
        res = run(cfg, *args)
        assert res.exit_code in (0, 1), (args, res.output)
        outputs.append(res.output)
        return res.output

    shown = go("student", "reset-password", kids[0].uid, "--show")
    (show_pw,) = re.findall(r"new password: (\S+)", shown)
    go("student", "reset-password", "--school", make.school, "--class", "2A",
       "-o", str(tmp_path / "slips.pdf"))
    go("requests", "import", str(form), "-o", str(tmp_path / "req.pdf"))
    go("qna", "cards", "--school", make.school, "-o", str(tmp_path / "cards.pdf"))
    go("qna", "reset", upper.uid)
    go("student", "unlock", kids[1].uid)
    go("student", "disable", kids[2].uid)
    go("student", "enable", kids[2].uid)
    go("student", "show", kids[0].uid)
    go("student", "show", kids[0].uid, "--json")
    go("student", "find", "--school", make.school, "--json")
    go("student", "find", "--school", make.school)
    go("report", "--school", make.school)
    go("report", "--school", make.school, "--json")
    go("audit", "--student", kids[0].uid)
    go("audit", "--since", "1h", "--json")

    secrets = {show_pw}
    secrets |= {slip_password(c) for c in slip_chunks(tmp_path / "slips.pdf")}
    secrets |= {slip_password(c) for c in slip_chunks(tmp_path / "req.pdf")}
    for chunk in card_chunks(tmp_path / "cards.pdf"):
        secrets |= set(card_answers(chunk).values())
    assert len(secrets) == 1 + 3 + 1 + 9
    places = {
        "command output": "\n".join(outputs[1:]),
        "operator log": slapd.path(slapd.cli.operator_log).read_text(),
        "slapd log": (slapd.state_dir / "slapd.log").read_text(errors="replace"),
    }
    for name, text in places.items():
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{len(leaked)} secret(s) in the {name}"
    assert [s for s in secrets if s in outputs[0]] == [show_pw]
    # the audit log keeps hashes only
    res = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL, f"(reqDN={kids[0].dn})", ["reqMod"],
                      "reading the audit log")
    mods = " ".join(v for _, a in res for v in values(a, "reqMod"))
    assert not any(s in mods for s in secrets)


def test_a_form_teacher_as_admin_dn_manages_only_their_class(slapd, make, root,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    teacher = make.teacher(class_name="3C")
    mine = make.student(level="P3", class_name="3C", teacher=teacher)
    other = make.student(level="P3", class_name="3D")
    for _ in range(3):
        bind(slapd, mine.dn, "wrong-guess-7")
    tcfg = admin_config(tmp_path, slapd, teacher.dn, teacher.password)
    res = run(tcfg, "student", "reset-password", mine.uid, other.uid, "--show")
    assert res.exit_code == 1
    (password,) = re.findall(r"new password: (\S+)", res.stdout)
    out = bind(slapd, mine.dn, password)
    assert out.ok and out.must_change
    assert f"{other.uid}: no student" in res.stderr  # the teacher cannot even see them
    assert bind(slapd, other.dn, other.password).ok
    assert run(tcfg, "student", "unlock", mine.uid).exit_code == 0
    res = run(tcfg, "qna", "reset", mine.uid)  # answers are ICT's business
    assert res.exit_code == 1 and "refused by the directory's access control" in res.stderr
