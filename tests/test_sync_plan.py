"""The planner, pure: no server. Hypothesis checks that a plan applied to the directory state
yields the roster, and that planning again then finds nothing to do."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimsdir.config import PosixConfig
from mimsdir.directory.slapdconf import Dns
from mimsdir.posix import home_directory, school_group
from mimsdir.roster import Roster, RosterStudent, RowError
from mimsdir.sync import guards
from mimsdir.sync.model import DISABLE, PROMOTE, DirStudent, Plan
from mimsdir.sync.plan import (
    DirectoryState,
    apply_to_state,
    assign_numbers,
    desired,
    groups_after,
    numbers_needed,
    plan_sync,
    row_digest,
)

DNS = Dns("dc=mims,dc=example")
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
TEACHERS = {"t1@staff.sg": "uid=T1,ou=staff,dc=mims,dc=example",
            "t2@staff.sg": "uid=T2,ou=staff,dc=mims,dc=example"}
POSIX = PosixConfig()
#: The school groups that exist in these tests' directory (school C has none yet).
GROUPS = {school_group("A"): "900000", school_group("B"): "900064"}


def student(i: int, school: str = "A", level: str = "P4", cls: str = "4A",
            teacher: str | None = None, status: str = "active",
            given: str = "Kid") -> RosterStudent:
    return RosterStudent(student_id=f"S{i:04d}", email=f"s{i}@x.sg", given_name=given,
                         family_name="Tan", school_code=school, level=level, class_name=cls,
                         form_teacher_email=teacher, status=status, source="r.csv", line=i + 1)


def roster(students: list[RosterStudent], errors: tuple[RowError, ...] = (),
           delta: bool = False, departed: frozenset[str] = frozenset()) -> Roster:
    schools = frozenset(s.school_code for s in students) or frozenset({"A"})
    counts: dict[str, int] = {}
    for s in students:
        counts[s.school_code] = counts.get(s.school_code, 0) + 1
    return Roster(students=tuple(students), errors=errors, warnings=(), schools=schools,
                  fmt="native", is_delta=delta, departed_ids=departed,
                  row_count_by_school=counts)


def as_dir(r: RosterStudent, **over: object) -> DirStudent:
    """The student as the directory holds it after a sync of ``r``: posix attributes too (a
    uidNumber derived from the id; ``posix=False`` in ``over`` makes one to back-fill)."""
    want = desired(r, DNS, TEACHERS)
    base = DirStudent(uid=r.student_id, dn=DNS.student(r.student_id), school=r.school_code,
                      level=r.level, status="active", mail=r.email,
                      given_name=want["givenName"], family_name=want["sn"], cn=want["cn"],
                      class_name=r.class_name, form_teacher_dn=want.get("mimsFormTeacher"),
                      policy_dn=want["pwdPolicySubentry"], posix=True,
                      uid_number=str(1000000 + 64 * int(r.student_id[1:])),
                      gid_number=GROUPS.get(school_group(r.school_code)),
                      home=home_directory(POSIX.home_template, r.student_id, r.school_code),
                      login_shell=POSIX.shell)
    if over.get("posix") is False:
        over = {"uid_number": None, "gid_number": None, "home": None, "login_shell": None, **over}
    from dataclasses import replace

    return replace(base, **over)  # type: ignore[arg-type]


def state(students: list[DirStudent], groups: dict[str, str] | None = None) -> DirectoryState:
    return DirectoryState(students={s.uid.lower(): s for s in students},
                          mail_owners={s.mail.lower(): s.uid for s in students if s.mail},
                          teachers=TEACHERS, groups=GROUPS if groups is None else groups)


def plan(r: Roster, st_: DirectoryState, **kw: object) -> Plan:
    return plan_sync(r, st_, dns=DNS, now=NOW, **kw)  # type: ignore[arg-type]


def test_protected_by_id_and_email_are_not_disabled() -> None:
    a, b, c = student(1), student(2), student(3)
    errs = (RowError("r.csv", 5, "level", "bad", student_id="S0002"),
            RowError("r.csv", 6, "student_id", "bad", student_id=None, email="s3@x.sg"))
    p = plan(roster([a], errs), state([as_dir(a), as_dir(b), as_dir(c)]))
    assert p.count(DISABLE) == 0 and sorted(p.protected) == ["S0002", "S0003"]


def test_delta_disables_only_departed() -> None:
    a, b, c = student(1), student(2), student(3)
    p = plan(roster([a], delta=True, departed=frozenset({"S0003"})),
             state([as_dir(a), as_dir(b), as_dir(c)]))
    assert [ch.uid for ch in p.changes if ch.kind == DISABLE] == ["S0003"]


def test_other_school_never_disabled() -> None:
    a = student(1, school="A")
    b = student(2, school="B")
    p = plan(roster([a]), state([as_dir(a), as_dir(b)]))
    assert p.count(DISABLE) == 0
    p = plan(roster([a, student(3, school="B")]), state([as_dir(a), as_dir(b)]), school="A")
    assert p.count(DISABLE) == 0


def test_promotion_to_upper_primary_sets_qna_must_change_unless_own_answers() -> None:
    p3 = student(1, level="P3", cls="3A")
    now_p4 = student(1, level="P4", cls="4A")
    p = plan(roster([now_p4]), state([as_dir(p3, qna_origin="card")]))
    (c,) = p.changes
    assert c.kind == PROMOTE
    attrs = {a.attr: a.new for a in c.attrs}
    assert attrs["mimsQnaMustChange"] == "TRUE"
    assert attrs["pwdPolicySubentry"].startswith("cn=upper-primary")
    p = plan(roster([now_p4]), state([as_dir(p3, qna_origin="student")]))
    assert "mimsQnaMustChange" not in {a.attr for a in p.changes[0].attrs}


def test_guard_counts_disables_not_promotions() -> None:
    students = [student(i, level="P3") for i in range(40)]
    current = [as_dir(s) for s in students]
    promoted = [student(i, level="P4") for i in range(40)]
    p = plan(roster(promoted), state(current))
    assert p.count(PROMOTE) == 40
    assert guards.check(p, max_disable="5%", max_shrink="10%",
                        last=guards.LastRun({}, None), school=None, student_rows=40) == []
    p = plan(roster(promoted[5:]), state(current))
    reasons = guards.check(p, max_disable="5%", max_shrink="10%",
                           last=guards.LastRun({"A": 40}, ("A",)), school=None,
                           student_rows=35)
    assert any("max_disable" in r for r in reasons) and any("max_shrink" in r for r in reasons)


# -- properties -------------------------------------------------------------------------------
LEVELS = ("P1", "P2", "P3", "P4", "P5", "P6")
roster_student = st.builds(
    lambda i, school, level, cls, teacher, given, status: student(
        i, school=school, level=level, cls=cls, teacher=teacher, given=given, status=status),
    # School C has no posix group yet: its first students make the sync add one.
    i=st.integers(0, 30), school=st.sampled_from(("A", "B", "C")), level=st.sampled_from(LEVELS),
    cls=st.sampled_from(("1A", "4B", "6C")), teacher=st.sampled_from((None, *TEACHERS)),
    given=st.sampled_from(("Kid", "Wei Ling", "Zoë")),
    status=st.sampled_from(("active", "active", "active", "left")),
)
dir_student = st.builds(
    lambda r, status, pending, posix: as_dir(r, status=status, credential_pending=pending,
                                             left_at="20200101000000Z" if status == "left"
                                             else None, posix=posix),
    r=roster_student.filter(lambda r: r.school_code != "C"),
    status=st.sampled_from(("active", "left", "disabled")),
    pending=st.booleans(), posix=st.booleans(),
)


def assigned(p: Plan, first: int = 5_000_000) -> Plan:
    """The plan with numbers, as apply reserves them (fake, distinct)."""
    count, groups = numbers_needed(p)
    return assign_numbers(p, [first + 64 * i for i in range(count)],
                          {g.uid: 800_000 + 64 * i for i, g in enumerate(groups)})


def _unique(items: list, key) -> list:  # type: ignore[no-untyped-def]
    seen, out = set(), []
    for it in items:
        k = key(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(roster_student, max_size=25), current=st.lists(dir_student, max_size=25),
       purge=st.booleans())
def test_plan_then_apply_yields_roster_and_replanning_is_a_no_op(rows, current, purge) -> None:  # type: ignore[no-untyped-def]
    rows = _unique(rows, lambda r: r.student_id)
    current = _unique(current, lambda s: s.uid)
    r = roster(rows)
    st0 = state(current)
    p = assigned(plan(r, st0, purge=purge))
    after = apply_to_state(p, st0.students)
    # The roster's active students are in the directory exactly as the roster says...
    for row_ in rows:
        got = after.get(row_.student_id.lower())
        before = st0.students.get(row_.student_id.lower())
        if row_.status == "left":
            if got is not None and before is not None and before.status == "active":
                assert got.status == "left"
            continue
        assert got is not None
        assert got.level == row_.level and got.school == row_.school_code
        assert got.class_name == row_.class_name and got.mail == row_.email
        # ...with the posix shape: a number of their own (kept if they had one), the
        # school's group, the home of the template...
        assert got.posix and got.uid_number and got.uid_number.isdigit()
        if before is not None and before.uid_number:
            assert got.uid_number == before.uid_number
        assert got.gid_number == groups_after(p, st0.groups)[f"school-{row_.school_code.lower()}"]
        assert got.home == f"/home/{row_.school_code.lower()}/{row_.student_id.lower()}"
        if before is None or before.status != "disabled":
            assert got.status == "active"
        else:
            assert got.status == "disabled"
    # ...students of the scope who are not in it are no longer active...
    in_roster = {x.student_id.lower() for x in rows if x.status != "left"}
    for key, s in after.items():
        if s.school in r.schools and key not in in_roster:
            assert s.status != "active"
    # ...students of other schools are untouched...
    for key, s in st0.students.items():
        if s.school not in r.schools and key not in {x.student_id.lower() for x in rows}:
            assert after[key] == s
    # ...no two students share a uidNumber...
    numbers = [s.uid_number for s in after.values() if s.uid_number]
    assert len(numbers) == len(set(numbers))
    # ...and planning again finds nothing to do.
    again = plan(r, state(list(after.values()), groups_after(p, st0.groups)), purge=purge)
    assert again.changes == [], again.changes


@settings(max_examples=60)
@given(rows=st.lists(roster_student, max_size=20), current=st.lists(dir_student, max_size=20))
def test_plan_round_trips_through_json(rows, current) -> None:  # type: ignore[no-untyped-def]
    import json

    rows = _unique(rows, lambda r: r.student_id)
    current = _unique(current, lambda s: s.uid)
    p = plan(roster(rows), state(current))
    assert Plan.from_json(json.loads(json.dumps(p.to_json()))) == p


def _changed(r: RosterStudent, how: str | None) -> RosterStudent:
    from dataclasses import replace

    if how == "class":
        return replace(r, class_name="9Z")
    if how == "given":
        return replace(r, given_name="Other")
    if how == "level":
        return replace(r, level="P6" if r.level != "P6" else "P1")
    if how == "teacher":
        return replace(r, form_teacher_email=None if r.form_teacher_email else TEACHERS_MAIL)
    return r


TEACHERS_MAIL = next(iter(TEACHERS))
HOW = st.sampled_from((None, None, None, "class", "given", "level", "teacher"))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(roster_student, max_size=25),
       kept=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=25,
                     max_size=25),
       how=st.lists(HOW, min_size=25, max_size=25), extra=st.lists(dir_student, max_size=8))
def test_quiet_rows_plan_exactly_as_compared_rows(rows, kept, how, extra) -> None:  # type: ignore[no-untyped-def]
    """What a run found converged (``converged``) lets the next run skip comparing a row with
    the same digest against the same entry: the plan must be the one a full comparison gives,
    whatever the next roster holds (the same rows, changed rows, rows gone)."""
    from dataclasses import replace

    rows = _unique(rows, lambda r: r.student_id)
    current = [as_dir(r, credential_pending=pending, posix=posix)
               for r, (keep, pending, posix) in zip(rows, kept, strict=False) if keep]
    current = _unique(current + extra, lambda s: s.uid)
    st0 = state(current)
    converged: dict[str, str] = {}
    plan(roster(rows), st0, converged=converged)
    later = [_changed(r, h) for r, h in zip(rows, how, strict=False)][: len(rows) - 1 or None]
    full = plan(roster(later), st0)
    again: dict[str, str] = {}
    quick = plan(roster(later), replace(st0, quiet=converged), converged=again)
    assert quick.changes == full.changes
    assert replace(quick, quiet_rows=0) == full
    # Exactly the rows asking what they asked before were skipped, and they stay converged.
    same = {r.student_id.lower() for r in later if converged.get(r.student_id.lower())
            == row_digest(r)}
    assert quick.quiet_rows == len(same) and same <= set(again)
