"""Registers the ICT staff commands (student, qna, requests, report, audit) on the main group."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add each staff noun's click group to ``group``."""
