"""The planner's posix part, pure: a new school's group, transfers, back-fills, config changes,
and placeholders that are replaced in plan order and never reach the directory. No server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mimsdir.config import PosixConfig
from mimsdir.posix import NEW_UID
from mimsdir.sync.model import BACKFILL, CREATE, GROUP, MOVE, UPDATE
from mimsdir.sync.plan import assign_numbers, numbers_needed
from tests.test_sync_plan import DNS, as_dir, plan, roster, state, student


def test_new_student_of_a_new_school_waits_for_its_group() -> None:
    p = plan(roster([student(1, school="C", level="P2", cls="2A")]), state([]))
    kinds = [c.kind for c in p.changes]
    assert kinds == [GROUP, CREATE]
    group, create = p.changes
    assert (group.uid, group.dn) == ("school-c", "cn=school-c,ou=posixgroups,dc=mims,dc=example")
    attrs = {a.attr: a.new for a in create.attrs}
    assert attrs["objectClass"] == "posixAccount"
    assert attrs["uidNumber"] == NEW_UID and attrs["gidNumber"] == "gid:school-c"
    assert attrs["homeDirectory"] == "/home/c/s0001" and attrs["loginShell"] == "/bin/bash"
    assert numbers_needed(p) == (1, [group])


def test_transfer_moves_the_group_and_the_home_and_keeps_the_number() -> None:
    before = as_dir(student(7, school="B"))
    p = plan(roster([student(7, school="A")]), state([before]))
    (c,) = p.changes
    assert c.kind == MOVE
    got = {a.attr: (a.old, a.new) for a in c.attrs}
    assert got["gidNumber"] == ("900064", "900000")
    assert got["homeDirectory"] == ("/home/b/s0007", "/home/a/s0007")
    assert "uidNumber" not in got and "objectClass" not in got


def test_backfill_is_its_own_kind_and_never_a_disable() -> None:
    s = student(3)
    p = plan(roster([s]), state([as_dir(s, posix=False)]))
    (c,) = p.changes
    assert c.kind == BACKFILL
    assert [a.attr for a in c.attrs] == ["objectClass", "uidNumber", "gidNumber",
                                         "homeDirectory", "loginShell"]
    # With another change, the student gets both in that change (kind: the other one).
    p = plan(roster([replace(s, class_name="4B")]), state([as_dir(s, posix=False)]))
    assert [c.kind for c in p.changes] == [MOVE]
    assert p.counts()["backfill"] == 0 and p.counts()["disable"] == 0


def test_config_changes_reach_every_student_as_updates() -> None:
    s = student(4)
    posix = PosixConfig(shell="/bin/zsh", home_template="/h/{uid}")  # noqa: S604
    p = plan(roster([s]), state([as_dir(s)]), posix=posix)
    (c,) = p.changes
    assert c.kind == UPDATE
    assert {a.attr: a.new for a in c.attrs} == {"loginShell": "/bin/zsh",
                                                "homeDirectory": "/h/s0004"}


def test_assign_numbers_in_plan_order_and_never_leaves_a_placeholder() -> None:
    rows = [student(1, school="C"), student(2, school="C"), student(3)]
    p = plan(roster(rows), state([as_dir(rows[2], posix=False)]))
    count, groups = numbers_needed(p)
    assert count == 3 and [g.uid for g in groups] == ["school-c"]
    done = assign_numbers(p, [10, 20, 30], {"school-c": 99})
    got = {c.uid: {a.attr: a.new for a in c.attrs} for c in done.changes}
    # Changes are written in plan order: the back-fill (rank 2) before the creates.
    assert [c.uid for c in done.changes] == ["school-c", "S0003", "S0001", "S0002"]
    assert (got["S0003"]["uidNumber"], got["S0001"]["uidNumber"],
            got["S0002"]["uidNumber"]) == ("10", "20", "30")
    assert got["S0001"]["gidNumber"] == got["school-c"]["gidNumber"] == "99"
    assert got["S0003"]["gidNumber"] == "900000"
    with pytest.raises(ValueError, match="2 uid numbers for 3"):
        assign_numbers(p, [1, 2], {"school-c": 99})
    with pytest.raises(ValueError, match="school-c"):
        assign_numbers(p, [1, 2, 3], {})
    assert p.changes[1].attrs != done.changes[1].attrs  # the plan itself is not changed
    assert DNS.posix_group("school-c") == done.changes[0].dn
