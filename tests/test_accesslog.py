"""Every write is recorded by slapd's accesslog overlay, with who made it."""

from __future__ import annotations

import ldap

from mimsdir.ldapio import values
from tests.conftest import conn_as


def test_writes_are_audited_with_the_actor(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    admin = make.admin()
    s = make.student(level="P4")
    with conn_as(slapd, admin.dn, admin.password) as a:
        a.modify(s.dn, [(ldap.MOD_REPLACE, "mimsClass", [b"4Z"])], "moving class")
        a.set_password(s.dn, "Audited-reset-1")
    res = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL, f"(reqDN={s.dn})",
                      ["reqType", "reqAuthzID", "reqMod", "reqResult"], "reading the audit log")
    actor = [admin.dn.lower()]
    by_admin = [a for _, a in res if [v.lower() for v in values(a, "reqAuthzID")] == actor]
    mods = [m for a in by_admin for m in values(a, "reqMod")]
    assert any(m.startswith("mimsClass:= 4Z") for m in mods), mods
    assert any(m.startswith("userPassword:") for m in mods)
    # The audit log holds hashes, never a password in clear.
    assert not any("Audited-reset-1" in m for m in mods)
    assert all(values(a, "reqResult") == ["0"] for a in by_admin)
