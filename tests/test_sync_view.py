"""The sync's view of the directory (mimsdir/sync/view.py): a night reads in full only the
students whose entryCSN moved, and what it plans from is exactly what a full read gives."""

from __future__ import annotations

import json
import stat
import uuid
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import ldap
import pytest

from mimsdir.config import Config
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Conn
from mimsdir.sync.state import ATTRS, read_state
from mimsdir.sync.view import View, load_view, save_view, view_path
from tests.conftest import service_conn
from tests.sync_helpers import (
    delete_school,
    run_sync,
    school_entries,
    school_rows,
    write_roster,
)


@pytest.fixture
def schools(slapd):  # type: ignore[no-untyped-def]
    codes = ["V" + uuid.uuid4().hex[:7].upper() for _ in range(2)]
    yield codes
    for code in codes:
        delete_school(slapd, code)


def _read(cfg: Config, scope: list[str], view=None):  # type: ignore[no-untyped-def]
    with service_conn(cfg, "sync") as c:
        return read_state(c, Dns(cfg.ldap.base_dn), scope, [], [], [], view=view)


def test_a_view_refreshed_by_entry_csn_equals_a_full_read(
        slapd: Config, root: Conn, dns: Dns, schools: list[str], tmp_path: Path) -> None:
    here, other = schools
    assert run_sync(slapd, write_roster(tmp_path / "a.csv", school_rows(here, 10)),
                    tmp=tmp_path).code == 0
    assert run_sync(slapd, write_roster(tmp_path / "b.csv", school_rows(other, 2)),
                    tmp=tmp_path).code == 0
    before = _read(slapd, [here])
    assert before.fetched == 10 and before.reused == 0
    view = View(students={s.dn: s for s in before.students.values()})

    def dn(n: int, school: str = here) -> str:
        return f"uid={school}{n:03d},{dns.students}"

    # Every kind of change a night can bring, by hand as an ICT admin would make them.
    root.modify(dn(1), [(ldap.MOD_REPLACE, "mimsClass", [b"9Z"])], "a class changed")
    root.modify(dn(2), [(ldap.MOD_REPLACE, "mail", [b"new2@students.test.sg"])], "a new mail")
    root.lo.delete_s(dn(3))
    root.modify(dn(4), [(ldap.MOD_REPLACE, "mimsSchoolCode", [other.encode()])], "moved away")
    root.modify(dn(1, other), [(ldap.MOD_REPLACE, "mimsSchoolCode", [here.encode()])],
                "moved here")
    root.modify(dn(5), [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "disabled")

    after = _read(slapd, [here], view=view)
    full = _read(slapd, [here])
    assert after.students == full.students
    assert sorted(after.students) == sorted(full.students)
    # Read in full: the two changed in place, the disabled one and the one that arrived;
    # everyone else (10 - 5 touched) came from the view.
    assert (after.fetched, after.reused) == (4, 5)
    assert after.students[f"{here}001".lower()].class_name == "9Z"
    assert f"{here}003".lower() not in after.students
    assert f"{here}004".lower() not in after.students


def test_the_sync_reads_only_what_changed_and_a_quiet_night_writes_no_view(
        slapd: Config, root: Conn, dns: Dns, schools: list[str], tmp_path: Path) -> None:
    here = schools[0]
    roster = write_roster(tmp_path / "r.csv", school_rows(here, 8))
    first = run_sync(slapd, roster, tmp=tmp_path)
    assert first.report["directory_read"] == {"from_view": 0, "read": 0,
                                              "rows_not_compared": 0}  # a new school
    second = run_sync(slapd, roster, tmp=tmp_path)
    # The students the first run created are new to the view: read in full once.
    assert second.report["directory_read"] == {"from_view": 0, "read": 8,
                                               "rows_not_compared": 0}
    path = view_path(slapd.path(slapd.sync.state_dir), slapd.ldap.base_dn, [here])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.stat().st_ino  # a new view is a new file (written aside, then renamed)
    third = run_sync(slapd, roster, tmp=tmp_path)
    assert third.report["directory_read"] == {"from_view": 8, "read": 0,
                                              "rows_not_compared": 8}
    assert third.report["planned"]["unchanged"] == 8
    assert path.stat().st_ino == written
    # A change made outside the sync is seen: the next run reads that one and undoes it.
    root.modify(f"uid={here}002,{dns.students}", [(ldap.MOD_REPLACE, "mimsClass", [b"7Q"])],
                "a class changed by hand")
    fourth = run_sync(slapd, roster, tmp=tmp_path)
    assert fourth.report["directory_read"] == {"from_view": 7, "read": 1,
                                               "rows_not_compared": 7}
    assert fourth.report["planned"]["unchanged"] == 7
    assert sum(fourth.report["planned"][k] for k in ("update", "move", "promote")) == 1


def test_a_damaged_or_foreign_view_is_a_full_read(
        slapd: Config, schools: list[str], tmp_path: Path) -> None:
    here = schools[0]
    roster = write_roster(tmp_path / "r.csv", school_rows(here, 5))
    run_sync(slapd, roster, tmp=tmp_path)
    run_sync(slapd, roster, tmp=tmp_path)
    path = view_path(slapd.path(slapd.sync.state_dir), slapd.ldap.base_dn, [here])
    assert len(load_view(path, slapd.ldap.base_dn, ATTRS)) == 5
    # Written for other attributes (an older mimsdir): ignored.
    assert len(load_view(path, slapd.ldap.base_dn, ATTRS[:-1])) == 0
    assert len(load_view(path, "dc=elsewhere", ATTRS)) == 0
    head = path.read_text().splitlines()[0]
    for junk in ("", "{", json.dumps({"signature": 1}), json.dumps([1, 2]),
                 head + "\n" + json.dumps(["too", "short", None]),
                 head + "\n[1,2,\n"):
        path.write_text(junk)
        assert len(load_view(path, slapd.ldap.base_dn, ATTRS)) == 0
        again = run_sync(slapd, roster, tmp=tmp_path)
        assert again.code == 0 and again.report["planned"]["unchanged"] == 5
        assert again.report["directory_read"] == {"from_view": 0, "read": 5,
                                                  "rows_not_compared": 0}
    assert len(load_view(path, slapd.ldap.base_dn, ATTRS)) == 5


def test_save_and_load_keep_every_field(tmp_path: Path) -> None:
    from mimsdir.sync.model import DirStudent

    s = DirStudent(uid="A1", dn="uid=A1,ou=students,dc=x", school="S", level="P4",
                   status="active", mail="a@x.sg", given_name="Wei Ling 伟玲", family_name=None,
                   cn="c", class_name="4A", form_teacher_dn=None, left_at=None,
                   credential_pending=True, qna_origin="card", qna_must_change=True,
                   policy_dn="cn=p", csn="20261201000000.000000Z#000000#000#000000", posix=True,
                   uid_number="1000000", gid_number="900000", home="/home/s/a1",
                   login_shell="/bin/bash")
    other = DirStudent(uid="b2", dn="uid=b2,ou=students,dc=x", school="S", level="P1",
                       status="left", mail="Tab\tAnd\nLine@x.sg")
    path = tmp_path / "v.json"
    save_view(path, "dc=x", ATTRS, [s, other], {"a1": "d1"}, "ctx",
              {"a1": (b"\x01" * 12, "ft@x.sg")})
    view = load_view(path, "dc=x", ATTRS)
    assert view.context == "ctx"
    head = view.students[s.dn]
    assert (head.uid, head.dn, head.mail, head.school, head.status, head.csn) == (
        s.uid, s.dn, s.mail, s.school, s.status, s.csn)
    assert (head.digest, head.raw, head.teacher) == ("d1", b"\x01" * 12, "ft@x.sg")
    assert view.students[other.dn].digest is None
    # Only the head is parsed on loading; the rest comes back whole when asked for.
    assert view.full(view.students.values()) == {s.dn: s, other.dn: other}
    # A quiet student's record is written again as stored, with what the view recorded.
    save_view(path, "dc=x", ATTRS, [head], {}, "ctx", {}, view.records([head]))
    again = load_view(path, "dc=x", ATTRS)
    assert again.full(again.students.values()) == {s.dn: s}
    assert (again.students[s.dn].digest, again.students[s.dn].raw) == ("d1", b"\x01" * 12)


def test_the_view_replaced_meanwhile_is_refused(tmp_path: Path) -> None:
    """A run reads a student's record from the file it loaded, never from another run's."""
    from mimsdir.sync.model import DirStudent
    from mimsdir.sync.view import ViewChanged

    s = DirStudent(uid="a1", dn="uid=a1,ou=students,dc=x", school="S", level="P4",
                   status="active")
    path = tmp_path / "v.json"
    save_view(path, "dc=x", ATTRS, [s], {}, "ctx")
    view = load_view(path, "dc=x", ATTRS)
    save_view(path, "dc=x", ATTRS, [replace(s, level="P5")], {}, "ctx")
    with pytest.raises(ViewChanged):
        view.full(view.students.values())


def test_a_row_that_changed_is_compared_though_its_entry_did_not(
        slapd: Config, schools: list[str], tmp_path: Path) -> None:
    here = schools[0]
    rows = school_rows(here, 6)
    roster = write_roster(tmp_path / "r.csv", rows)
    for _ in range(3):
        last = run_sync(slapd, roster, tmp=tmp_path)
    assert last.report["directory_read"]["rows_not_compared"] == 6
    rows[2]["class"] = "9X"
    rows[4]["given_name"] = "Renamed"
    after = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path)
    assert after.report["directory_read"]["rows_not_compared"] == 4
    assert after.report["planned"]["move"] == 1 and after.report["planned"]["update"] == 1


def test_a_form_teacher_replaced_makes_every_row_compared_again(
        slapd: Config, root: Conn, dns: Dns, make, schools: list[str],  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    """The rows and the students are as they were, but the form teacher's entry is another
    one now (same mail, new DN): the quiet rows must not keep the old teacher's DN."""
    here = schools[0]
    old = make.teacher()
    rows = [{**r, "form_teacher_email": old.mail} for r in school_rows(here, 4)]
    roster = write_roster(tmp_path / "r.csv", rows)
    for _ in range(3):
        last = run_sync(slapd, roster, tmp=tmp_path)
    assert last.report["directory_read"]["rows_not_compared"] == 4
    entries = school_entries(slapd, here)
    assert {e["mimsFormTeacher"][0].lower() for e in entries.values()} == {old.dn.lower()}
    # The teacher's entry is replaced by a new one with the same mail.
    root.lo.delete_s(old.dn)
    new_uid = f"R{uuid.uuid4().hex[:8].upper()}"
    new_dn = f"uid={new_uid},{dns.staff}"
    root.add(new_dn, {"objectClass": [b"inetOrgPerson", b"mimsStaff"], "uid": [new_uid.encode()],
                      "cn": [b"New Teacher"], "sn": [b"Teacher"], "mail": [old.mail.encode()]},
             "the new form teacher")
    try:
        after = run_sync(slapd, roster, tmp=tmp_path)
        assert after.report["directory_read"]["rows_not_compared"] == 0
        assert after.report["planned"]["update"] == 4
        entries = school_entries(slapd, here)
        assert {e["mimsFormTeacher"][0].lower() for e in entries.values()} == {new_dn.lower()}
    finally:
        root.lo.delete_s(new_dn)


def test_a_dry_run_or_a_refused_run_leaves_the_view_alone(
        slapd: Config, schools: list[str], tmp_path: Path) -> None:
    here = schools[0]
    rows = school_rows(here, 10)
    roster = write_roster(tmp_path / "r.csv", rows)
    run_sync(slapd, roster, tmp=tmp_path)
    run_sync(slapd, roster, tmp=tmp_path)
    path = view_path(slapd.path(slapd.sync.state_dir), slapd.ldap.base_dn, [here])
    before = path.read_bytes()
    rows[0]["class"] = "8Q"
    changed = write_roster(tmp_path / "r.csv", rows)
    dry = run_sync(slapd, changed, "--dry-run", tmp=tmp_path)
    assert dry.code == 0 and dry.report["planned"]["move"] == 1
    # Half the school gone: more than sync.max_disable, refused.
    refused = run_sync(slapd, write_roster(tmp_path / "r.csv", rows[:5]), tmp=tmp_path)
    assert refused.code == 3
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.glob(path.name + ".*")] == []  # no temp file left


def test_a_national_roster_lists_its_students_ahead_and_reads_no_other_school(
        slapd: Config, root: Conn, dns: Dns, schools: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, make) -> None:  # type: ignore[no-untyped-def]
    """Above MAX_SCHOOLS_IN_FILTER schools (here: above 1) the listing covers every student
    of the directory, taken in a thread while the roster is read; the students of schools
    outside the roster (other tests' here) are neither counted nor read."""
    import mimsdir.sync.run as sync_run
    import mimsdir.sync.state as sync_state

    monkeypatch.setattr(sync_state, "MAX_SCHOOLS_IN_FILTER", 1)
    monkeypatch.setattr(sync_run, "MAX_SCHOOLS_IN_FILTER", 1)
    calls: list[int] = []
    listing = sync_run._list_every_student

    def counted(cfg: Config, view: Future[View]) -> sync_state.Listing:
        calls.append(1)
        return listing(cfg, view)

    monkeypatch.setattr(sync_run, "_list_every_student", counted)
    a, b = schools
    make.student()  # of another school, not in the roster
    roster = write_roster(tmp_path / "r.csv", school_rows(a, 3) + school_rows(b, 2))
    run_sync(slapd, roster, tmp=tmp_path)
    second = run_sync(slapd, roster, tmp=tmp_path)
    assert second.report["directory_read"]["read"] == 5  # an empty view: read in full
    calls.clear()
    root.modify(f"uid={a}002,{dns.students}", [(ldap.MOD_REPLACE, "mimsClass", [b"7Q"])],
                "a class changed by hand")
    third = run_sync(slapd, roster, tmp=tmp_path)
    assert calls == [1]
    assert third.report["directory_read"] == {"from_view": 4, "read": 1, "rows_not_compared": 4}
    assert third.report["planned"]["move"] == 1 and third.report["planned"]["unchanged"] == 4


def test_a_listing_taken_before_its_view_is_compared_when_the_view_comes(
        slapd: Config, root: Conn, dns: Dns, schools: list[str], tmp_path: Path) -> None:
    """The listing ahead starts before the view is loaded: what came before it is held and
    compared once it is there, and it keeps the view's own objects for the unchanged
    students (no second copy of half a million DNs and entryCSNs while the roster is read)."""
    import threading
    import time

    from mimsdir.sync.state import list_csns, ready

    here = schools[0]
    run_sync(slapd, write_roster(tmp_path / "r.csv", school_rows(here, 6)), tmp=tmp_path)
    view = View(students={s.dn: s for s in _read(slapd, [here]).students.values()})
    changed = f"uid={here}002,{dns.students}"
    root.modify(changed, [(ldap.MOD_REPLACE, "mimsClass", [b"7Q"])], "a class changed by hand")
    flt = f"(mimsSchoolCode={here})"

    class Midway(Future):  # type: ignore[type-arg]
        """Loaded while the listing is under way: after its third entry."""

        asked = 0

        def done(self) -> bool:
            self.asked += 1
            if self.asked == 4:
                self.set_result(view)
            return super().done()

    late: Future[View] = Future()
    threading.Timer(0.5, late.set_result, [view]).start()  # long after the one page came
    started = time.monotonic()
    with service_conn(slapd, "sync") as c:
        held = list_csns(c, dns, flt, late)
        waited = time.monotonic() - started
        midway = list_csns(c, dns, flt, Midway())
        now = list_csns(c, dns, flt, ready(view))
    assert waited >= 0.4  # it did wait for the view
    for listing in (held, midway, now):
        assert listing.view is view
        assert listing.stale == [(changed, here)]
        assert sorted(s.dn for s in listing.kept) == sorted(d for d in view.students
                                                             if d != changed)
        assert all(view.students[s.dn] is s for s in listing.kept)


def test_the_listing_ahead_never_waits_for_a_view_that_failed_to_load(
        slapd: Config, schools: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing thread waits for the view the run loads; a run that fails while loading
    it still hands it one, or the thread (and the process's exit) would wait forever."""
    import mimsdir.sync.run as sync_run
    import mimsdir.sync.state as sync_state

    monkeypatch.setattr(sync_state, "MAX_SCHOOLS_IN_FILTER", 1)
    monkeypatch.setattr(sync_run, "MAX_SCHOOLS_IN_FILTER", 1)
    a, b = schools
    roster = write_roster(tmp_path / "r.csv", school_rows(a, 2) + school_rows(b, 2))
    run_sync(slapd, roster, tmp=tmp_path)
    run_sync(slapd, roster, tmp=tmp_path)  # the view this roster's next run lists ahead for
    started: list[Future[sync_state.Listing]] = []
    ahead = sync_run.list_ahead

    def keep(*args, **kw):  # type: ignore[no-untyped-def]
        got = ahead(*args, **kw)
        assert got is not None
        started.append(got)
        return got

    def broken(*_a, **_kw):  # type: ignore[no-untyped-def]
        raise OSError("the state dir went away")

    monkeypatch.setattr(sync_run, "list_ahead", keep)
    monkeypatch.setattr(sync_run, "prior_view", broken)
    failed = run_sync(slapd, roster, tmp=tmp_path)
    assert failed.result.exit_code != 0
    assert len(started) == 1
    assert len(started[0].result(timeout=30).kept) == 0  # handed an empty view: not waiting


def test_a_view_no_run_has_written_for_weeks_is_deleted(tmp_path: Path) -> None:
    """An old scope's view is one more copy of children's names: the next save removes it."""
    import os

    from mimsdir.sync.view import STALE_DAYS

    old = tmp_path / "view-0123456789abcdef.json"
    recent = tmp_path / "view-fedcba9876543210.json"
    for p in (old, recent):
        p.write_text("{}\n")
    # The file system's clock (the test's may be shifted: --clock-shift-days).
    now = recent.stat().st_mtime
    os.utime(old, (now - (STALE_DAYS + 1) * 86400,) * 2)
    os.utime(recent, (now - (STALE_DAYS - 1) * 86400,) * 2)
    other = tmp_path / "last-run.json"
    other.write_text("{}")
    os.utime(other, (now - 400 * 86400,) * 2)
    save_view(tmp_path / "view-aaaaaaaaaaaaaaaa.json", "dc=x", ATTRS, [], {}, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last-run.json", "view-aaaaaaaaaaaaaaaa.json", "view-fedcba9876543210.json"]


@pytest.mark.parametrize("listed", [False, True], ids=["looked-up", "listed"])
def test_teachers_and_emails_are_found_alike_looked_up_or_listed(
        slapd: Config, root: Conn, dns: Dns, make, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        listed: bool) -> None:
    """A national roster's 17,000 form teachers are found by one listing of the staff's
    emails, a school's few by look-ups, and its emails among the students read: the same
    answers either way, a teacher with two addresses found by the second too."""
    import mimsdir.sync.state as sync_state

    if listed:
        monkeypatch.setattr(sync_state, "LOOKUPS_MAX", 0)
    teacher = make.teacher()
    other = make.teacher()
    second = f"second.{teacher.uid.lower()}@staff.test.sg"
    root.modify(teacher.dn, [(ldap.MOD_ADD, "mail", [second.encode()])], "a second address")
    pupil = make.student()
    with service_conn(slapd, "sync") as c:
        state = read_state(c, dns, [make.school], [], [pupil.mail.upper(), "nobody@x.sg"],
                           [second.upper(), other.mail, "gone@staff.test.sg"])
    assert state.teachers == {second: teacher.dn, other.mail.lower(): other.dn}
    assert state.mail_owners == {pupil.mail.lower(): pupil.uid}
