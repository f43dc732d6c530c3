"""Loading LDIF: a few fixtures online as the host's root, or a national file offline.

Online (``load_ldif``) adds entry by entry through slapd, so every overlay and ACL sees
them; fine for a school's fixtures, hours for a national restore. Offline (``load_offline``)
hands the file to ``slapadd -q`` on the stopped directory: the entries go straight into the
database with its indexes, a full backup's operational attributes (entryUUID, entryCSN,
timestamps) are kept, and half a million entries take minutes, not hours.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import ldap
import ldif

from mimsdir.config import Config
from mimsdir.directory import server
from mimsdir.directory.server import root_conn
from mimsdir.disk import fsync_dir, fsync_file, uncache
from mimsdir.errors import DirectoryError, UsageError
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


@dataclass(frozen=True)
class OfflineLoad:
    entries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


# slapadd names the failing record: "could not add entry dn=\"...\" (line=12): ..."
_SLAPADD_LINE = re.compile(r"\(line=(\d+)\)")


def count_entries(path: Path) -> int:
    """Records in an LDIF file (each starts with a ``dn:`` line), read in large blocks."""
    count, tail = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            data = tail + block
            count += data.count(b"\ndn:")
            tail = data[-3:]
    return count


def load_offline(cfg: Config, path: Path) -> OfflineLoad:
    """Add every entry of ``path`` with ``slapadd -q`` into the stopped directory.

    The directory must exist (``directory up`` made its cn=config and base tree) and be
    stopped: slapadd writes the database files that a running slapd holds open. An entry
    that exists already fails the load (slapadd cannot skip); so does one that breaks the
    schema. ``-w`` sets the contextCSN from the loaded entries, so replicas and the sync's
    change tracking see a consistent starting point; a provider's ``-S`` is its server id.
    Never on a read-only consumer: its data comes from the providers only."""
    from mimsdir.connect import refuse_on_consumer

    refuse_on_consumer(cfg, "loading LDIF offline")
    if server.status(cfg).running:
        raise UsageError("--offline writes the database files: stop the directory first "
                         "(mimsdir directory down), load, then mimsdir directory up")
    config_dir = cfg.state_dir / "slapd.d"
    if not config_dir.is_dir():
        raise UsageError(f"{cfg.state_dir}: no directory here yet: run `mimsdir directory up` "
                         f"once (it makes cn=config and the base tree), then down, then load")
    entries = count_entries(path)
    cmd = [cfg.directory.slapadd, "-q", "-w", "-F", str(config_dir), "-b", cfg.ldap.base_dn,
           "-l", str(path)]
    sid = cfg.directory.replication.server_id
    if sid:
        cmd[1:1] = ["-S", str(sid)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        found = next((ln for ln in lines if _SLAPADD_LINE.search(ln)), lines[-1] if lines else "")
        where = _SLAPADD_LINE.search(found)
        at = f"{path}:{where.group(1)}" if where else str(path)
        raise DirectoryError(f"{at}: slapadd refused the load: {found.strip()} (the entries "
                             f"before it were added; fix the file and load the rest, or "
                             f"restore the backup)")
    durable(cfg.state_dir / "data")
    return OfflineLoad(entries, time.perf_counter() - t0)  # the load as far as the disk


def durable(env: Path) -> None:
    """Put a database that ``slapadd -q`` wrote on disk before saying it is loaded.

    Why: in quick mode back-mdb opens the files with MDB_NOSYNC and MDB_WRITEMAP and does
    not sync them when it closes (servers/slapd/back-mdb/init.c, ``mdb_db_close``): the load
    sits in the page cache as dirty pages until the kernel writes them back (1 GiB at
    500,000 students), so a power cut in the next minutes loses or damages it. Then out of
    the page cache (:func:`mimsdir.disk.uncache`: slapd's writes into the load's large
    folios cost it about 40% more CPU a sign-in)."""
    fsync_file(env / "data.mdb")
    fsync_dir(env)
    uncache(env / "data.mdb")
