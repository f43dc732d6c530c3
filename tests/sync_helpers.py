"""Helpers for the sync tests: rosters written on the fly, the CLI run against the session's
slapd, the directory read back."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap
from click.testing import CliRunner, Result

from mimsdir.cli import main
from mimsdir.config import Config
from mimsdir.directory.server import root_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import first
from mimsdir.roster.native import COLUMNS as NATIVE_COLUMNS

COLUMNS = tuple(NATIVE_COLUMNS)


def row(school: str, n: int, level: str = "P4", class_name: str = "4A", **kw: str) -> dict:
    sid = f"{school}{n:03d}"
    base = {"student_id": sid, "email": f"{sid.lower()}@students.test.sg",
            "given_name": f"Kid{n}", "family_name": "Tan", "school_code": school,
            "level": level, "class": class_name, "form_teacher_email": "", "status": ""}
    base.update(kw)
    return base


def school_rows(school: str, n: int, start: int = 1) -> list[dict]:
    levels = ("P2", "P3", "P4", "P5", "P6")
    return [row(school, i, level=levels[i % 5], class_name=f"{levels[i % 5][1]}A")
            for i in range(start, start + n)]


def write_roster(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


@dataclass
class SyncRun:
    result: Result
    report: dict

    @property
    def code(self) -> int:
        return self.result.exit_code


def run_sync(cfg: Config, roster: Path | None, *args: str, tmp: Path) -> SyncRun:
    report = tmp / f"report-{len(list(tmp.glob('report-*.json')))}.json"
    argv = ["--config", str(Path(cfg.base_path) / "config.yaml"), "sync"]
    if roster is not None:
        argv.append(str(roster))
    argv += ["--report", str(report), "--slips-dir", str(tmp / "slips"), *args]
    res = CliRunner().invoke(main, argv)
    data = json.loads(report.read_text()) if report.exists() else {}
    return SyncRun(res, data)


def school_entries(cfg: Config, school: str) -> dict[str, dict[str, list[str]]]:
    dns = Dns(cfg.ldap.base_dn)
    with root_conn(cfg) as c:
        res = c.search(dns.students, ldap.SCOPE_ONELEVEL, f"(mimsSchoolCode={school})",
                       ["*", "+"], "reading a school")
    return {first(a, "uid") or dn: {k: [v.decode("utf-8", "replace") for v in vs]
                                    for k, vs in a.items()} for dn, a in res}


def delete_school(cfg: Config, school: str) -> None:
    """The school's students and its posix group (their numbers stay burnt)."""
    from mimsdir.errors import NotFound
    from mimsdir.posix import school_group

    dns = Dns(cfg.ldap.base_dn)
    with root_conn(cfg) as c:
        for dn, _ in c.search(dns.students, ldap.SCOPE_ONELEVEL, f"(mimsSchoolCode={school})",
                              ["1.1"], "cleanup"):
            c.delete(dn, "cleanup")
        with contextlib.suppress(NotFound):
            c.delete(dns.posix_group(school_group(school)), "cleanup")


def school_fixture(prefix: str) -> Any:
    """A fixture giving a test a school of its own (a fresh code starting with ``prefix``),
    deleted with its students afterwards."""
    import uuid

    import pytest

    @pytest.fixture
    def school(slapd: Config) -> Iterator[str]:
        code = prefix + uuid.uuid4().hex[:7].upper()
        yield code
        delete_school(slapd, code)

    return school
