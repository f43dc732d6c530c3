"""The planner's output in full, for one roster that needs every kind of change (the mutants
of ``mimsdir/sync/plan.py`` that the property tests let through: fields of a change that
apply.py, the slips and the report read, the unchanged count, warnings, the order of writes).

The expected plan is a golden file, ``tests/data/plan-every-kind.json``, reviewed by hand:
regenerate it with ``MIMS_REGEN_GOLDEN=1`` only when a change of plan is intended, and read
the diff. Pure: no server.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path

from mimsdir.gtime import format_gtime
from mimsdir.roster import RowError
from mimsdir.sync.model import PURGE, REISSUE, DirStudent
from mimsdir.sync.plan import apply_to_state, desired, names, scope_of
from tests.test_sync_plan import DNS, NOW, TEACHERS, as_dir, plan, roster, state, student

GOLDEN = Path(__file__).parent / "data" / "plan-every-kind.json"


def scenario(other_school: bool = False):  # type: ignore[no-untyped-def]
    """School A's roster (and, if asked, one row of school B) against a directory holding
    both schools. Student ids are chosen so that the write order depends on every rank of
    ``_order``: within one school a later kind always has a smaller id."""
    t1_upper = next(iter(TEACHERS)).upper()  # the roster's teacher email, in capitals
    long_ago = format_gtime(NOW - timedelta(days=365, hours=12))  # past retention (365 d)
    exactly = format_gtime(NOW - timedelta(days=365))              # not past it
    rows = [
        student(1, level="P5", cls="5A"),                                   # reissue
        replace(student(2, level="P2", cls="2A", teacher="nobody@staff.sg"),
                family_name=""),                                            # create, one name
        student(3, level="P3", cls="3A", teacher="nobody@staff.sg"),        # create
        student(4, level="P4", cls="4A"),                                   # reenable
        student(5, level="P4", cls="4B"),                                   # move
        student(6, level="P4", cls="4A"),                                   # promote P3->P4
        student(7, level="P4", cls="4A", teacher=t1_upper),                 # update: teacher
        student(9, level="P4", cls="4A", status="left"),                    # disable (row)
        student(11, level="P4", cls="4A", status="left"),                   # already left
        replace(student(12), email="s13@x.sg"),                             # s13's login ID
        student(15, level="P4", cls="4A", teacher=next(iter(TEACHERS))),     # same, other case
        student(19, level="P6", cls="6A", given="kid"),                     # update: cn case
        student(22, level="P4", cls="4A"),                                  # move: school only
        student(23, level="P4", cls="4A"),                                  # reissue
        student(25, level="P3", cls="3A"),                                  # backfill
        student(26, level="P3", cls="3A"),                                  # update: shell
    ]
    if other_school:
        rows.append(student(20, school="B"))
    errors = (RowError("r.csv", 40, "level", "bad level", student_id="S0014"),)
    current = [
        as_dir(rows[0], credential_pending=True),
        as_dir(rows[3], status="left", left_at="20260101000000Z"),
        as_dir(student(5, level="P4", cls="4A")),
        as_dir(student(6, level="P3", cls="3A"), qna_origin="card"),
        as_dir(student(7, level="P4", cls="4A")),
        as_dir(student(8), status="left", left_at=long_ago),                # purge
        as_dir(student(9, level="P4", cls="4A")),
        as_dir(student(10, level="P5", cls="5B")),                          # disable (absent)
        as_dir(student(11), status="left", left_at=long_ago),
        as_dir(student(12)),
        as_dir(student(13)),                                                # protected (mail)
        as_dir(student(14)),                                                # protected (row)
        replace(as_dir(rows[10]), mail="S15@X.SG", school="a", level="p4",
                policy_dn=as_dir(rows[10]).policy_dn.upper(),               # type: ignore[union-attr]
                form_teacher_dn=next(iter(TEACHERS.values())).upper()),
        as_dir(student(16), status="left", left_at=exactly),                # kept
        as_dir(student(17), status="disabled"),                             # ICT-disabled
        as_dir(student(18, level="P2", cls="2A")),                          # disable (absent)
        as_dir(student(19, level="P6", cls="6A")),
        as_dir(student(22, school="B", level="P4", cls="4A")),              # transferred in
        as_dir(student(23, level="P4", cls="4A"), credential_pending=True),
        replace(as_dir(student(24, level="P5", cls="5C")), class_name=None, mail=None,
                cn=None),                                                   # disable, bare
        as_dir(rows[14], posix=False),                                      # no posixAccount
        as_dir(rows[15], login_shell="/bin/sh"),                            # old shell
        as_dir(student(21, school="B")),                                    # out of scope
    ]
    return roster(rows, errors), state(current)


def test_every_kind_matches_the_golden_plan() -> None:
    r, st0 = scenario()
    p = plan(r, st0, purge=True)
    after = apply_to_state(p, st0.students)
    got = json.loads(json.dumps({"plan": p.to_json(),
                                 "after": {k: asdict(v) for k, v in sorted(after.items())}}))
    if os.environ.get("MIMS_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_defaults_keep_and_retain() -> None:
    """Without ``purge`` nothing is deleted; the default retention is 365 days."""
    r, st0 = scenario()
    assert plan(r, st0).count(PURGE) == 0
    purged = [c.uid for c in plan(r, st0, purge=True).changes if c.kind == PURGE]
    assert purged == ["S0008"]  # left 365 days and 12 hours ago; S0016 exactly 365 days ago


def test_school_option_scopes_and_warns() -> None:
    r, st0 = scenario(other_school=True)
    assert r.schools == {"A", "B"}
    p = plan(r, st0, school="a")
    assert p.scope == ("A",) == scope_of(r, "a")
    assert p.warnings == [
        "1 row(s) of schools outside --school a ignored",
        "form teacher nobody@staff.sg is not in the directory: 2 student(s) keep their "
        "current form teacher",
    ]
    assert "S0021" not in {c.uid for c in p.changes}


def test_delta_keeps_the_students_it_does_not_mention() -> None:
    r, st0 = scenario()
    delta = replace(r, is_delta=True, departed_ids=frozenset({"S0010"}))
    p = plan(delta, st0)
    assert p.is_delta is True
    assert [c.uid for c in p.changes if c.kind == "disable"] == ["S0009", "S0010"]
    # Not departed, so unchanged: S0018 and S0024 (besides the full run's unchanged ones).
    assert p.unchanged == plan(r, st0).unchanged + 2


def test_reissue_only_for_active_students() -> None:
    r, st0 = scenario()
    pending_left = {**st0.students, "s0001": replace(st0.students["s0001"], status="left")}
    p = plan(r, replace(st0, students=pending_left))
    assert [c.uid for c in p.changes if c.kind == REISSUE] == ["S0023"]


def test_names_and_teacher_lookup() -> None:
    one = replace(student(1), given_name="  Ali ", family_name=" ")
    assert names(one) == ("Ali", "Ali", "Ali")
    assert names(student(2, given="Wei Ling")) == ("Wei Ling", "Tan", "Wei Ling Tan")
    t1 = next(iter(TEACHERS))
    want = desired(student(3, teacher=t1.upper()), DNS, TEACHERS)
    assert want["mimsFormTeacher"] == TEACHERS[t1]
    assert "mimsFormTeacher" not in desired(student(3, teacher="nobody@x.sg"), DNS, TEACHERS)


def test_apply_to_state_drops_purged_and_settles_reissued() -> None:
    r, st0 = scenario()
    after = apply_to_state(plan(r, st0, purge=True), st0.students)
    assert "s0008" not in after
    assert after["s0001"].credential_pending is False
    assert after["s0023"].credential_pending is False  # every reissue, not only the first
    assert after["s0001"] == replace(st0.students["s0001"], credential_pending=False)
    new = after["s0002"]
    assert isinstance(new, DirStudent) and new.dn == DNS.student("S0002")
    assert (new.school, new.level, new.status) == ("A", "P2", "active")
