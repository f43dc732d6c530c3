"""Every write is recorded by slapd's accesslog overlay, with who made it."""

from __future__ import annotations

import contextlib
import uuid

import ldap

from mimsdir.errors import MimsError
from mimsdir.ldapio import first, values
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


def test_every_part_of_the_tree_is_audited_but_the_portals_sessions(slapd, dns, root) -> None:  # type: ignore[no-untyped-def]
    """A write under every ou of the tree is in the audit log, one under ou=sessions (the
    portal's session records, written at every sign-in) is not; and the tree has no part
    the template does not name (a new ou would otherwise go unaudited)."""
    from mimsdir.directory.slapdconf import OUS, UNAUDITED_OUS

    children = root.search(dns.base, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["1.1"], "tree")
    assert {dn.split(",", 1)[0].lower() for dn, _ in children} <= {f"ou={ou}" for ou in OUS}
    assert UNAUDITED_OUS == ("sessions",)
    tag = f"audit-probe-{uuid.uuid4().hex[:8]}"
    written = [f"ou={ou},{dns.base}" for ou in OUS]
    try:
        for dn in written:
            root.modify(dn, [(ldap.MOD_ADD, "description", [tag.encode()])], "probing")
    finally:
        for dn in written:
            with contextlib.suppress(MimsError):
                root.modify(dn, [(ldap.MOD_DELETE, "description", [tag.encode()])], "tidying")
    res = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL,
                      f"(&(reqType=modify)(reqMod=description:+ {tag}))", ["reqDN"], "audit")
    logged = {first(a, "reqDN").lower() for _, a in res}  # type: ignore[union-attr]
    assert logged == {dn.lower() for dn in written if not dn.startswith("ou=sessions,")}


def test_a_portal_sign_in_writes_nothing_to_the_audit_log(slapd, make, root, dns) -> None:  # type: ignore[no-untyped-def]
    """Its session record is in the directory (every portal instance sees it) but not in
    the audit log; a sign-in with a wrong password still is (ppolicy's failure count)."""
    from tests.portal_helpers import Browserish, make_app

    s = make.student(level="P3")
    web = Browserish(make_app(slapd).test_client())
    assert web.login(s.mail, "Wrong-pass-9").status_code == 200
    assert web.login(s.mail, s.password).status_code == 302
    records = root.search(dns.sessions, ldap.SCOPE_ONELEVEL,
                          f"(mimsSessionSubject={s.dn})", ["1.1"], "sessions")
    assert len(records) == 1
    res = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL,
                      f"(|(reqDN={records[0][0]})(reqDN={s.dn}))", ["reqDN", "reqMod"], "audit")
    assert {first(a, "reqDN") for _, a in res} == {s.dn}  # the student's writes only
    assert any(m.startswith("pwdFailureTime:") for _, a in res for m in values(a, "reqMod"))
