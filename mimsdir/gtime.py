"""LDAP GeneralizedTime values, read and written the same way everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_GTIME = re.compile(r"^(\d{14})(?:[.,](\d{1,6})\d*)?Z$")


def parse_gtime(text: str | None) -> datetime | None:
    """LDAP GeneralizedTime (``20261128112225Z``, ``...225.653218Z``) to an aware UTC datetime.

    None for absent or unparsable values (and for ppolicy's permanent-lock marker).

    >>> parse_gtime("20261128112225.5Z").isoformat()
    '2026-11-28T11:22:25.500000+00:00'
    """
    if not text:
        return None
    m = _GTIME.match(text.strip())
    if not m:
        return None
    try:
        dt = datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if m.group(2):
        dt = dt.replace(microsecond=int(m.group(2).ljust(6, "0")))
    return dt


def format_gtime(dt: datetime) -> str:
    """An aware datetime as GeneralizedTime, for filters (``reqStart>=...``)."""
    return dt.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
