"""Applying a plan: roster writes, then credentials, then slips, then the pending flags.

Order of the credential steps, and why (a run can be killed between any two):
1. A new student is added with ``mimsCredentialPending: TRUE`` and no password.
2. A default password is set (Password Modify, so slapd hashes it and sets ``pwdReset``).
3. The slips carrying the passwords are written and fsynced (one PDF per school and class).
4. Only then is ``mimsCredentialPending`` cleared.
A run killed before step 4 leaves the flag set; the next run plans a ``reissue`` for that
student: a new password on a new slip. No account ends with a password nobody knows.

Why the password is not sent with the add (one write fewer): a killed run's last adds can
still land after the next run has read the directory, which then plans the same creates
again. Its add meets the entry already there and is taken as done when the entry is the one
it would write (``ldapio._already_done``), and its Password Modify then sets the password its
slip carries. With the password in the add, the entry there holds the killed run's hash,
which the new add can neither match nor replace: tried on 2026-12-02, the kill test failed
("the entry changed meanwhile"), and at 10,000 the saving was inside the VM's noise.

Steps 2 and 3 overlap: the passwords go to slapd class by class, and as soon as slapd has
answered for every student of a class, that class's slips are laid out in a thread of their own
(``_SlipRenderer``) while slapd hashes the next classes' passwords. The PDFs are written (step
3) only after the last password, in the same order and under the same names as before, and the
flags are cleared (step 4) only after every slip is on disk.

Before step 1, the numbers the plan waits for are reserved (mimsdir/directory/idpool.py): the
school groups it adds are added, each with a new gidNumber, and one reservation takes the
uidNumbers of every new or back-filled student. A run killed after that leaves the reserved
numbers unused: they are never handed out again (burnt, like a purged student's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import ldap

from mimsdir.directory.idpool import UID, Group, Pools, ensure_groups, reserve
from mimsdir.errors import DirectoryUnavailable, MimsError
from mimsdir.ldapio import Conn, Op, Pipeline
from mimsdir.sync.model import CREATE, GROUP, PURGE, REISSUE, Change, Plan
from mimsdir.sync.plan import assign_numbers, numbers_needed
from mimsdir.wordlist import generate_default_password

if TYPE_CHECKING:
    from mimsdir.pdfs import FontSet, SlipData


@dataclass
class ApplyResult:
    done: dict[str, int] = field(default_factory=dict)      # kind -> count applied
    failures: list[str] = field(default_factory=list)       # one line per failed student
    slips: list[str] = field(default_factory=list)          # slip files written
    credentials_issued: int = 0
    reconnects: int = 0


def modlist(c: Change) -> list[tuple[int, str, list[bytes]]]:
    """MOD_REPLACE for every attribute (an empty list deletes): idempotent, so a write resent
    after a dropped connection does no harm. A class (posixAccount) is added, first; a resent
    modify that finds it there already landed (``ldapio._already_done``)."""
    return [(ldap.MOD_ADD, a.attr, [a.new.encode()]) if a.attr == "objectClass" and a.new
            else (ldap.MOD_REPLACE, a.attr, [a.new.encode()] if a.new is not None else [])
            for a in sorted(c.attrs, key=lambda a: a.attr != "objectClass")]


def add_attrs(c: Change) -> dict[str, list[bytes]]:
    attrs: dict[str, list[bytes]] = {"objectClass": [b"inetOrgPerson", b"mimsStudent"],
                                     "uid": [c.uid.encode()]}
    for a in c.attrs:
        if a.attr == "objectClass" and a.new:
            attrs["objectClass"].append(a.new.encode())
        elif a.new is not None:
            attrs[a.attr] = [a.new.encode()]
    return attrs


def reserve_numbers(plan: Plan, conn: Conn, pools: Pools) -> Plan:
    """Add the groups the plan adds and reserve the uidNumbers it waits for, then return the
    plan with every placeholder replaced by a number (``plan.assign_numbers``)."""
    uid_count, groups = numbers_needed(plan)
    if not uid_count and not groups:
        return plan
    gids = ensure_groups(conn, pools, [Group(c.uid, c.name) for c in groups])
    uids = reserve(conn, pools, UID, uid_count)
    return assign_numbers(plan, uids, gids)


def _slip_name(school: str, class_name: str, stamp: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", class_name).strip("_") or "no-class"
    return f"{school}-{safe}-{stamp}.pdf"


class _SlipRenderer:
    """Lays out slips in one thread of its own, one class after another, while the main thread
    feeds slapd the next classes' passwords.

    Why a thread and not a process: the main thread only waits for slapd (python-ldap lets go
    of the GIL while it waits), so the slips get most of a core; slapd's hashing, the work that
    needs the other cores, is in slapd's own process anyway. A thread copies no heap (a
    process forked from a sync of 500,000 students would), hands no password through a pipe,
    cannot outlive a killed sync, and raises its errors where they are awaited (``result``):
    a failed class fails the run before any flag is cleared, as an inline render did.

    The first task cuts the fonts down to the run's texts (``pdfs.FontSet``), overlapping the
    first class's passwords; the fonts are removed by ``close``.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slips")
        self._fonts: Future[FontSet] = self._pool.submit(self._prepare, list(texts))

    @staticmethod
    def _prepare(texts: list[str]) -> FontSet:
        from mimsdir import pdfs

        return pdfs.FontSet(texts)

    def _render(self, slips: list[SlipData]) -> bytes:
        from mimsdir import pdfs  # looked up at run time: the tests stand in for render_slips

        return pdfs.render_slips(slips, fonts=self._fonts.result())

    def submit(self, slips: list[SlipData]) -> Future[bytes]:
        """Queue one PDF's slips; the PDF (or the error) comes from the future's result()."""
        return self._pool.submit(self._render, slips)

    def close(self) -> None:
        """Wait for the slips being laid out (queued ones are dropped), remove the fonts."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        fonts = self._fonts
        if fonts.done() and not fonts.cancelled() and fonts.exception() is None:
            fonts.result().close()


def apply_plan(plan: Plan, connect: Callable[[], Conn], *, slips_dir: Path, school_names:
               dict[str, str] | None = None, window: int = 32, retries: int = 4,
               password_length: int = 9, progress: Callable[[int], None] | None = None,
               sleep: Callable[[float], None] | None = None,
               pools: Pools | None = None) -> ApplyResult:
    # fpdf2 (mimsdir.pdfs) takes a fifth of a second and 11 MiB to import: only the slips'
    # thread imports it, so a quiet night never does.
    from mimsdir.secret_docs import SlipData, write_secret_file

    result = ApplyResult()
    uid_count, new_groups = numbers_needed(plan)
    if uid_count or new_groups:
        if pools is None:
            raise ValueError("this plan needs uid/gid numbers: pass the id pools")
        with connect() as conn:
            plan = reserve_numbers(plan, conn, pools)
        if new_groups:
            result.done[GROUP] = len(new_groups)
            if progress:
                progress(len(new_groups))
    by_key: dict[tuple[str, str], Change] = {}
    failed: set[str] = set()
    # Step 2-3 book-keeping: the class of each student given a password, how many of a
    # class's passwords slapd has yet to answer, and the class's slips being laid out.
    class_of: dict[str, tuple[str, str]] = {}
    awaited: dict[tuple[str, str], int] = {}
    on_class_done: list[Callable[[tuple[str, str]], None]] = []

    def done(op: Op, err: MimsError | None) -> None:
        if progress:
            progress(1)
        if op.tag == "password":
            key = class_of[op.key]
            awaited[key] -= 1
            if err is not None:
                failed.add(op.key)
            if not awaited[key]:
                on_class_done[0](key)
        change = by_key.get((op.key, op.tag))
        if err is None:
            if change is not None:
                result.done[change.kind] = result.done.get(change.kind, 0) + 1
            return
        failed.add(op.key)
        where = f" (roster line {change.line})" if change is not None and change.line else ""
        result.failures.append(f"{op.key}{where}: {err}")

    pipe = Pipeline(connect, window=window, retries=retries, on_done=done, sleep=sleep)
    renderer: _SlipRenderer | None = None
    try:
        # 1. Roster writes.
        for c in plan.changes:
            if c.kind in (REISSUE, GROUP):  # groups: added with their numbers, above
                continue
            by_key[(c.uid, c.kind)] = c
            if c.kind == CREATE:
                pipe.submit(Op(c.uid, "add", c.dn, add_attrs(c), tag=c.kind))
            elif c.kind == PURGE:
                pipe.submit(Op(c.uid, "delete", c.dn, tag=c.kind))
            else:
                pipe.submit(Op(c.uid, "modify", c.dn, modlist(c), tag=c.kind))
        pipe.flush()

        # 2. Passwords for new students and for credentials left pending by a killed run,
        # class by class (one PDF per school and class); a class whose passwords slapd has
        # all answered is laid out (3, in memory) while slapd hashes the next classes'.
        targets = [c for c in plan.changes
                   if (c.kind == CREATE and c.uid not in failed) or c.kind == REISSUE]
        groups: dict[tuple[str, str], list[Change]] = {}
        for c in targets:
            groups.setdefault((c.school, c.class_name), []).append(c)
        passwords: dict[str, str] = {}
        pdfs: dict[tuple[str, str], Future[bytes]] = {}
        if targets:
            renderer = _SlipRenderer([v for c in targets for v in (
                c.name, c.class_name, c.mail, (school_names or {}).get(c.school, c.school))])

        def lay_out(key: tuple[str, str]) -> None:
            school, class_name = key
            members = [c for c in groups[key] if c.uid not in failed]
            if not members or renderer is None:
                return
            slips = [SlipData(name=c.name, display_name="", class_name=class_name,
                              login_id=c.mail, password=passwords[c.uid],
                              school=(school_names or {}).get(school, school))
                     for c in sorted(members, key=lambda m: m.name.lower())]
            pdfs[key] = renderer.submit(slips)

        on_class_done.append(lay_out)
        for key, members in sorted(groups.items()):
            awaited[key] = len(members)
            for c in members:
                pw = generate_default_password(password_length)
                passwords[c.uid] = pw
                class_of[c.uid] = key
                if c.kind == REISSUE:
                    by_key[(c.uid, REISSUE)] = c
                pipe.submit(Op(c.uid, "passwd", c.dn, pw, tag="password"))
        pipe.flush()
        issued = [c for c in targets if c.uid not in failed]

        # 3. Slips, durably, one PDF per school and class, in the order of their names.
        # Microseconds: two runs in one second must never overwrite each other's slips.
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        for (school, class_name), rendered in sorted(pdfs.items()):
            try:
                data = rendered.result()  # the thread's error, if any, is raised here
            except Exception as exc:
                exc.add_note(f"laying out the slips of school {school}, class {class_name}: "
                             "no credential of this run is cleared; the next run issues new "
                             "ones")
                raise
            folder = slips_dir / school
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / _slip_name(school, class_name, stamp)
            if path.exists():  # the same microsecond twice: keep both slips
                path = path.with_name(f"{path.stem}-{os.getpid()}.pdf")
            write_secret_file(path, data)
            result.slips.append(str(path))
        passwords.clear()

        # 4. The slips exist: the credentials are no longer pending.
        for c in issued:
            pipe.submit(Op(c.uid, "modify", c.dn, [
                (ldap.MOD_REPLACE, "pwdReset", [b"TRUE"]),
                (ldap.MOD_REPLACE, "mimsCredentialPending", []),
            ], tag="slip-written"))
        pipe.flush()
        result.credentials_issued = len([c for c in issued if c.uid not in failed])
        result.done[REISSUE] = len([c for c in issued if c.kind == REISSUE
                                    and c.uid not in failed])
    except DirectoryUnavailable as exc:
        # What was done before the directory went away, for the report (exit 4).
        exc.partial = result  # type: ignore[attr-defined]
        raise
    finally:
        if renderer is not None:
            renderer.close()
        result.reconnects = pipe.reconnects
        pipe.close()
    return result


def operations(plan: Plan) -> int:
    """How many writes a plan takes, for a progress bar."""
    creates = plan.count(CREATE)
    reissues = plan.count(REISSUE)
    return (len(plan.changes) - reissues) + 2 * (creates + reissues)
