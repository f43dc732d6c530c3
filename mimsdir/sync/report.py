"""The human summary of a sync run, for stderr and cron mail (the JSON report is
``SyncOutcome.report()``)."""

from __future__ import annotations

from mimsdir.sync.model import KINDS
from mimsdir.sync.run import SyncOutcome

LABELS = {"create": "created", "update": "updated", "promote": "promoted (level change)",
          "move": "moved (class or school)", "disable": "disabled (left the roster)",
          "reenable": "re-enabled (came back)", "purge": "purged", "reissue":
          "credentials re-issued", "backfill": "back-filled (posix attributes)",
          "group": "school groups added (posix)", "unchanged": "unchanged"}
MAX_LINES = 50


def summary(o: SyncOutcome) -> str:
    p = o.plan
    head = "sync dry run" if o.dry_run else "sync"
    lines = [f"{head}: {p.roster or '(saved plan)'} ({p.fmt}{', delta' if p.is_delta else ''}),"
             f" scope {', '.join(p.scope) or '-'}, {p.scope_active} active before"]
    if o.refused:
        verb = "overridden by --force" if o.forced else "REFUSED, nothing written"
        lines.append(f"safety limits: {verb}:")
        lines += [f"  - {r}" for r in o.refused]
    counts = p.counts()
    applied = o.applied.done if o.applied else None
    lines.append("planned" if applied is None else "planned -> applied")
    for kind in (*KINDS, "unchanged"):
        n = counts.get(kind, 0)
        if not n:
            continue
        done = "" if applied is None or kind == "unchanged" else f" -> {applied.get(kind, 0)}"
        lines.append(f"  {LABELS[kind]:30} {n}{done}")
    by_school = p.counts_by_school()
    if len(by_school) > 1:
        lines.append("per school:")
        for school, c in sorted(by_school.items()):
            parts = ", ".join(f"{k} {v}" for k, v in c.items() if v)
            lines.append(f"  {school}: {parts}")
    if p.protected:
        lines.append(f"kept active because their roster row had errors: {len(p.protected)}")
    _listed(lines, "row errors (skipped rows)", p.row_errors)
    if o.applied:
        _listed(lines, "write failures", o.applied.failures)
        if o.applied.slips:
            lines.append(f"slips written ({o.applied.credentials_issued} new passwords):")
            lines += [f"  {s}" for s in o.applied.slips]
        if o.applied.reconnects:
            lines.append(f"reconnected to the directory {o.applied.reconnects} time(s)")
    _listed(lines, "warnings", p.warnings)
    if o.interrupted:
        lines.append(f"INTERRUPTED: {o.interrupted}")
    lines.append(f"exit {int(o.exit_code)}")
    return "\n".join(lines)


def _listed(lines: list[str], title: str, items: list[str]) -> None:
    if not items:
        return
    lines.append(f"{title}: {len(items)}")
    lines += [f"  {i}" for i in items[:MAX_LINES]]
    if len(items) > MAX_LINES:
        lines.append(f"  ... {len(items) - MAX_LINES} more in the --report file")
