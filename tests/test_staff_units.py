"""Pure parts of the staff commands: no server. Filters, records, the reset form, the report,
the audit merge, the operator log, and the answer-upgrade plan."""

from __future__ import annotations

import json
import os
import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mimsdir import operator_log
from mimsdir.challenge import DEFAULT_QUESTIONS, ChallengeHasher, decode_challenge
from mimsdir.errors import UsageError
from mimsdir.staff.audit import (
    AuditQuery,
    merge,
    parse_accesslog,
    parse_since,
    reqmod_attribute,
)
from mimsdir.staff.cards import plan_card
from mimsdir.staff.credentials import plan_disable, plan_enable, unlock_modlist
from mimsdir.staff.model import StudentRecord, parse_student, student_filter
from mimsdir.staff.qna import upgrade_plan
from mimsdir.staff.report import ReportAggregator
from mimsdir.staff.requests import field_for, match_rows, parse_form

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
BASE = "dc=mims,dc=example"


def rec(uid: str = "S1", **attrs: str | list[str]) -> StudentRecord:
    raw: dict[str, list[bytes]] = {"uid": [uid.encode()]}
    defaults = {"mail": f"{uid.lower()}@s.sg", "cn": f"Kid {uid}", "mimsSchoolCode": "SCH",
                "mimsLevel": "P4", "mimsClass": "4A", "mimsAccountStatus": "active"}
    for key, value in {**defaults, **attrs}.items():
        vals = value if isinstance(value, list) else [value]
        raw[key] = [v.encode() for v in vals]
    return parse_student(f"uid={uid},ou=students,{BASE}", raw)


# -- model ------------------------------------------------------------------------------------

def test_filter_escapes_values_and_combines() -> None:
    f = student_filter(school="A*)(uid=*", class_name="4A", levels=["p4"], status="active",
                       locked=True, must_change=True)
    assert "(mimsSchoolCode=A\\2a\\29\\28uid=\\2a)" in f
    assert "(mimsLevel=P4)" in f and "(pwdAccountLockedTime=*)" in f and "(pwdReset=TRUE)" in f
    assert f.startswith("(&(objectClass=mimsStudent)")
    q = student_filter(qna_pending=True)
    assert "(mimsQnaMustChange=TRUE)" in q and "(!(mimsChallenge=*))" in q


def test_record_never_holds_hashes_and_tells_qna_state() -> None:
    s = rec(mimsChallenge=["pet$$argon2id$v=19$m=1,t=2,p=1$c2FsdA$aGFzaA", "toy$$argon2id$x"],
            mimsChallengeOrigin="card")
    assert s.challenge_qids == ("pet", "toy")
    assert "argon2" not in repr(s)
    assert s.qna_state == "card-upper" and s.qna_pending
    assert rec(mimsLevel="P3", mimsChallenge=["a$h"], mimsChallengeOrigin="card").qna_state == "ok"
    assert rec().qna_state == "missing" and rec().qna_pending
    assert not rec(mimsLevel="P2").qna_pending
    assert rec(mimsLevel="P2", mimsQnaMustChange="TRUE").qna_pending
    own = rec(mimsChallenge=["a$h"], mimsChallengeOrigin="student")
    assert own.qna_state == "ok" and not own.qna_pending


def test_lock_in_force_versus_expired_versus_permanent() -> None:
    s = rec(pwdAccountLockedTime="20261128115800Z", pwdFailureTime=["20261128115800Z"] * 3)
    assert s.failure_count == 3
    assert s.locked_now(NOW, 300)  # locked 2 minutes ago, for 5
    assert not s.locked_now(NOW, 60)  # the lock has expired: ppolicy left the attribute
    assert s.locked_now(NOW, 0)  # no duration: until unlocked
    assert rec(pwdAccountLockedTime="000001010000Z").locked_now(NOW, 300)
    assert not rec().locked_now(NOW, 300)


def test_plans_for_status_changes() -> None:
    assert plan_disable(rec()).modlist
    assert plan_disable(rec(mimsAccountStatus="disabled")).note == "already disabled"
    assert plan_enable(rec(mimsAccountStatus="disabled")).modlist
    assert plan_enable(rec(mimsAccountStatus="left")).error
    assert plan_enable(rec()).note == "already active"
    names = [m[1] for m in unlock_modlist()]
    assert "pwdAccountLockedTime" in names and "mimsSsprLockedUntil" in names


# -- reset form -------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "field"), [
    ("Timestamp", "timestamp"), ("Student's Email", "student_email"),
    ("Student email (iCON)", "student_email"), ("Login ID", "student_email"),
    ("Student Name", "student_name"), ("Name of student", "student_name"),
    ("Class", "class_name"), ("School code", "school"), ("Your name", "requester_name"),
    ("Email Address", "requester_email"), ("Parent/Guardian email", "requester_email"),
    ("Requested by", "requester_name"), ("Favourite colour", None),
])
def test_header_names_are_tolerated(header: str, field: str | None) -> None:
    assert field_for(header) == field


def test_parse_form_lines_bom_crlf_and_multiline() -> None:
    text = ("\ufeffTimestamp,Student's Email,Student Name,Class,Your Name,Notes\r\n"
            "2026/11/02 8:01,a@s.sg,,,Mdm Tan,\r\n"
            "\r\n"
            '2026/11/02 8:02,,Wei Ling,2A,Mr Lim,"two\r\nlines"\r\n'
            "2026/11/02 8:03,not-an-email,,,X,\r\n"
            "2026/11/02 8:04,,Only Name,,Y,\r\n"
            "2026/11/02 8:05,,Ali,3B,Z,\r\n")
    form = parse_form(text, "form.csv")
    assert [r.line for r in form.rows] == [2, 4, 8]
    assert form.rows[1].student_name == "Wei Ling" and form.rows[1].requester == "Mr Lim"
    assert [str(e).split(":")[1] for e in form.errors] == ["6", "7"]
    assert "Student's Email" in str(form.errors[0]) and "not-an-email" in str(form.errors[0])
    assert form.ignored == ["Notes"]


def test_parse_form_refuses_files_that_cannot_name_a_student() -> None:
    with pytest.raises(UsageError, match=r"form.csv:1: no student email column"):
        parse_form("Timestamp,Your Name\n1,2\n", "form.csv")
    with pytest.raises(UsageError, match="both look like"):
        parse_form("Student email,Login ID\n", "form.csv")
    with pytest.raises(UsageError, match="empty file"):
        parse_form("\n\n", "form.csv")


def test_match_rows_by_email_then_name_class_and_duplicates() -> None:
    kids = [rec("S1", cn="Tan Wei Ling", givenName="Wei Ling", sn="Tan", mimsClass="2A"),
            rec("S2", cn="Ali bin Ahmad", mimsClass="2A"),
            rec("S3", cn="Ali bin Ahmad", mimsClass="2A"),
            rec("S4", cn="Mei", mimsClass="2B", mimsAccountStatus="disabled")]
    by_mail = {k.login_id: k for k in kids}
    text = ("Student email,Student name,Class\n"
            "s1@s.sg,,\n"                 # 2: by email
            ",  WEI LING   tan ,2a\n"     # 3: by name (other order, case, spaces): S1 again
            ",ali bin ahmad,2A\n"         # 4: two of them
            "s4@s.sg,Mei,2B\n"            # 5: disabled: not guessed by name
            "nobody@s.sg,Nobody,2A\n"     # 6: no such email, no such name
            "gone@s.sg,Tan Wei Ling,2 A\n")  # 7: email unknown, name matches S1: duplicate
    form = parse_form(text, "f.csv")
    result = match_rows(form, by_mail.get, lambda school: kids, "SCH")
    assert [(m.row.line, m.student.uid) for m in result.matched] == [(2, "S1")]
    assert [(r.line, first) for r, first in result.duplicates] == [(3, 2), (7, 2)]
    errors = {e.subject: e.message for e in result.errors}
    assert set(errors) == {"f.csv:4", "f.csv:5", "f.csv:6"}
    assert "ambiguous: 2" in errors["f.csv:4"]
    assert "disabled" in errors["f.csv:5"]
    assert "no student with login ID 'nobody@s.sg'" in errors["f.csv:6"]
    no_school = match_rows(parse_form("Student name,Class\nAli,2A\n", "g.csv"),
                           by_mail.get, lambda school: kids)
    assert "no school" in no_school.errors[0].message


# -- report -----------------------------------------------------------------------------------

def test_report_counts_partition_and_stream() -> None:
    students = [
        rec("A", mimsLevel="P2", mimsClass="2A", mimsChallenge=["q$h"],
            mimsChallengeOrigin="card"),
        rec("B", mimsLevel="P2", mimsClass="2A", pwdReset="TRUE", mimsCredentialPending="TRUE"),
        rec("C", mimsLevel="P5", mimsClass="5A", mimsChallenge=["q$h"],
            mimsChallengeOrigin="card", pwdAccountLockedTime="20261128115900Z"),
        rec("D", mimsLevel="P5", mimsClass="5A", pwdAccountLockedTime="20261128100000Z"),
        rec("E", mimsLevel="P5", mimsClass="5A", mimsAccountStatus="left",
            pwdReset="TRUE"),
        rec("F", mimsLevel="P5", mimsClass="5A", mimsAccountStatus="disabled"),
    ]
    report = ReportAggregator(NOW, lambda dn: 300).add_all(iter(students)).report()
    data = report.to_json()
    assert data["totals"] == {"active": 4, "left": 1, "disabled": 1, "locked": 1,
                              "must_change": 1, "qna_ok": 1, "qna_card_upper": 1,
                              "qna_missing": 2, "credential_pending": 1}
    (school,) = data["schools"]  # type: ignore[misc]
    assert [lv["level"] for lv in school["levels"]] == ["P2", "P5"]
    assert school["levels"][1]["classes"][0]["class"] == "5A"
    table = report.to_table()
    assert "card-P4+" in table and "all schools" in table


# -- audit ------------------------------------------------------------------------------------

def test_since_accepts_dates_and_ages() -> None:
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("12h", NOW) == NOW - timedelta(hours=12)
    assert parse_since("2026-11-01T08:00+08:00", NOW) == datetime(2026, 11, 1, 0, 0,
                                                                   tzinfo=UTC)
    with pytest.raises(UsageError, match="--since"):
        parse_since("last week", NOW)


def test_accesslog_entries_show_attribute_names_only() -> None:
    assert reqmod_attribute(b"userPassword:= {ARGON2}$argon2i$secret\x00\x00") == "userPassword"
    ev = parse_accesslog({
        "reqStart": [b"20261128112225.000001Z"], "reqType": [b"modify"],
        "reqDN": [b"uid=S1,ou=students," + BASE.encode()],
        "reqAuthzID": [b"cn=host-root," + BASE.encode()],
        "reqMod": [b"userPassword:= {ARGON2}$argon2i$v=19$xyz\x00\x00",
                   b"mimsClass:= 4A", b"entryCSN:= 2026", b"modifyTimestamp:= 2026"],
    })
    assert ev is not None
    assert ev.attributes == ("userPassword", "mimsClass")
    assert "argon2" not in json.dumps(ev.to_json()) and "4A" not in json.dumps(ev.to_json())


def test_merge_attributes_writes_to_the_command_run() -> None:
    root = f"cn=host-root,{BASE}"
    run = operator_log.OperatorRecord(time=NOW, end=NOW + timedelta(seconds=2), user="alice",
                                      command="student reset-password", args=["S1", "--show"],
                                      as_dn=root)
    other = operator_log.OperatorRecord(time=NOW, end=NOW, user="bob", command="report",
                                        as_dn=f"uid=x,{BASE}")
    ev_in = parse_accesslog({"reqStart": [b"20261128120001.000002Z"], "reqType": [b"modify"],
                             "reqDN": [b"uid=S1"], "reqAuthzID": [root.encode()]})
    ev_out = parse_accesslog({"reqStart": [b"20261128120500Z"], "reqType": [b"modify"],
                              "reqDN": [b"uid=S1"], "reqAuthzID": [root.encode()]})
    assert ev_in and ev_out
    events = merge([ev_in, ev_out], [run, other],
                   AuditQuery(since=NOW - timedelta(days=1), student_names=("S1",)))
    assert [(e.source, e.operator) for e in events] == [
        ("operator", "alice"), ("directory", "alice"), ("directory", None)]
    # a read-only run in the same second is never the author; two writers are both named,
    # unless one of them named the target
    show = operator_log.OperatorRecord(time=NOW, end=NOW + timedelta(seconds=2), user="carol",
                                       command="student show", args=["S1"], as_dn=root)
    unlock = operator_log.OperatorRecord(time=NOW, end=NOW + timedelta(seconds=2), user="dave",
                                         command="student unlock", args=["S2"], as_dn=root)
    query = AuditQuery(since=NOW - timedelta(days=1))
    (ev,) = [e for e in merge([ev_in], [run, show], query) if e.source == "directory"]
    assert ev.operator == "alice"
    other_target = parse_accesslog({"reqStart": [b"20261128120001Z"], "reqType": [b"modify"],
                                    "reqDN": [b"uid=S3"], "reqAuthzID": [root.encode()]})
    assert other_target
    (ev,) = [e for e in merge([other_target], [run, unlock], query) if e.source == "directory"]
    assert ev.operator == "alice or dave"
    (ev,) = [e for e in merge([ev_in], [run, unlock], query) if e.source == "directory"]
    assert ev.operator == "alice"


# -- operator log -----------------------------------------------------------------------------

def test_operator_log_redacts_appends_0600_and_reads(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "ict-officer")
    path = tmp_path / "logs" / "op.jsonl"
    record = operator_log.make_record(
        "student reset-password", ["S1", "--password", "Tiger4821", "--api-token=abc"], 0,
        NOW, as_dn="cn=host-root", ended=NOW + timedelta(seconds=3))
    assert record.end == NOW + timedelta(seconds=3)
    operator_log.append(path, record)
    operator_log.append(path, record)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    text = path.read_text()
    assert "Tiger4821" not in text and "abc" not in text
    (first, _second) = list(operator_log.read(path))
    assert first.user == "ict-officer" and first.args == [
        "S1", "--password", "<redacted>", "--api-token=<redacted>"]
    assert list(operator_log.read(path, since=NOW + timedelta(days=1))) == []
    assert list(operator_log.read(tmp_path / "missing.jsonl")) == []


# -- answers ----------------------------------------------------------------------------------

def test_card_plan_draws_distinct_questions_and_hashes_answers() -> None:
    hasher = ChallengeHasher(19456, 2, 1)
    plan = plan_card(rec("S9", mimsLevel="P2"), DEFAULT_QUESTIONS, 3, hasher, random.Random(4))
    qids = [decode_challenge(v)[0] for v in plan.challenge_values]
    assert len(set(qids)) == 3
    texts = {q.id: q.text for q in DEFAULT_QUESTIONS}
    for value, (question, answer) in zip(plan.challenge_values, plan.card.questions,
                                         strict=True):
        qid, encoded = decode_challenge(value)
        assert texts[qid] == question and hasher.verify(encoded, answer)
        assert answer not in repr(plan)


def test_upgrade_plan_rehashes_only_weaker_hashes_after_a_right_answer() -> None:
    old = ChallengeHasher(19456, 2, 1)
    new = ChallengeHasher(19456, 3, 1)
    stored = ["pet$" + old.hash("Blue Whale"), "toy$" + new.hash("teddy")]
    ok, modlist = upgrade_plan(stored, "pet", "blue whale", new)
    assert ok and modlist
    (delete, add) = modlist
    assert delete[2] == [stored[0].encode()]
    assert ",t=3," in add[2][0].decode() and new.verify(add[2][0].decode()[4:], "bluewhale")
    assert upgrade_plan(stored, "pet", "green whale", new) == (False, None)
    assert upgrade_plan(stored, "toy", "teddy", new) == (True, None)
    assert upgrade_plan(stored, "nope", "teddy", new) == (False, None)
