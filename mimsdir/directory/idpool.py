"""Handing out uidNumber and gidNumber values: each once, never again, on any provider.

The counters live in the directory, under ``ou=idpools`` (class ``mimsIdPool``, attribute
``mimsIdNext``), so every sync, every host and every replica shares them:

- **Atomic.** A reservation of ``n`` numbers is one modify: the LDAP Modify-Increment
  extension (RFC 4525) raises the counter by ``n`` and the post-read control (RFC 4527)
  returns the value that very modify produced. slapd serialises writes to an entry, so two
  syncs reserving at once get disjoint ranges; a first sync of a whole school is two round
  trips, not one per student.
- **Partitioned by provider.** With several providers (multi-provider syncrepl) one counter
  raised on two of them before replication settles would hand out the same value twice, and
  replication keeps only the later of the two writes. So every provider has its own
  counters, ``cn=uid-<server id>`` and ``cn=gid-<server id>``, and its numbers are
  ``first + index * 64 + server id`` (``mimsdir/posix.py``): two providers' numbers differ
  in their remainder mod 64 and can never meet. A client learns which provider it talks to
  from the entryCSN slapd stamps on a write to ``cn=probe`` (the CSN carries the server id
  of the provider that made the change), and each provider's ACL lets the sync write only
  its own counters, so a write that reached another provider is refused, not miscounted.
- **Never reused.** A counter only grows; a purged student's number stays burnt. A counter
  found missing is recreated one past the highest index its provider ever used in the
  directory, not from zero. The ``unique`` overlay refuses a second entry with the same
  uidNumber (or a second group with the same gidNumber): defence in depth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ldap

from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import Conflict, DirectoryError, NotFound
from mimsdir.ldapio import Conn, first
from mimsdir.posix import ID_STRIDE, number, server_id_of_csn

UID = "uid"
GID = "gid"
#: How often a reservation retries when the counter was created under its feet.
_ATTEMPTS = 3


@dataclass(frozen=True)
class Pools:
    """Where the counters are and where their numbers start (``posix.uid_min``, ``gid_min``)."""

    dns: Dns
    uid_min: int
    gid_min: int

    def first(self, pool: str) -> int:
        return self.uid_min if pool == UID else self.gid_min


def server_id(conn: Conn, dns: Dns) -> int:
    """Which provider ``conn`` talks to: raise ``cn=probe`` and read the server id out of the
    entryCSN of that write (0: a directory without replication)."""
    try:
        after = conn.increment(dns.idpool("probe"), "mimsIdNext", 1, ["entryCSN"],
                               "asking the directory which provider answers (the id pool probe)")
    except NotFound:
        raise DirectoryError(f"{dns.idpool('probe')} is missing: run `mimsdir directory up` "
                             f"(a directory made before the id pools)") from None
    csn = first(after, "entryCSN")
    if not csn:
        raise DirectoryError("the id pool probe came back without an entryCSN")
    return server_id_of_csn(csn)


def reserve(conn: Conn, pools: Pools, pool: str, count: int) -> list[int]:
    """``count`` numbers of ``pool`` (``uid`` or ``gid``) that nobody was or will be given."""
    if count <= 0:
        return []
    sid = server_id(conn, pools.dns)
    if sid >= ID_STRIDE:
        raise DirectoryError(f"server id {sid} is above {ID_STRIDE - 1}: this provider cannot "
                             f"hand out uid or gid numbers (directory.replication.server_id)")
    start = pools.first(pool)
    dn = pools.dns.idpool(f"{pool}-{sid}")
    for _ in range(_ATTEMPTS):
        try:
            after = conn.increment(dn, "mimsIdNext", count, ["mimsIdNext", "entryCSN"],
                                   f"reserving {count} {pool} number(s)")
        except NotFound:
            begin = _first_free_index(conn, pools, pool, sid)
            try:
                conn.add(dn, {"objectClass": [b"mimsIdPool"], "cn": [f"{pool}-{sid}".encode()],
                              "mimsIdNext": [str(begin + count).encode()],
                              "description": [f"{pool} numbers of server {sid}".encode()]},
                         f"creating the {pool} pool of server {sid}")
            except Conflict:
                continue  # another allocator created it a moment ago: increment that one
            return [number(start, i, sid) for i in range(begin, begin + count)]
        end = int(first(after, "mimsIdNext") or "0")
        csn = first(after, "entryCSN")
        if csn and server_id_of_csn(csn) != sid:
            # Two operations of one connection answered by two providers (an operation-level
            # load balancer): the ACL should have refused this write; use nothing.
            raise DirectoryError(f"the {pool} pool of server {sid} was raised on server "
                                 f"{server_id_of_csn(csn)}: connect to one provider directly")
        return [number(start, i, sid) for i in range(end - count, end)]
    raise DirectoryError(f"could not reserve {pool} numbers: the pool kept changing")


def _first_free_index(conn: Conn, pools: Pools, pool: str, sid: int) -> int:
    """One past the highest index provider ``sid`` ever handed out from ``pool``, as the
    directory shows it: where a missing counter starts again (never at a used number)."""
    start = pools.first(pool)
    if pool == UID:
        base, flt, attr = pools.dns.base, "(objectClass=posixAccount)", "uidNumber"
    else:
        base, flt, attr = pools.dns.posixgroups, "(objectClass=posixGroup)", "gidNumber"
    highest = -1
    for _, a in conn.search_paged(base, ldap.SCOPE_SUBTREE, flt, [attr],
                                  f"finding the highest {attr} of server {sid}"):
        try:
            value = int(first(a, attr) or "")
        except ValueError:
            continue
        if value >= start and (value - start) % ID_STRIDE == sid:
            highest = max(highest, (value - start) // ID_STRIDE)
    return highest + 1


@dataclass(frozen=True)
class Group:
    """A posixGroup to have: its name (cn) and what it is for."""

    name: str
    description: str


def ensure_groups(conn: Conn, pools: Pools, groups: Iterable[Group]) -> dict[str, int]:
    """name -> gidNumber for every group, adding those that do not exist yet (each with a
    newly reserved gidNumber). A group someone else added meanwhile is read, not duplicated:
    its number wins and the one reserved for it stays unused."""
    wanted = {g.name: g for g in groups}
    found = read_groups(conn, pools.dns, wanted)
    missing = [g for name, g in sorted(wanted.items()) if name not in found]
    numbers = reserve(conn, pools, GID, len(missing))
    for g, gid in zip(missing, numbers, strict=True):
        try:
            conn.add(pools.dns.posix_group(g.name), {
                "objectClass": [b"posixGroup"], "cn": [g.name.encode()],
                "gidNumber": [str(gid).encode()], "description": [g.description.encode()],
            }, f"adding the posix group {g.name}")
            found[g.name] = gid
        except Conflict:
            found.update(read_groups(conn, pools.dns, [g.name]))
            if g.name not in found:
                raise DirectoryError(f"the posix group {g.name} exists but has no "
                                     f"gidNumber") from None
    return found


def read_groups(conn: Conn, dns: Dns, names: Iterable[str] | None = None) -> dict[str, int]:
    """name (lower-case) -> gidNumber of the posix groups (all of them, or those named)."""
    wanted = {n.lower() for n in names} if names is not None else None
    out: dict[str, int] = {}
    try:
        res = list(conn.search_paged(dns.posixgroups, ldap.SCOPE_ONELEVEL,
                                     "(objectClass=posixGroup)", ["cn", "gidNumber"],
                                     "reading the posix groups"))
    except NotFound:
        return out
    for _, a in res:
        name, gid = first(a, "cn"), first(a, "gidNumber")
        if name and gid and (wanted is None or name.lower() in wanted):
            out[name.lower()] = int(gid)
    return out
