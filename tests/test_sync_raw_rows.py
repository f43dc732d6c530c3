"""Rows remembered by their raw cells (issue 11): a row whose cells are, byte for byte, those
of a row the last run found its student to match skips the roster rules, unless its student
changed since; everything that could make the same cells read otherwise is in the digest.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ldap
import pytest

import mimsdir.roster.assemble as assemble
import mimsdir.sync.run as sync_run
from mimsdir.config import Config
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Conn
from mimsdir.roster import QuietRow, RosterError
from mimsdir.roster.table import raw_digester, stream_table
from mimsdir.sync.model import Remembered
from tests.sync_helpers import run_sync, school_entries, school_fixture, school_rows, write_roster

school = school_fixture("W")


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows went through the field rules, per run (appended by the test)."""
    calls = [0]
    real = assemble.check_candidate

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(assemble, "check_candidate", counting)
    return calls


def _settle(cfg: Config, roster: Path, tmp: Path, checked: list[int]) -> None:
    """Two runs: the first creates the students, the second finds them converged."""
    for _ in range(2):
        assert run_sync(cfg, roster, tmp=tmp).code == 0
    checked[0] = 0


def test_a_quiet_night_runs_no_rule_and_changes_nothing(
        slapd: Config, school: str, tmp_path: Path, checked: list[int]) -> None:
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 8))
    _settle(slapd, roster, tmp_path, checked)
    quiet = run_sync(slapd, roster, tmp=tmp_path)
    assert quiet.code == 0
    assert checked[0] == 0
    assert quiet.report["directory_read"]["rows_not_compared"] == 8
    assert quiet.report["planned"]["unchanged"] == 8
    assert sum(v for k, v in quiet.report["planned"].items() if k != "unchanged") == 0


def test_a_row_whose_student_changed_since_goes_through_the_rules_again(
        slapd: Config, root: Conn, dns: Dns, school: str, tmp_path: Path,
        checked: list[int]) -> None:
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 5))
    _settle(slapd, roster, tmp_path, checked)
    dn = f"uid={school}002,{dns.students}"
    root.modify(dn, [(ldap.MOD_REPLACE, "mimsClass", [b"9Z"])], "an ICT admin's edit")
    after = run_sync(slapd, roster, tmp=tmp_path)
    assert after.code == 0
    assert checked[0] == 1  # that row alone
    assert after.report["planned"]["move"] == 1
    assert school_entries(slapd, school)[f"{school}002"]["mimsClass"] == ["4A"]


def test_a_row_with_one_byte_more_is_checked_and_compared(
        slapd: Config, school: str, tmp_path: Path, checked: list[int]) -> None:
    rows = school_rows(school, 4)
    roster = write_roster(tmp_path / "r.csv", rows)
    _settle(slapd, roster, tmp_path, checked)
    rows[1]["given_name"] += " "  # trimmed by the rules: the same student, other cells
    rows[2]["class"] = "4B"
    after = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path)
    assert checked[0] == 2
    assert after.report["planned"]["move"] == 1
    assert after.report["planned"]["unchanged"] == 3
    # The next night the moved student's entry is new to the view (the move wrote it): its
    # row is checked once more; the night after, every row is remembered by its cells.
    again = run_sync(slapd, roster, tmp=tmp_path)
    assert checked[0] == 3 and again.report["directory_read"]["rows_not_compared"] == 3
    last = run_sync(slapd, roster, tmp=tmp_path)
    assert checked[0] == 3 and last.report["directory_read"]["rows_not_compared"] == 4


def test_a_new_row_with_a_quiet_rows_id_or_email_makes_both_errors(
        slapd: Config, school: str, tmp_path: Path, checked: list[int]) -> None:
    rows = school_rows(school, 4)
    roster = write_roster(tmp_path / "r.csv", rows)
    _settle(slapd, roster, tmp_path, checked)
    twin = {**rows[0], "student_id": f"{school}099"}                   # the same email
    clash = {**school_rows(school, 1, start=98)[0], "student_id": rows[1]["student_id"]}
    after = run_sync(slapd, write_roster(tmp_path / "r.csv", [*rows, twin, clash]),
                     tmp=tmp_path)
    errors = " | ".join(after.report["row_errors"])
    assert "duplicate email" in errors and "duplicate student_id" in errors
    assert "lines 2" in errors or "line 2" in errors  # the quiet row is named by its line
    assert after.report["planned"]["create"] == 0
    assert after.report["planned"]["disable"] == 0  # the quiet rows' students are protected
    entries = school_entries(slapd, school)
    assert {e["mimsAccountStatus"][0] for e in entries.values()} == {"active"}
    assert f"{school}099" not in entries


def test_other_rules_read_every_row_again(
        slapd: Config, school: str, tmp_path: Path, checked: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 3))
    _settle(slapd, roster, tmp_path, checked)
    real = sync_run.raw_salt
    monkeypatch.setattr(sync_run, "raw_salt", lambda cfg, fmt: real(cfg, fmt) + b"v2")
    after = run_sync(slapd, roster, tmp=tmp_path)
    assert checked[0] == 3 and after.report["planned"]["unchanged"] == 3


def test_the_salt_holds_the_rules_the_format_and_the_domains(
        slapd: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    base = sync_run.raw_salt(slapd, "native")
    assert sync_run.raw_salt(slapd, "google") != base
    narrower = replace(slapd, sync=replace(slapd.sync,
                                           allowed_email_domains=["students.test.sg"]))
    assert sync_run.raw_salt(narrower, "native") != base
    sync_run._rules_digest.cache_clear()
    monkeypatch.setattr(sync_run, "_RULE_SOURCES", ("roster/validate.py",))
    try:
        assert sync_run.raw_salt(slapd, "native") != base
    finally:
        sync_run._rules_digest.cache_clear()


def test_a_teacher_not_in_the_directory_is_warned_about_every_night(
        slapd: Config, school: str, tmp_path: Path, checked: list[int]) -> None:
    rows = [{**r, "form_teacher_email": "nobody.here@schools.test.sg"}
            for r in school_rows(school, 2)]
    roster = write_roster(tmp_path / "r.csv", rows)
    for _ in range(3):
        run = run_sync(slapd, roster, tmp=tmp_path)
        assert any("nobody.here@schools.test.sg" in w for w in run.report["warnings"])


def _table(text: str, known: dict[bytes, Remembered], salt: bytes = b"s") -> list:  # type: ignore[type-arg]
    return list(stream_table(text.encode(), shown="t.csv", source="t.csv",
                             columns={"a": "a", "b": "b"}, required=("a", "b"),
                             known=known, salt=salt).rows)


def test_cells_that_hold_the_separator_are_never_remembered() -> None:
    rows = _table("a,b\nx\x1fy,z\nx,y\x1fz\nx,y\n", {})
    assert [r.raw is None for r in rows] == [True, True, False]


def test_a_digest_depends_on_the_header_and_the_salt() -> None:
    [plain] = _table("a,b\nx,y\n", {})
    [swapped] = _table("b,a\nx,y\n", {})
    [salted] = _table("a,b\nx,y\n", {}, salt=b"t")
    assert len({plain.raw, swapped.raw, salted.raw}) == 3
    h = raw_digester(b"s", ["a", "b"])
    h.update(b"x\x1fy")
    assert h.digest() == plain.raw


def test_a_known_row_comes_without_its_values() -> None:
    [plain] = _table("a,b\nx,y\n", {})
    known = Remembered("x", "uid=x", "x@y", "S", "active", "c", "d", plain.raw, None, 0)
    [row, other] = _table("a,b\nx,y\nx,z\n", {plain.raw: known})
    assert row.quiet is known and row.values == {}
    assert other.quiet is None and other.values == {"a": "x", "b": "z"}


def test_a_roster_changed_between_two_reads_is_refused(
        slapd: Config, school: str, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 2))
    opts = sync_run.SyncOptions(roster=roster)
    known = Remembered("x", "uid=x", "x@y", school, "active", "c", "d", b"\0" * 12, None, 0)
    stale = QuietRow("r.csv", 2, known)  # line 2's cells are other ones now
    first = sync_run._read(slapd, opts, known={})
    with pytest.raises(RosterError, match="changed while it was being read"):
        sync_run._read_again(slapd, opts, first, [stale])


def test_a_refusal_planned_from_the_view_heads_reports_what_the_full_plan_would(
        slapd: Config, school: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Students no row names any more are planned from their view heads when the guards
    refuse: the refusal costs no more than a quiet night, and says exactly what the full plan
    says (the same counts, the same reasons)."""
    rows = school_rows(school, 20)
    roster = write_roster(tmp_path / "r.csv", rows)
    for _ in range(2):
        assert run_sync(slapd, roster, tmp=tmp_path).code == 0
    before = school_entries(slapd, school)
    monkeypatch.setattr(sync_run, "HEADS_FLOOR", 0)
    calls: list[int] = []
    real = sync_run.plan_sync

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(kw.get("unread", ())))
        return real(*args, **kw)

    monkeypatch.setattr(sync_run, "plan_sync", counting)
    write_roster(roster, rows[:12])  # 8 of 20 gone: more than 5% would be disabled
    refused = run_sync(slapd, roster, "--max-disable", "5%", tmp=tmp_path)
    assert refused.code == 3 and calls == [8]  # the heads plan alone
    full = run_sync(slapd, roster, "--max-disable", "5%", "--dry-run", "--force",
                    tmp=tmp_path)
    assert calls[-1] == 0  # forced: the full plan
    for key in ("planned", "planned_by_school", "scope_active_before", "refused",
                "protected_from_disable", "row_errors"):
        assert refused.report[key] == full.report[key], key
    assert refused.report["planned"]["disable"] == 8
    assert school_entries(slapd, school) == before  # nothing written
    # Within the limits the heads plan is only a count: the full plan is made and applied.
    write_roster(roster, rows[:18])
    applied = run_sync(slapd, roster, "--max-disable", "2", tmp=tmp_path)
    assert applied.code == 0 and calls[-2:] == [2, 0]
    left = {uid for uid, e in school_entries(slapd, school).items()
            if e["mimsAccountStatus"] == ["left"]}
    assert left == {r["student_id"] for r in rows[18:]}


def test_a_plan_from_heads_neither_purges_nor_takes_a_named_student(slapd: Config) -> None:
    from datetime import UTC, datetime

    from mimsdir.roster import Roster
    from mimsdir.sync.plan import DirectoryState, plan_sync

    head = Remembered("A1", "uid=A1,ou=students,dc=x", None, "S", "active", "c", None, None,
                      None, 0)
    roster = Roster(students=(), errors=(), warnings=(), schools=frozenset({"S"}), fmt="native",
                    is_delta=False, departed_ids=frozenset(), row_count_by_school={"S": 0})
    state = DirectoryState(students={}, mail_owners={}, teachers={})
    dns = Dns("dc=x")
    plan = plan_sync(roster, state, dns=dns, now=datetime.now(UTC), unread=[head])
    assert plan.count("disable") == 1 and plan.scope_active == 1
    with pytest.raises(ValueError, match="cannot purge"):
        plan_sync(roster, state, dns=dns, now=datetime.now(UTC), unread=[head], purge=True)
    named = DirectoryState(students={"a1": head}, mail_owners={}, teachers={})
    with pytest.raises(ValueError):
        plan_sync(roster, named, dns=dns, now=datetime.now(UTC), unread=[head])
