"""Slips laid out in a thread while slapd hashes the next classes' passwords (issue 11): the
overlap really happens, the PDFs are the same ones in the same order, and an error in the
thread fails the run before any credential is cleared, with no fonts left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

import mimsdir.pdfs
from mimsdir.ldapio import Op, Pipeline
from mimsdir.sync import apply
from tests.sync_helpers import row, run_sync, school_entries, school_fixture, write_roster

school = school_fixture("L")


@pytest.fixture
def fonts_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the run's cut-down fonts go (tempfile's directory), to see them removed."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def two_classes(school: str, size: int) -> list[dict]:
    # More students a class than the pipeline's window (32): the first class is all answered
    # while the second's passwords are still being sent.
    return [row(school, i, level=level, class_name=f"{level[1]}A")
            for level, start in (("P4", 1), ("P5", 1 + size)) for i in range(start, start + size)]


def test_a_class_is_laid_out_while_the_next_class_gets_its_passwords(
        slapd, school, tmp_path, fonts_tmp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events: list[tuple[str, str]] = []
    submit, lay_out = Pipeline.submit, apply._SlipRenderer.submit

    def password(self: Pipeline, op: Op) -> None:
        if op.tag == "password":
            events.append(("password", op.key))
        submit(self, op)

    def slips(self: Any, items: list[mimsdir.pdfs.SlipData]) -> Any:
        events.append(("slips", items[0].class_name))
        return lay_out(self, items)

    monkeypatch.setattr(Pipeline, "submit", password)
    monkeypatch.setattr(apply._SlipRenderer, "submit", slips)
    rows = two_classes(school, 40)
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path)
    assert r.code == 0, r.result.output

    kinds = [kind for kind, _ in events]
    last_password = len(kinds) - 1 - kinds[::-1].index("password")
    assert events.index(("slips", "4A")) < last_password, "no overlap: 4A waited for 5A"
    assert [e for e in events if e[0] == "slips"] == [("slips", "4A"), ("slips", "5A")]
    # One PDF a class, in the order of the classes, each with its own class's students.
    assert [Path(p).name.split("-")[1] for p in r.report["slips"]] == ["4A", "5A"]
    for path, level in zip(r.report["slips"], ("P4", "P5"), strict=True):
        text = "".join(page.extract_text() for page in PdfReader(path).pages)
        mine = [x for x in rows if x["level"] == level]
        assert all(x["email"] in text for x in mine)
        assert not any(x["email"] in text for x in rows if x not in mine)
    assert all("mimsCredentialPending" not in e for e in school_entries(slapd, school).values())
    assert list(fonts_tmp.iterdir()) == []  # the cut-down fonts are gone


def test_an_error_laying_out_a_class_fails_the_run_with_every_credential_pending(
        slapd, school, tmp_path, fonts_tmp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = mimsdir.pdfs.render_slips

    def fails_for_5a(slips: list[mimsdir.pdfs.SlipData], *a: Any, **kw: Any) -> bytes:
        if slips[0].class_name == "5A":
            raise ValueError("the printer's font is on fire")
        return real(slips, *a, **kw)

    monkeypatch.setattr(mimsdir.pdfs, "render_slips", fails_for_5a)
    rows = two_classes(school, 3)
    r = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path)
    assert r.code != 0
    exc = r.result.exception
    assert isinstance(exc, ValueError) and "font is on fire" in str(exc)
    assert any("class 5A" in note and "next run" in note for note in exc.__notes__)
    entries = school_entries(slapd, school)
    assert len(entries) == 6
    # 4A's PDF may be on disk, but no flag is cleared before every class's slips are.
    assert all(e.get("mimsCredentialPending") == ["TRUE"] for e in entries.values())
    assert list(fonts_tmp.iterdir()) == []

    monkeypatch.undo()
    again = run_sync(slapd, write_roster(tmp_path / "r.csv", rows), tmp=tmp_path)
    assert again.code == 0, again.result.output
    assert again.report["applied"]["reissue"] == 6
    assert all("mimsCredentialPending" not in e for e in school_entries(slapd, school).values())
