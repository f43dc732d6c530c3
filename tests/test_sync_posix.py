"""The sync and the posix attributes, end to end through the CLI against the session's slapd:
new students get numbers from one reservation, existing ones are back-filled (a kind of its
own, never a disable), a transfer moves the group and the home and keeps the number, a dry
run or a saved plan reserves nothing until it is applied."""

from __future__ import annotations

import json
import uuid

import ldap
import pytest

from mimsdir.directory.idpool import read_groups
from mimsdir.posix import ID_STRIDE, school_group
from tests.sync_helpers import delete_school, run_sync, school_entries, school_rows, write_roster


@pytest.fixture
def schools(slapd):  # type: ignore[no-untyped-def]
    codes = ["P" + uuid.uuid4().hex[:7].upper() for _ in range(2)]
    yield codes
    for code in codes:
        delete_school(slapd, code)


def counter(root, dns) -> int:  # type: ignore[no-untyped-def]
    entry = root.get(dns.idpool("uid-0"), ["mimsIdNext"], "reading the uid counter")
    return int(entry["mimsIdNext"][0]) if entry else 0


def test_new_students_get_the_posix_shape(slapd, root, dns, schools, tmp_path) -> None:  # type: ignore[no-untyped-def]
    school = schools[0]
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", school_rows(school, 12)), tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert r.report["planned"]["group"] == 1 and r.report["applied"]["group"] == 1
    assert "school groups added (posix)" in r.result.output
    gid = read_groups(root, dns)[school_group(school)]
    entries = school_entries(slapd, school)
    numbers = sorted(int(e["uidNumber"][0]) for e in entries.values())
    assert len(set(numbers)) == 12 and numbers == list(range(numbers[0], numbers[-1] + 1,
                                                             ID_STRIDE))
    for uid, e in entries.items():
        assert "posixAccount" in e["objectClass"]
        assert e["gidNumber"] == [str(gid)]
        assert e["homeDirectory"] == [f"/home/{school.lower()}/{uid.lower()}"]
        assert e["loginShell"] == ["/bin/bash"]
        assert "gecos" not in e  # cn is the full name devices show (gecos is ASCII only)
    again = run_sync(slapd, write_roster(tmp_path / "r.csv", school_rows(school, 12)),
                     tmp=tmp_path)
    assert again.report["planned"]["unchanged"] == 12
    assert sum(v for k, v in again.report["planned"].items() if k != "unchanged") == 0


def test_existing_students_are_back_filled_never_disabled(slapd, root, dns, schools,
                                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Students made before the posix attributes (or loaded without them): the sync adds
    them, counts them as back-fills, and the disable guard does not see them."""
    school = schools[0]
    rows = school_rows(school, 10)
    assert run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path).code == 0
    before = school_entries(slapd, school)
    for uid in before:
        root.modify(dns.student(uid), [(ldap.MOD_DELETE, "objectClass", [b"posixAccount"]),
                                       (ldap.MOD_DELETE, "uidNumber", None),
                                       (ldap.MOD_DELETE, "gidNumber", None),
                                       (ldap.MOD_DELETE, "homeDirectory", None),
                                       (ldap.MOD_DELETE, "loginShell", None)],
                    "making a pre-posix student")
    rows[0]["class"] = "9Z"  # one of them also changes class: one change, kind move
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), "--max-disable", "0",
                 tmp=tmp_path)
    assert r.code == 0, r.result.output
    planned = r.report["planned"]
    assert (planned["backfill"], planned["move"], planned["disable"]) == (9, 1, 0)
    assert r.report["applied"]["backfill"] == 9
    assert "back-filled (posix attributes)" in r.result.output
    after = school_entries(slapd, school)
    assert all("posixAccount" in e["objectClass"] and e["uidNumber"] for e in after.values())
    # New numbers, never the old ones (those stay burnt).
    old = {e["uidNumber"][0] for e in before.values()}
    assert not old & {e["uidNumber"][0] for e in after.values()}


def test_a_transfer_moves_group_and_home_and_keeps_the_number(slapd, root, dns, schools,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = schools
    rows = school_rows(a, 4)
    assert run_sync(slapd, write_roster(tmp_path / "a.csv", rows), tmp=tmp_path).code == 0
    uid = rows[0]["student_id"]
    before = school_entries(slapd, a)[uid]
    moved = [{**rows[0], "school_code": b}]
    r = run_sync(slapd, write_roster(tmp_path / "b.csv", moved), tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert r.report["planned"]["move"] == 1 and r.report["planned"]["group"] == 1
    after = school_entries(slapd, b)[uid]
    groups = read_groups(root, dns)
    assert after["uidNumber"] == before["uidNumber"]
    assert before["gidNumber"] == [str(groups[school_group(a)])]
    assert after["gidNumber"] == [str(groups[school_group(b)])]
    assert after["homeDirectory"] == [f"/home/{b.lower()}/{uid.lower()}"]


def test_a_dry_run_or_a_saved_plan_reserves_nothing(slapd, root, dns, schools, tmp_path) -> None:  # type: ignore[no-untyped-def]
    school = schools[0]
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 5))
    plan_file = tmp_path / "plan.json"
    before = counter(root, dns)
    r = run_sync(slapd, roster, "--dry-run", "--plan-out", str(plan_file), tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert counter(root, dns) == before
    assert school_group(school) not in read_groups(root, dns)
    saved = json.loads(plan_file.read_text())
    news = [a["new"] for c in saved["changes"] for a in c["attrs"]
            if a["attr"] in ("uidNumber", "gidNumber")]
    assert news.count("uid:new") == 5 and news.count(f"gid:{school_group(school)}") == 6
    r = run_sync(slapd, None, "--apply-plan", str(plan_file), tmp=tmp_path)
    assert r.code == 0, r.result.output
    entries = school_entries(slapd, school)
    assert len(entries) == 5 and counter(root, dns) >= before + 5
    assert all(e["uidNumber"][0].isdigit() and e["gidNumber"][0].isdigit()
               for e in entries.values())


def test_a_saved_plan_is_refused_when_its_school_group_appeared_since(slapd, root, dns, schools,
                                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The plan would add the group and give its students the new group's number: if the
    group was added meanwhile (another run), the plan is stale; nothing is written."""
    from mimsdir.directory.idpool import Group, Pools, ensure_groups

    school = schools[0]
    plan_file = tmp_path / "plan.json"
    roster = write_roster(tmp_path / "r.csv", school_rows(school, 3))
    assert run_sync(slapd, roster, "--dry-run", "--plan-out", str(plan_file),
                    tmp=tmp_path).code == 0
    ensure_groups(root, Pools(dns, slapd.posix.uid_min, slapd.posix.gid_min),
                  [Group(school_group(school), "added by someone else")])
    r = run_sync(slapd, None, "--apply-plan", str(plan_file), tmp=tmp_path)
    assert r.code == 3 and "changed since this plan" in r.result.output
    assert school_entries(slapd, school) == {}
