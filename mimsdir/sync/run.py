"""One sync run, start to finish: lock, read, plan, guard, apply, remember, report.

Kept apart from the CLI so tests and other callers get a result value, not printed text.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mimsdir.config import Config
from mimsdir.connect import refuse_on_consumer, service_conn
from mimsdir.directory.idpool import Pools
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import DirectoryUnavailable, ExitCode, RefusedError, UsageError
from mimsdir.roster import Known, QuietRow, Roster, RosterError, read_roster
from mimsdir.sync import guards, history
from mimsdir.sync.apply import ApplyResult, apply_plan, operations
from mimsdir.sync.model import Plan, Remembered
from mimsdir.sync.plan import DirectoryState, plan_sync, scope_of
from mimsdir.sync.runlock import run_lock
from mimsdir.sync.state import ATTRS as STATE_ATTRS
from mimsdir.sync.state import (
    EVERY_STUDENT,
    MAX_SCHOOLS_IN_FILTER,
    Listing,
    fingerprint,
    list_csns,
    read_state,
)
from mimsdir.sync.view import View, load_view, save_view, view_path


@dataclass
class SyncOptions:
    roster: Path | None = None
    fmt: str = "native"
    school: str | None = None
    dry_run: bool = False
    force: bool = False
    purge: bool = False
    max_disable: str | None = None
    slips_dir: Path | None = None
    plan_out: Path | None = None
    apply_plan: Path | None = None


@dataclass
class SyncOutcome:
    plan: Plan
    exit_code: ExitCode
    refused: list[str] = field(default_factory=list)
    applied: ApplyResult | None = None
    started: str = ""
    finished: str = ""
    forced: bool = False
    dry_run: bool = False
    interrupted: str | None = None

    def report(self) -> dict[str, Any]:
        """The JSON report: counts, errors, guard reasons, slip files. Never a secret (the
        plan holds none: passwords exist only between generation and the slip)."""
        p = self.plan
        data: dict[str, Any] = {
            "started": self.started, "finished": self.finished, "exit_code": int(self.exit_code),
            "roster": p.roster, "format": p.fmt, "delta": p.is_delta, "scope": list(p.scope),
            "dry_run": self.dry_run, "forced": self.forced, "refused": self.refused,
            "planned": p.counts(), "planned_by_school": p.counts_by_school(),
            "rows_by_school": p.rows_by_school, "scope_active_before": p.scope_active,
            "row_errors": p.row_errors, "warnings": p.warnings,
            "protected_from_disable": p.protected,
            "directory_read": {"from_view": p.read_reused, "read": p.read_fetched,
                               "rows_not_compared": p.quiet_rows},
        }
        if self.interrupted:
            data["interrupted"] = self.interrupted
        if self.applied is not None:
            a = self.applied
            data.update({"applied": a.done, "write_failures": a.failures, "slips": a.slips,
                         "credentials_issued": a.credentials_issued,
                         "reconnects": a.reconnects})
        return data


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(cfg: Config, opts: SyncOptions, known: Mapping[bytes, Known] | None = None,
          only_lines: Collection[int] | None = None) -> Roster:
    assert opts.roster is not None
    return read_roster(opts.roster, opts.fmt, google_ou_pattern=cfg.sync.google_ou_pattern,
                       allowed_domains=cfg.sync.allowed_email_domains or None,
                       known=known, salt=raw_salt(cfg, opts.fmt), only_lines=only_lines)


_RULE_SOURCES = ("roster/validate.py", "roster/table.py", "roster/native.py")


@functools.cache
def _rules_digest() -> str:
    """The source of the code that turns raw cells into a student: a row remembered by its
    cells under other rules is another row, whether or not anyone remembered to say so."""
    h = hashlib.sha256()
    for name in _RULE_SOURCES:
        h.update((Path(__file__).parent.parent / name).read_bytes())
    return h.hexdigest()


def raw_salt(cfg: Config, fmt: str) -> bytes:
    """What besides a row's cells decides how the rules read it: the rules themselves, the
    format and the allowed email domains."""
    domains = ",".join(sorted(cfg.sync.allowed_email_domains or ()))
    return f"{_rules_digest()}\0{fmt}\0{domains}".encode()


def raw_rows_apply(opts: SyncOptions) -> bool:
    """Whether rows are remembered by their raw cells: native rosters (the other formats join
    several files into a row), and not when the run saves a plan (it lists every row's keys)."""
    return opts.roster is not None and opts.plan_out is None and opts.fmt.lower() == "native"


def prior_view(cfg: Config, opts: SyncOptions) -> tuple[Path, View] | None:
    """The view the last run of this roster left (for its schools, or ``--school``), so the
    reader can skip the rules for rows it remembers (``raw_rows_apply``) and the listing
    taken ahead is compared with it as it comes (``list_ahead``). None when there is none."""
    if opts.roster is None:
        return None
    state_dir = cfg.path(cfg.sync.state_dir)
    if opts.school:
        scope: tuple[str, ...] = (opts.school.upper(),)
    else:
        last = history.last_run(state_dir, _source_key(str(opts.roster))).schools_of_source
        if not last:
            return None
        scope = tuple(sorted(last))
    path = view_path(state_dir, cfg.ldap.base_dn, scope)
    view = load_view(path, cfg.ldap.base_dn, STATE_ATTRS)
    return (path, view) if len(view) else None


def _still_quiet(roster: Roster, state: DirectoryState) -> tuple[list[QuietRow], list[QuietRow]]:
    """The quiet rows whose student is the very one the reader matched (taken from the same
    view because its entryCSN has not moved, under the same planning context), and the others
    (the student changed since, or the scope or context is another): those are read again."""
    students, quiet = state.students, state.quiet
    still: list[QuietRow] = []
    again: list[QuietRow] = []
    for q in roster.quiet:
        key = q.known.uid.lower()
        if students.get(key) is q.known and key in quiet:
            still.append(q)
        else:
            again.append(q)
    return still, again


#: A plan is first made from the view's heads when more students than this would be read
#: back only to be planned as disables (a refusal then costs no more than a quiet night).
HEADS_FLOOR = 1000


def _unread(state: DirectoryState, still: list[QuietRow], roster: Roster) -> list[Remembered]:
    """The students taken from the view that neither a quiet row nor a row read in full
    names: the ones a plan would disable (or leave as they are)."""
    if len(still) == state.reused:
        return []
    claimed = {id(q.known) for q in still}
    named = {r.student_id.lower() for r in roster.students}
    return [s for key, s in state.students.items()
            if isinstance(s, Remembered) and id(s) not in claimed and key not in named]


def _read_in_full(state: DirectoryState, view: View, still: list[QuietRow]) -> DirectoryState:
    """``state`` with every student read in full from the view but those of quiet rows."""
    if len(still) == state.reused:
        return state  # every student taken from the view is a quiet row's: a quiet night
    quiet = {q.known.uid.lower() for q in still}
    need = [s for key, s in state.students.items()
            if isinstance(s, Remembered) and key not in quiet]
    if not need:
        return state
    full = view.full(need)
    students = dict(state.students)
    for s in need:
        students[s.uid.lower()] = full[s.dn]
    return replace(state, students=students)


def _read_again(cfg: Config, opts: SyncOptions, roster: Roster,
                again: list[QuietRow]) -> Roster:
    """``roster`` with the ``again`` rows read in full (the rules run on them after all)."""
    lines = {q.line: q.raw for q in again}
    extra = _read(cfg, opts, known={}, only_lines=lines)
    if (extra.errors or len(extra.students) != len(lines)
            or any(lines.get(s.line) != s.raw for s in extra.students)):
        raise RosterError(f"{opts.roster}: changed while it was being read; run the sync again")
    quiet = frozenset(q.line for q in again)
    return replace(roster, students=roster.students + extra.students,
                   quiet=tuple(q for q in roster.quiet if q.line not in quiet))


def _list_every_student(cfg: Config, view: Future[View]) -> Listing:
    with service_conn(cfg, "sync") as conn:
        return list_csns(conn, Dns(cfg.ldap.base_dn), EVERY_STUDENT, view)


def list_ahead(cfg: Config, opts: SyncOptions, view: Future[View]) -> Future[Listing] | None:
    """For a national roster, the listing of every student's entryCSN starts in a thread
    before the roster is read: slapd serves it on one core while the rules run on the other
    (slapd's work and the network wait leave the interpreter free). Only when the last run of
    this roster covered more than MAX_SCHOOLS_IN_FILTER schools and left a view, so the
    listing will be the one the run needs. ``view``: the view the caller is loading, which
    the listing is compared with as soon as it is there (``state.Listing``); the caller
    must resolve it, or the listing waits for it."""
    if opts.school or opts.roster is None:
        return None
    state_dir = cfg.path(cfg.sync.state_dir)
    last = history.last_run(state_dir, _source_key(str(opts.roster))).schools_of_source
    if not last or len(last) <= MAX_SCHOOLS_IN_FILTER:
        return None
    if not view_path(state_dir, cfg.ldap.base_dn, last).exists():
        return None
    pool = ThreadPoolExecutor(1, thread_name_prefix="mimsdir-listing")
    try:
        return pool.submit(_list_every_student, cfg, view)
    finally:
        pool.shutdown(wait=False)


def make_plan(cfg: Config, opts: SyncOptions, roster: Roster,
              ahead: list[Future[Listing]] | None = None,
              prior: tuple[Path, View] | None = None,
              refuses: Callable[[Plan, int], bool] | None = None
              ) -> tuple[Plan, Callable[[], None]]:
    """The plan, and what saves the view for the next run (``sync/view.py``): called only
    by a run that goes on to apply (a dry run or a refusal leaves the state dir alone).
    ``ahead``: the listing of every student, started by ``list_ahead``, in a list the plan
    empties (half a million entries, not kept past their use); ``prior``: the view
    the roster was read with (``prior_view``), if it is this scope's. ``refuses``: whether
    the guards refuse a plan (given the roster's row count): a plan that would disable many
    students no row names is first made from their view heads, and a refused one is not
    made again in full (reading them back costs a refusal more than the quiet night)."""
    dns = Dns(cfg.ldap.base_dn)
    scope = scope_of(roster, opts.school)
    view_file = view_path(cfg.path(cfg.sync.state_dir), cfg.ldap.base_dn, scope)
    # The view the roster was read with, if it is this scope's: the quiet rows hold its
    # students. Another scope's view leaves every quiet row to be read again.
    view = (prior[1] if prior is not None and prior[0] == view_file
            else load_view(view_file, cfg.ldap.base_dn, STATE_ATTRS))
    quiet_uids = [q.known.uid for q in roster.quiet]
    # The quiet rows' teachers are looked up like every row's: the context compares them.
    quiet_teachers = {q.known.teacher for q in roster.quiet if q.known.teacher}
    with service_conn(cfg, "sync") as conn:
        state = read_state(conn, dns, scope,
                           roster_uids=[*(s.student_id for s in roster.students), *quiet_uids],
                           roster_mails=[s.email for s in roster.students],
                           teacher_mails=[*(s.form_teacher_email for s in roster.students
                                            if s.form_teacher_email), *quiet_teachers],
                           view=view,
                           every_student=(ahead.pop().result() if ahead and len(view)
                                          and len(scope) > MAX_SCHOOLS_IN_FILTER else None))
    context = planning_context(cfg, state)
    if view.context != context:
        # Another form teacher, school group or setting: every row is compared again.
        state = replace(state, quiet={})
    still, again = _still_quiet(roster, state)
    if again:
        roster = _read_again(cfg, opts, roster, again)
    in_scope = set(scope)
    quiet_in_scope = sum(1 for q in still if q.known.school in in_scope)
    now = datetime.now(UTC)
    if refuses is not None and not opts.purge and opts.plan_out is None:
        unread = _unread(state, still, roster)
        if len(unread) > HEADS_FLOOR:
            named = {s.dn for s in unread}
            lean = replace(state, reused=state.reused - len(unread), students={
                k: s for k, s in state.students.items()
                if not (isinstance(s, Remembered) and s.dn in named)})
            heads = plan_sync(roster, _read_in_full(lean, view, still), dns=dns, now=now,
                              school=opts.school, retention_days=cfg.sync.retention_days,
                              posix=cfg.posix, unread=unread)
            if refuses(heads, len(roster.students) + len(roster.quiet)):
                heads.roster = str(opts.roster)
                heads.read_reused, heads.read_fetched = state.reused, state.fetched
                return heads, _nothing
    state = _read_in_full(state, view, still)
    converged: dict[str, str] = {}
    converged_raw: dict[str, tuple[bytes, str | None]] = {}
    plan = plan_sync(roster, state, dns=dns, now=now, school=opts.school,
                     retention_days=cfg.sync.retention_days, purge=opts.purge, posix=cfg.posix,
                     converged=converged, converged_raw=converged_raw)

    def remember() -> None:
        if (state.fetched or len(view) != len(state.students) or view.context != context
                or len(converged) + quiet_in_scope != len(state.quiet) or converged_raw
                or any(state.quiet.get(k) != d for k, d in converged.items())):
            # Only what changed is worth a write: a quiet night (every row quiet, or found
            # converged as the view says, and no new raw cells) leaves the view as it is.
            kept = view.records(s for s in state.students.values()
                                if isinstance(s, Remembered))
            save_view(view_file, cfg.ldap.base_dn, STATE_ATTRS, state.students.values(),
                      converged, context, converged_raw, kept)
        else:
            # Still this roster's: its age says when a run last used it (sync/view.py
            # deletes the views of rosters no longer synced).
            with contextlib.suppress(OSError):
                os.utime(view_file)
    plan.roster = str(opts.roster)
    plan.read_reused, plan.read_fetched = state.reused, state.fetched
    if opts.plan_out is not None:
        # Only a saved plan is checked again (--apply-plan): what it was computed from.
        plan.fingerprint = fingerprint(state)
        plan.lookup_uids = sorted({s.student_id for s in roster.students})
        plan.lookup_mails = sorted({s.email for s in roster.students})
        plan.lookup_teachers = sorted({s.form_teacher_email for s in roster.students
                                       if s.form_teacher_email})
    return plan, remember


#: Bump when the planner compares rows and entries differently: every row is compared again.
PLANNER = 1


def planning_context(cfg: Config, state: DirectoryState) -> str:
    """Everything besides a row and its entry that decides whether they match: the form
    teachers' DNs, the school groups' numbers and the settings the planner reads."""
    h = hashlib.sha256(f"{PLANNER}\0{cfg.ldap.base_dn}\0{cfg.posix!r}".encode())
    for mail in sorted(state.teachers):
        h.update(f"t\0{mail}\0{state.teachers[mail]}\n".encode())
    for name in sorted(state.groups):
        h.update(f"g\0{name}\0{state.groups[name]}\n".encode())
    return h.hexdigest()


def _check_unchanged(cfg: Config, plan: Plan) -> None:
    """--apply-plan: refuse if any entry the plan was computed from changed since."""
    dns = Dns(cfg.ldap.base_dn)
    with service_conn(cfg, "sync") as conn:
        state = read_state(conn, dns, plan.scope, plan.lookup_uids, plan.lookup_mails,
                           plan.lookup_teachers)
    if fingerprint(state) != plan.fingerprint:
        raise RefusedError("the directory changed since this plan was made; nothing was "
                           "written. Make a new plan (mimsdir sync ROSTER --plan-out FILE)")


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector walks every live object whenever allocations outrun frees, and
    a sync allocates hundreds of thousands of rows and entries that all stay alive until the
    plan is made: at 100,000 students it spent 40% of the run there (12.8 s with it, 7.6 s
    without, benchmarks/bench.py). A sync makes no garbage cycles worth a pause; reference
    counting still frees everything else as it goes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(cfg: Config, opts: SyncOptions,
        progress_factory: Callable[[int], Callable[[int], None]] | None = None) -> SyncOutcome:
    with _no_cyclic_gc():
        return _run(cfg, opts, progress_factory)


def _nothing() -> None:
    pass


def _run(cfg: Config, opts: SyncOptions,
         progress_factory: Callable[[int], Callable[[int], None]] | None) -> SyncOutcome:
    started = _now()
    # A consumer never runs the sync: it would hand out numbers from no provider's pool.
    refuse_on_consumer(cfg, "the roster sync")
    slips_dir = opts.slips_dir or cfg.path(cfg.sync.slips_dir)
    state_dir = cfg.path(cfg.sync.state_dir)
    if opts.apply_plan is None and opts.roster is None:
        raise UsageError("give a ROSTER file, or --apply-plan FILE")

    def _plan() -> tuple[Plan, int, str, Callable[[], None]]:
        if opts.apply_plan is not None:
            try:
                data = json.loads(opts.apply_plan.read_text(encoding="utf-8"))
                plan = Plan.from_json(data)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"{opts.apply_plan}: not a readable plan ({exc})") from None
            return plan, sum(plan.rows_by_school.values()), plan.roster, _nothing
        loaded: Future[View] = Future()
        listing = list_ahead(cfg, opts, loaded)
        ahead = [listing] if listing is not None else None
        del listing
        prior: tuple[Path, View] | None = None
        try:
            prior = prior_view(cfg, opts)
        finally:  # the listing thread waits for it: never left unresolved
            loaded.set_result(prior[1] if prior is not None else View())
        # Every row's raw digest is taken (an empty ``known``) so the next night can use them.
        known = (None if not raw_rows_apply(opts)
                 else prior[1].known() if prior is not None else {})
        roster = _read(cfg, opts, known=known)
        del known  # the reader's index of the view: not needed past the roster

        def refuses(plan: Plan, rows: int) -> bool:
            return not opts.force and bool(_guards(cfg, opts, plan, rows, state_dir,
                                                   str(opts.roster)))

        plan, remember = make_plan(cfg, opts, roster, ahead, prior, refuses)
        return plan, len(roster.students) + len(roster.quiet), str(opts.roster), remember

    if opts.dry_run:
        plan, rows, source, _ = _plan()
        refused = _guards(cfg, opts, plan, rows, state_dir, source)
        _save_plan(plan, opts.plan_out)
        code = ExitCode.REFUSED if refused and not opts.force else (
            ExitCode.ROW_ERRORS if plan.row_errors else ExitCode.OK)
        return SyncOutcome(plan, code, refused=refused, started=started, finished=_now(),
                           forced=opts.force, dry_run=True)

    with run_lock(state_dir):
        plan, rows, source, remember = _plan()
        refused = _guards(cfg, opts, plan, rows, state_dir, source)
        _save_plan(plan, opts.plan_out)
        if refused and not opts.force:
            return SyncOutcome(plan, ExitCode.REFUSED, refused=refused, started=started,
                               finished=_now())
        if opts.apply_plan is not None:
            _check_unchanged(cfg, plan)
        remember()
        progress = progress_factory(operations(plan)) if progress_factory else None
        try:
            applied = apply_plan(
                plan, lambda: service_conn(cfg, "sync"), slips_dir=slips_dir,
                window=cfg.sync.window, retries=cfg.sync.retries,
                password_length=cfg.credentials.default_password_length, progress=progress,
                pools=Pools(Dns(cfg.ldap.base_dn), cfg.posix.uid_min, cfg.posix.gid_min),
            )
        except DirectoryUnavailable as exc:
            exc.outcome = SyncOutcome(  # type: ignore[attr-defined]
                plan, ExitCode.DIRECTORY, refused=refused,
                applied=getattr(exc, "partial", None), started=started, finished=_now(),
                forced=opts.force and bool(refused), interrupted=str(exc))
            raise
        history.record_success(state_dir, _source_key(source), plan.rows_by_school)
    code = ExitCode.ROW_ERRORS if (plan.row_errors or applied.failures) else ExitCode.OK
    return SyncOutcome(plan, code, refused=refused, applied=applied, started=started,
                       finished=_now(), forced=opts.force and bool(refused))


def _guards(cfg: Config, opts: SyncOptions, plan: Plan, rows: int, state_dir: Path,
            source: str) -> list[str]:
    return guards.check(
        plan,
        max_disable=opts.max_disable or cfg.sync.max_disable,
        max_shrink=cfg.sync.max_shrink,
        last=history.last_run(state_dir, _source_key(source)),
        school=opts.school,
        student_rows=rows,
    )


def _save_plan(plan: Plan, path: Path | None) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan.to_json(), indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _source_key(source: str) -> str:
    """The roster's absolute path: the same cron job's file, whatever the cwd."""
    return str(Path(source).resolve()) if source else ""
