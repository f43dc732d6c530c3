"""What the last successful run saw (row counts per school, schools per roster file), kept in
``sync.state_dir`` for the shrink and missing-school guards."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mimsdir.sync.guards import LastRun

FILE = "last-run.json"


def _load(state_dir: Path) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads((state_dir / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def last_run(state_dir: Path, source: str) -> LastRun:
    data = _load(state_dir)
    rows = {k: int(v["rows"]) for k, v in data.get("schools", {}).items()}
    src = data.get("sources", {}).get(source)
    return LastRun(rows_by_school=rows,
                   schools_of_source=tuple(src["schools"]) if src else None)


def record_success(state_dir: Path, source: str, rows_by_school: dict[str, int]) -> None:
    """Atomically remember this run (temp file, fsync, rename)."""
    data = _load(state_dir)
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    schools = data.setdefault("schools", {})
    for code, rows in rows_by_school.items():
        schools[code] = {"rows": rows, "at": now}
    data.setdefault("sources", {})[source] = {"schools": sorted(rows_by_school), "at": now}
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = state_dir / (FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, state_dir / FILE)
