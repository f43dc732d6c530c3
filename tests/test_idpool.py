"""The uidNumber/gidNumber pools against the session's slapd (one provider, server id 0):
reservations are atomic and disjoint however many callers race, a counter only grows, a lost
counter restarts above every number in use, the sync can write only this provider's counters
and never delete one, and slapd itself refuses a second entry with a number in use.
Two providers at once: tests/test_replication.py."""

from __future__ import annotations

import threading

import ldap
import pytest

from mimsdir.directory.idpool import GID, UID, Group, Pools, ensure_groups, reserve, server_id
from mimsdir.errors import AccessDenied, MimsError, PolicyViolation
from mimsdir.posix import ID_STRIDE
from tests.conftest import service_conn


@pytest.fixture
def pools(slapd, dns) -> Pools:  # type: ignore[no-untyped-def]
    return Pools(dns, slapd.posix.uid_min, slapd.posix.gid_min)


def test_probe_names_the_provider(slapd, dns) -> None:  # type: ignore[no-untyped-def]
    with service_conn(slapd, "sync") as c:
        assert server_id(c, dns) == 0  # no replication: server 0


def test_a_reservation_is_one_range_of_this_providers_numbers(slapd, pools) -> None:  # type: ignore[no-untyped-def]
    with service_conn(slapd, "sync") as c:
        a = reserve(c, pools, UID, 500)
        b = reserve(c, pools, UID, 3)
        g = reserve(c, pools, GID, 2)
    assert len(set(a)) == 500 and not set(a) & set(b)
    assert a == sorted(a) and b[0] == a[-1] + ID_STRIDE  # consecutive: the counter grows
    assert all(n >= pools.uid_min and (n - pools.uid_min) % ID_STRIDE == 0 for n in a + b)
    assert all(n >= pools.gid_min and (n - pools.gid_min) % ID_STRIDE == 0 for n in g)
    with service_conn(slapd, "sync") as c:
        assert reserve(c, pools, UID, 0) == []


def test_concurrent_reservations_never_overlap(slapd, pools) -> None:  # type: ignore[no-untyped-def]
    """Eight callers (think: two syncs and a back-fill, on separate connections) reserving
    at once: every number is handed out exactly once."""
    got: list[list[int]] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        try:
            with service_conn(slapd, "sync") as c:
                start.wait()
                for i in range(25):
                    r = reserve(c, pools, UID, 1 + (i + k) % 7)
                    with lock:
                        got.append(r)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    flat = [n for r in got for n in r]
    assert len(flat) == sum(1 + (i + k) % 7 for k in range(8) for i in range(25))
    assert len(set(flat)) == len(flat)


def test_a_lost_counter_restarts_above_every_number_in_use(slapd, root, pools, make) -> None:  # type: ignore[no-untyped-def]
    """The counter only grows; if it is lost anyway (deleted by the host's root, an old
    backup), the next reservation starts one past the highest number in the directory,
    never again at the first."""
    s = make.student(posix=True)
    used = int(root.get(s.dn, ["uidNumber"], "reading")["uidNumber"][0])
    root.delete(pools.dns.idpool("uid-0"), "losing the counter")
    with service_conn(slapd, "sync") as c:
        (after,) = reserve(c, pools, UID, 1)
    assert after > used
    next_idx = int(root.get(pools.dns.idpool("uid-0"), ["mimsIdNext"], "r")["mimsIdNext"][0])
    assert after == pools.uid_min + (next_idx - 1) * ID_STRIDE


def test_a_purged_persons_number_is_never_handed_out_again(slapd, root, pools, make) -> None:  # type: ignore[no-untyped-def]
    s = make.student(posix=True)
    burnt = int(root.get(s.dn, ["uidNumber"], "reading")["uidNumber"][0])
    root.delete(s.dn, "purging")
    make.created.remove(s.dn)
    with service_conn(slapd, "sync") as c:
        assert all(n > burnt for n in reserve(c, pools, UID, 50))


def test_the_sync_writes_only_this_providers_counters(slapd, root, pools) -> None:  # type: ignore[no-untyped-def]
    """Another provider's counter (here uid-5: server 5) may be read, never raised or
    created; no counter may be deleted (a new one would start again)."""
    other = pools.dns.idpool("uid-5")
    with service_conn(slapd, "sync") as c:
        with pytest.raises(AccessDenied):
            c.add(other, {"objectClass": [b"mimsIdPool"], "cn": [b"uid-5"],
                          "mimsIdNext": [b"7"]}, "creating server 5's counter")
        root.add(other, {"objectClass": [b"mimsIdPool"], "cn": [b"uid-5"],
                         "mimsIdNext": [b"7"]}, "server 5's counter, as replication brings it")
        try:
            with pytest.raises(AccessDenied):
                c.increment(other, "mimsIdNext", 1, ["mimsIdNext"], "raising server 5's")
            assert c.get(other, ["mimsIdNext"], "reading server 5's") == {
                "mimsIdNext": [b"7"]}
            reserve(c, pools, UID, 1)  # makes sure our own exists
            with pytest.raises(AccessDenied):
                c.delete(pools.dns.idpool("uid-0"), "deleting our own counter")
            with pytest.raises(AccessDenied):
                c.delete(pools.dns.idpool("probe"), "deleting the probe")
        finally:
            root.delete(other, "cleanup")


@pytest.mark.parametrize("who", ["device", "sspr"])
def test_other_services_cannot_reserve_or_see_the_counters(slapd, pools, who) -> None:  # type: ignore[no-untyped-def]
    with service_conn(slapd, who) as c:
        with pytest.raises(MimsError):
            reserve(c, pools, UID, 1)
        res = c.search(pools.dns.base, ldap.SCOPE_SUBTREE, "(objectClass=mimsIdPool)",
                       ["mimsIdNext"], "looking for the counters") if who == "sspr" else []
        assert res == []


def test_slapd_refuses_a_second_entry_with_a_number_in_use(slapd, root, make, dns) -> None:  # type: ignore[no-untyped-def]
    """The unique overlay: defence in depth behind the pools (a hand-made entry, a restored
    backup)."""
    s = make.student(posix=True)
    uid_number = root.get(s.dn, ["uidNumber"], "reading")["uidNumber"]
    with pytest.raises(PolicyViolation, match="non-unique"):
        make.student(posix=True, uidNumber=uid_number)
    gid = root.get(dns.posix_group(f"school-{make.school.lower()}"), ["gidNumber"], "r")
    with pytest.raises(PolicyViolation, match="non-unique"):
        root.add(dns.posix_group(f"dup-{make.school.lower()}"), {
            "objectClass": [b"posixGroup"], "cn": [f"dup-{make.school.lower()}".encode()],
            "gidNumber": gid["gidNumber"]}, "a second group with the same number")


def test_groups_are_added_once(slapd, root, pools, make) -> None:  # type: ignore[no-untyped-def]
    name = f"school-{make.school.lower()}"
    with service_conn(slapd, "sync") as c:
        first = ensure_groups(c, pools, [Group(name, "students of a test school")])
        again = ensure_groups(c, pools, [Group(name, "students of a test school")])
    make.created.append(pools.dns.posix_group(name))
    assert first == again and set(first) == {name}
    entry = root.get(pools.dns.posix_group(name), ["objectClass", "gidNumber", "memberUid"], "r")
    assert entry["objectClass"] == [b"posixGroup"] and "memberUid" not in entry
    assert int(entry["gidNumber"][0]) == first[name]
    # The sync adds groups but never changes or deletes one: a gidNumber, once given, stays.
    with service_conn(slapd, "sync") as c:
        with pytest.raises(AccessDenied):
            c.modify(pools.dns.posix_group(name), [(ldap.MOD_REPLACE, "gidNumber", [b"1"])],
                     "renumbering a group")
        with pytest.raises(AccessDenied):
            c.delete(pools.dns.posix_group(name), "deleting a group")
