"""Who did what and when: slapd's accesslog merged with the CLI's operator log.

The accesslog (``cn=accesslog``, readable only by the host's root) records every write with
the directory identity that made it (``reqAuthzID``). The operator log (``operator_log``)
records which OS user ran which staff command, when, as which directory identity. Merging
them by time puts a person next to each write: a write whose actor and time fall inside a
logged command run is attributed to that run's user.

What is shown of a write: operation, target DN, actor DN, and the NAMES of the attributes
it touched: never values (``reqMod`` holds password and answer hashes, and names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ldap

from mimsdir.errors import UsageError
from mimsdir.gtime import format_gtime, parse_gtime
from mimsdir.ldapio import Attrs, Conn, escape_filter, first
from mimsdir.operator_log import OperatorRecord

ACCESSLOG_BASE = "cn=accesslog"

#: Bookkeeping attributes slapd adds to every write: noise in an audit.
IGNORED_ATTRS = frozenset(a.lower() for a in (
    "entryCSN", "modifiersName", "modifyTimestamp", "creatorsName", "createTimestamp",
    "entryUUID", "structuralObjectClass", "entryDN", "subschemaSubentry", "hasSubordinates",
))

_AGE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w``; or a date ``2026-11-01`` (local midnight); or a local
    date and time ``2026-11-01T08:00`` (an explicit offset is honoured).

    >>> from datetime import datetime, UTC
    >>> parse_since("7d", datetime(2026, 11, 8, tzinfo=UTC)).isoformat()
    '2026-11-01T00:00:00+00:00'
    """
    raw = text.strip()
    m = _AGE.match(raw.lower())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"--since: expected a date like 2026-11-01 or an age like 7d, "
                         f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time is the server's local time
    return when.astimezone(UTC)


def reqmod_attribute(value: bytes) -> str:
    """The attribute name of one ``reqMod`` value (``mimsClass:= 4A`` -> ``mimsClass``);
    the value after the colon is never decoded."""
    name = value.split(b":", 1)[0]
    return name.decode("ascii", "replace").strip()


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit: a directory write or a command run."""

    time: datetime
    source: str  # "directory" or "operator"
    operation: str  # add, modify, delete, modrdn, extended...; "command" for a run
    target: str  # a DN, or the command line
    actor: str  # the directory identity (DN)
    operator: str | None = None  # the OS user, when known
    attributes: tuple[str, ...] = ()
    exit: int | None = None
    command: str | None = None  # for a write: the command run it belongs to

    def to_json(self) -> dict[str, object]:
        return {
            "time": self.time.astimezone().isoformat(),
            "source": self.source,
            "operation": self.operation,
            "target": self.target,
            "actor": self.actor,
            "operator": self.operator,
            "attributes": list(self.attributes),
            "exit": self.exit,
            "command": self.command,
        }


def accesslog_filter(since: datetime, target_dn: str | None = None,
                     actor_dn: str | None = None) -> str:
    parts = [f"(reqStart>={format_gtime(since)})", "(reqType=*)"]
    if target_dn:
        parts.append(f"(reqDN={escape_filter(target_dn)})")
    if actor_dn:
        parts.append(f"(reqAuthzID={escape_filter(actor_dn)})")
    return "(&" + "".join(parts) + ")"


def parse_accesslog(attrs: Attrs) -> AuditEvent | None:
    """An accesslog entry as an event (attribute names only); None if it has no time."""
    when = parse_gtime(first(attrs, "reqStart"))
    if when is None:
        return None
    names: list[str] = []
    for key, vals in attrs.items():
        if key.lower() != "reqmod":
            continue
        for v in vals:
            name = reqmod_attribute(v)
            if name and name.lower() not in IGNORED_ATTRS and name not in names:
                names.append(name)
    op = (first(attrs, "reqType") or "?").lower()
    if op == "extended":
        names = names or [first(attrs, "reqMethod") or ""]
    return AuditEvent(
        time=when, source="directory", operation=op,
        target=first(attrs, "reqDN") or "", actor=first(attrs, "reqAuthzID") or "",
        attributes=tuple(n for n in names if n),
    )


def fetch_accesslog(conn: Conn, filterstr: str) -> Iterator[AuditEvent]:
    """The matching accesslog entries; ``conn`` must be the host's root (root_conn)."""
    for _dn, attrs in conn.search_paged(
            ACCESSLOG_BASE, ldap.SCOPE_ONELEVEL, filterstr,
            ["reqStart", "reqType", "reqDN", "reqAuthzID", "reqMod", "reqMethod"],
            "reading the audit log (cn=accesslog)"):
        event = parse_accesslog(attrs)
        if event is not None:
            yield event


def operator_event(record: OperatorRecord) -> AuditEvent:
    line = " ".join(["mimsdir", record.command, *record.args]).strip()
    return AuditEvent(time=record.time, source="operator", operation="command", target=line,
                      actor=record.as_dn or "", operator=record.user, exit=record.exit,
                      command=record.command)


def record_mentions(record: OperatorRecord, needles: Iterable[str]) -> bool:
    wanted = {n.casefold() for n in needles if n}
    return any(a.casefold() in wanted for a in record.args)


@dataclass
class AuditQuery:
    since: datetime
    target_dn: str | None = None
    student_names: tuple[str, ...] = ()  # uid and login ID, to find command runs naming them
    actor: str | None = None  # a DN, or an OS user for command runs


#: Commands that never write: a directory write is never attributed to them.
READ_ONLY_COMMANDS = frozenset({"student show", "student find", "report", "audit"})


def merge(directory_events: Iterable[AuditEvent], records: Iterable[OperatorRecord],
          query: AuditQuery) -> list[AuditEvent]:
    """Both sources in time order; each write made during a command run by the same
    directory identity is attributed to that run's OS user and command."""
    runs = [r for r in records if r.end >= query.since]
    writers = [r for r in runs if r.command not in READ_ONLY_COMMANDS
               and "--dry-run" not in r.args]
    events: list[AuditEvent] = []
    for ev in directory_events:
        candidates = runs_for(ev, writers)
        if candidates:
            users = list(dict.fromkeys(r.user for r in candidates))
            commands = list(dict.fromkeys(r.command for r in candidates))
            ev = AuditEvent(ev.time, ev.source, ev.operation, ev.target, ev.actor,
                            operator=" or ".join(users), attributes=ev.attributes,
                            command=" or ".join(commands))
        events.append(ev)
    actor = (query.actor or "").casefold()
    for r in runs:
        if query.student_names and not record_mentions(r, query.student_names):
            continue
        if actor and actor not in ((r.as_dn or "").casefold(), r.user.casefold()):
            continue
        events.append(operator_event(r))
    events.sort(key=lambda e: (e.time, 0 if e.source == "operator" else 1))
    return events


def runs_for(ev: AuditEvent, runs: list[OperatorRecord]) -> list[OperatorRecord]:
    """The logged command runs this write may belong to: same directory identity, and the
    write's second within the run's start and end. reqStart's sub-second part is a counter,
    not a clock, so two runs in the same second are both candidates (shown as "a or b")."""
    found = []
    for r in runs:
        if not r.as_dn or r.as_dn.casefold() != ev.actor.casefold():
            continue
        if r.time.replace(microsecond=0) <= ev.time and ev.time.replace(microsecond=0) <= r.end:
            found.append(r)
    if len(found) > 1:
        # a run that named the target (reset-password S123) beats one over a whole class
        rdn_value = ev.target.split(",", 1)[0].partition("=")[2]
        named = [r for r in found if record_mentions(r, [rdn_value])]
        found = named or found
    return found


def short_dn(dn: str, base: str) -> str:
    """A DN without the base suffix, for tables."""
    if dn.lower().endswith("," + base.lower()):
        return dn[: -len(base) - 1]
    return dn


def render_table(events: list[AuditEvent], base: str) -> str:
    if not events:
        return "no audit records in scope\n"
    rows = [["time", "operator", "actor", "operation", "target", "attributes / exit"]]
    for ev in events:
        if ev.source == "operator":
            detail = f"exit {ev.exit}" if ev.exit is not None else "exit ?"
        else:
            detail = ", ".join(ev.attributes)
        rows.append([
            ev.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            ev.operator or "-",
            short_dn(ev.actor, base) or "-",
            ev.operation,
            short_dn(ev.target, base) if ev.source == "directory" else ev.target,
            detail,
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join([*(r[i].ljust(widths[i]) for i in range(5)), r[5]]).rstrip()
             for r in rows]
    return "\n".join(lines) + "\n"
