"""The application registry against the session's slapd: what is stored where, who may read
and write it, SAML entity IDs unique, secrets only as hashes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ldap
import pytest

from mimsdir.apps import registry as registry_module
from mimsdir.apps.model import App, hash_secret, new_client_id, new_client_secret
from mimsdir.apps.registry import DuplicateEntityId, NoSecret, Registry
from mimsdir.apps.saml_metadata import parse_sp_metadata
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import AccessDenied, DirectoryError, NotFound, PolicyViolation
from mimsdir.ldapio import Conn
from tests.conftest import conn_as, service_conn

SP_XML = (Path(__file__).parent / "data" / "saml" / "sp-metadata.xml").read_bytes()


@pytest.fixture
def reg(root: Conn, dns: Dns) -> Iterator[Registry]:
    """A registry as the host's root; every app a test adds is removed afterwards."""
    r = Registry(root, dns)
    before = {a.client_id for a in r.list()}
    yield r
    for app in r.list():
        if app.client_id not in before:
            r.remove(app.client_id)


def confidential(secret: str, **kw: object) -> App:
    fields: dict[str, object] = {
        "client_id": new_client_id(), "name": "Maths quest", "protocol": "oidc",
        "redirect_uris": ("https://maths.example/cb", "http://127.0.0.1:8765/cb"),
        "secret_hash": hash_secret(secret)}
    fields.update(kw)
    return App(**fields)  # type: ignore[arg-type]


def saml_app(entity_id: str | None = None) -> App:
    md = parse_sp_metadata(SP_XML)
    return App(client_id=new_client_id(), name="Library e-books", protocol="saml",
               redirect_uris=md.acs_urls, scopes=(), saml_entity_id=entity_id or md.entity_id,
               saml_metadata=md.xml, allowed_roles=("student", "teacher"))


def test_add_get_list_remove(reg: Registry, dns: Dns, root: Conn) -> None:
    secret = new_client_secret()
    app = confidential(secret, allowed_levels=("P4", "P5"), allowed_schools=("NPS",),
                       pairwise=True, description="P4-P5 maths",
                       post_logout_redirect_uris=("https://maths.example/bye",),
                       backchannel_logout_uri="https://maths.example/bcl")
    reg.add(app)
    assert reg.get(app.client_id) == app
    assert app in reg.list()
    got = reg.get(app.client_id)
    assert got is not None and got.check_secret(secret) and not got.check_secret("nope")
    raw = root.get(dns.app(app.client_id), ["objectClass", "cn"], "reading")
    assert raw == {"objectClass": [b"mimsApp"], "cn": [app.client_id.encode()]}
    assert reg.remove(app.client_id)
    assert reg.get(app.client_id) is None
    assert not reg.remove(app.client_id)


def test_the_secret_is_never_stored_in_clear(reg: Registry, dns: Dns, root: Conn) -> None:
    secret = new_client_secret()
    app = confidential(secret)
    reg.add(app)
    entry = root.get(dns.app(app.client_id), ["*", "+"], "reading everything")
    assert entry is not None
    values = b"\n".join(v for vs in entry.values() for v in vs)
    assert secret.encode() not in values
    assert entry["mimsAppSecret"][0].startswith(b"$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_saml_app_keeps_its_metadata_whole(reg: Registry) -> None:
    app = saml_app()
    reg.add(app)
    got = reg.by_entity_id("https://library.example.edu.sg/saml/sp")
    assert got == app and got.saml_metadata == SP_XML.decode()
    assert got.redirect_uris == ("https://library.example.edu.sg/saml/acs",
                                 "https://library.example.edu.sg/saml/artifact")
    assert reg.by_entity_id("https://library.example.edu.sg/saml/SP") is None  # exact
    assert reg.by_entity_id("*") is None and reg.by_entity_id("") is None


def test_a_saml_entity_id_is_registered_once(reg: Registry, root: Conn, dns: Dns,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = saml_app("https://dup.example/sp")
    reg.add(first)
    with pytest.raises(DuplicateEntityId, match=f"registered already as {first.client_id}"):
        reg.add(saml_app("https://dup.example/sp"))
    # Two registrations at once: both looked and found none; slapd's unique overlay refuses
    # the second write.
    monkeypatch.setattr(Registry, "by_entity_id", lambda self, entity_id: None)
    with pytest.raises(DuplicateEntityId, match="registered already"):
        reg.add(saml_app("https://dup.example/sp"))
    monkeypatch.undo()
    assert [a.client_id for a in reg.list()
            if a.saml_entity_id == "https://dup.example/sp"] == [first.client_id]
    # The directory refuses it whoever writes, ICT admin or root, with or without our code.
    with pytest.raises(PolicyViolation):
        root.add(dns.app("app-rawdup"), {
            "objectClass": [b"mimsApp"], "cn": [b"app-rawdup"], "mimsAppName": [b"x"],
            "mimsAppProtocol": [b"saml"], "mimsAppSamlEntityId": [b"https://dup.example/sp"]},
            "adding a duplicate by hand")


def test_invalid_apps_are_not_written(reg: Registry) -> None:
    bad = confidential("s", redirect_uris=("https://maths.example/cb#x",))
    with pytest.raises(ValueError, match="fragment"):
        reg.add(bad)
    assert reg.get(bad.client_id) is None


def test_client_id_taken(reg: Registry) -> None:
    app = confidential("s")
    reg.add(app)
    with pytest.raises(registry_module.Conflict, match="taken"):
        reg.add(confidential("t", client_id=app.client_id))


@pytest.mark.parametrize("client_id", ["*", "app-x,ou=staff", "x)(cn=*", "", "a" * 65,
                                       "cn=app-x", "app-ünicode"])
def test_lookups_with_any_string_are_safe(reg: Registry, client_id: str) -> None:
    """A client id comes from anyone's request: it never reaches a DN unchecked."""
    assert reg.get(client_id) is None
    assert reg.remove(client_id) is False


def test_set_secret_hash(reg: Registry) -> None:
    app = confidential("old-secret")
    public = confidential("x", public=True, secret_hash=None)
    sp = saml_app("https://secretless.example/sp")
    for a in (app, public, sp):
        reg.add(a)
    reg.set_secret_hash(app.client_id, hash_secret("new-secret"))
    got = reg.get(app.client_id)
    assert got is not None and got.check_secret("new-secret")
    assert not got.check_secret("old-secret")       # the old one stops at once
    for other in (public, sp):
        with pytest.raises(NoSecret):
            reg.set_secret_hash(other.client_id, hash_secret("s"))
        assert reg.get(other.client_id) == other
    with pytest.raises(NotFound):
        reg.set_secret_hash("app-nobody", hash_secret("s"))
    with pytest.raises(ValueError, match="argon2id"):
        reg.set_secret_hash(app.client_id, "plain-secret")


def test_the_portal_reads_and_cannot_write(reg: Registry, slapd, dns: Dns) -> None:  # type: ignore[no-untyped-def]
    app = confidential("s")
    reg.add(app)
    with service_conn(slapd, "sspr") as c:
        portal = Registry(c, dns)
        assert portal.get(app.client_id) == app        # the hash too: it checks secrets
        assert app in portal.list()
        with pytest.raises(AccessDenied):
            portal.add(confidential("t"))
        with pytest.raises(AccessDenied):
            portal.set_secret_hash(app.client_id, hash_secret("mine"))
        with pytest.raises(AccessDenied):
            portal.remove(app.client_id)
    for name in ("device", "sync"):
        with service_conn(slapd, name) as c:
            assert Registry(c, dns).get(app.client_id) is None
            try:  # slapd hides the container itself: "no such entry"
                listed = Registry(c, dns).list()
            except NotFound:
                listed = []
            assert listed == []


def test_an_ict_admin_registers(make, slapd, dns: Dns, reg: Registry) -> None:  # type: ignore[no-untyped-def]
    admin = make.admin()
    app = confidential("s")
    with conn_as(slapd, admin.dn, admin.password) as c:
        admin_reg = Registry(c, dns)
        admin_reg.add(app)
        assert admin_reg.get(app.client_id) == app
        admin_reg.set_secret_hash(app.client_id, hash_secret("t"))
        assert admin_reg.remove(app.client_id)
    teacher = make.teacher()
    with conn_as(slapd, teacher.dn, teacher.password) as c, \
            pytest.raises((AccessDenied, NotFound)):
        Registry(c, dns).add(confidential("s"))


def test_an_entry_of_unknown_kind_is_an_error_not_an_oidc_client(reg: Registry, root: Conn,
                                                                 dns: Dns) -> None:
    root.add(dns.app("app-strange"), {"objectClass": [b"mimsApp"], "cn": [b"app-strange"],
                                      "mimsAppName": [b"x"], "mimsAppProtocol": [b"cas"]},
             "adding an entry by hand")
    try:
        with pytest.raises(DirectoryError, match="not oidc or saml"):
            reg.get("app-strange")
    finally:
        root.delete(dns.app("app-strange"), "removing it")


def test_up_adds_ou_apps_to_an_older_directory(slapd, root: Conn, dns: Dns) -> None:  # type: ignore[no-untyped-def]
    # Apps other tests registered (in any order) go first: an older directory has none.
    for dn, _ in root.search(dns.apps, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["1.1"], "apps"):
        root.delete(dn, "removing a test app")
    root.delete(dns.apps, "removing ou=apps, as in a directory made before it")
    assert "ou=apps" in server.ensure_policies(slapd)
    assert root.get(dns.apps, ["ou"], "reading ou=apps") == {"ou": [b"apps"]}
    assert "ou=apps" not in server.ensure_policies(slapd)
