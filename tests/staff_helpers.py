"""Shared helpers for the ICT staff CLI tests (tests/test_staff_*.py, tests/test_cli_staff_*.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from pypdf import PdfReader

from mimsdir.challenge import DEFAULT_QUESTIONS
from mimsdir.cli import main
from mimsdir.config import Config
from mimsdir.connect import network_conn
from mimsdir.ldapio import BindOutcome
from tests.conftest import Factory, Person


def config_path(cfg: Config) -> Path:
    """The session directory's config file (written by the `slapd` fixture)."""
    return Path(cfg.base_path) / "config.yaml"


def run(cfg_file: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``mimsdir --config FILE ARGS`` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(main, ["--config", str(cfg_file), *args], env=env,
                              catch_exceptions=False)


def admin_config(tmp_path: Path, cfg: Config, dn: str, password: str) -> Path:
    """A second config that acts as ``dn`` (ldap.admin_dn), its password in a 0600 file."""
    data = yaml.safe_load(config_path(cfg).read_text(encoding="utf-8"))
    pw_file = tmp_path / "admin.pw"
    pw_file.write_text(password + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    data["ldap"]["admin_dn"] = dn
    data["ldap"]["admin_password_file"] = str(pw_file)
    # the same server, so the same operator log as the session's config
    data["cli"] = {"operator_log": str(cfg.path(cfg.cli.operator_log).resolve())}
    path = tmp_path / "admin-config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def bind(cfg: Config, dn: str, password: str) -> BindOutcome:
    c = network_conn(cfg, timeout=5)
    try:
        return c.bind_ppolicy(dn, password)
    finally:
        c.close()


def make_class(make: Factory, n: int, level: str, class_name: str, **kw: object
               ) -> list[Person]:
    return [make.student(level=level, class_name=class_name, **kw)  # type: ignore[arg-type]
            for _ in range(n)]


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


_QUESTION_TEXT = {q.text: q.id for q in DEFAULT_QUESTIONS}


def card_chunks(path: Path, title: str = "My MIMS card") -> Iterator[str]:
    """The text of each card, in order (cards are drawn one after another)."""
    for text in pdf_pages(path):
        yield from text.split(title)[1:]


def card_answers(chunk: str) -> dict[str, str]:
    """question id -> the answer printed under it, from one card's text (a long question may
    wrap over two lines)."""
    lines = [ln.strip() for ln in chunk.splitlines() if ln.strip()]
    answers: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = re.match(r"^\d+\.\s*(.+)$", lines[i])
        if m:
            text, j = m.group(1), i
            while text not in _QUESTION_TEXT and j + 1 < len(lines) and len(text) < 120:
                j += 1
                text = f"{text} {lines[j]}"
            if text in _QUESTION_TEXT and j + 1 < len(lines):
                answers[_QUESTION_TEXT[text]] = lines[j + 1]
                i = j + 2
                continue
        i += 1
    return answers


def slip_chunks(path: Path, title: str = "Your MIMS password") -> Iterator[str]:
    for text in pdf_pages(path):
        yield from text.split(title)[1:]


def slip_password(chunk: str) -> str:
    """The default password printed on one slip (Capitalised word + digits 2-9)."""
    m = re.search(r"(?m)^([A-Z][a-z]{2,6}[2-9]{4,})", chunk)
    assert m, chunk
    return m.group(1)
