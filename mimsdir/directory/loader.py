"""Load LDIF fixtures into the directory as the host's root."""

from __future__ import annotations

from pathlib import Path

import ldap
import ldif

from mimsdir.config import Config
from mimsdir.directory.server import root_conn
from mimsdir.errors import UsageError
from mimsdir.ldapio import translate


class _Collect(ldif.LDIFParser):
    def __init__(self, fh) -> None:  # type: ignore[no-untyped-def]
        super().__init__(fh)
        self.records: list[tuple[str, dict[str, list[bytes]], int]] = []

    def handle(self, dn: str, entry: dict[str, list[bytes]]) -> None:
        self.records.append((dn, entry, self.line_counter))


def load_ldif(cfg: Config, path: Path) -> tuple[int, int]:
    """Add every entry; an entry that exists already is skipped. Returns (added, existing)."""
    from mimsdir.connect import refuse_on_consumer

    refuse_on_consumer(cfg, "loading LDIF")
    with path.open("rb") as fh:
        parser = _Collect(fh)
        try:
            parser.parse()
        except ValueError as exc:
            raise UsageError(f"{path}: not valid LDIF: {exc}") from None
    added = existing = 0
    with root_conn(cfg) as conn:
        for dn, entry, line in parser.records:
            try:
                conn.lo.add_s(dn, list(entry.items()))
                added += 1
            except ldap.ALREADY_EXISTS:
                existing += 1
            except ldap.LDAPError as exc:
                raise translate(exc, f"{path}:{line}: adding {dn}") from None
    return added, existing
