"""``mimsdir app ...`` against the session's slapd: registering OIDC clients and SAML SPs,
the secret shown once and stored nowhere in clear, ``--json`` shapes, usage errors that write
nothing, removing, rotating a secret, and the signing keys."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import ldap
import pytest
import yaml
from click.testing import CliRunner, Result

from mimsdir.apps.registry import Registry
from mimsdir.cli import main
from mimsdir.config import Config
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Conn
from tests.staff_helpers import admin_config, config_path, run

DATA = Path(__file__).parent / "data" / "saml"
SECRET_RE = re.compile(r"^client_secret: (\S+)$", re.M)
ID_RE = re.compile(r"^client_id: +(\S+)$", re.M)


@pytest.fixture
def cfg(slapd: Config) -> Path:
    return config_path(slapd)


@pytest.fixture
def reg(root: Conn, dns: Dns) -> Iterator[Registry]:
    """The registry as root; apps the test registered are removed afterwards."""
    r = Registry(root, dns)
    before = {a.client_id for a in r.list()}
    yield r
    for a in r.list():
        if a.client_id not in before:
            r.remove(a.client_id)


def add_oidc(cfg: Path, *extra: str) -> Result:
    return run(cfg, "app", "add", "Maths Quest", "--oidc",
               "--redirect-uri", "https://mathsquest.example/oidc/callback", *extra)


def test_add_prints_the_id_and_the_secret_once(cfg: Path, reg: Registry) -> None:
    res = add_oidc(cfg, "--redirect-uri", "http://127.0.0.1:8765/cb", "--level", "p4",
                   "--level", "P5", "--school", "NPS", "--role", "student", "--pairwise",
                   "--description", "P4-P5 maths")
    assert res.exit_code == 0, res.output
    (client_id,) = ID_RE.findall(res.stdout)
    (secret,) = SECRET_RE.findall(res.stdout)
    assert res.stdout.count(secret) == 1 and secret not in res.stderr
    assert "shown only this once" in res.stderr
    app = reg.get(client_id)
    assert app is not None and app.check_secret(secret)
    assert (app.name, app.protocol, app.public, app.pairwise, app.consent) == (
        "Maths Quest", "oidc", False, True, False)
    assert app.redirect_uris == ("https://mathsquest.example/oidc/callback",
                                 "http://127.0.0.1:8765/cb")
    assert (app.allowed_levels, app.allowed_schools, app.allowed_roles) == (
        ("P4", "P5"), ("NPS",), ("student",))
    assert app.scopes == ("openid", "email", "profile", "mims", "offline_access")
    assert app.description == "P4-P5 maths"


def test_the_secret_is_nowhere_else(cfg: Path, slapd: Config, reg: Registry, root: Conn,
                                    dns: Dns) -> None:
    """After `add` printed it: not in show, list, their JSON, the operator log, the entry,
    the audit log or slapd's log; the entry holds an argon2id hash."""
    res = add_oidc(cfg)
    (client_id,) = ID_RE.findall(res.stdout)
    (secret,) = SECRET_RE.findall(res.stdout)
    rotated = run(cfg, "app", "rotate-secret", client_id)
    (secret2,) = SECRET_RE.findall(rotated.stdout)
    hashes = root.get(dns.app(client_id), ["mimsAppSecret"], "reading the hash")
    assert hashes is not None
    secret_hash = hashes["mimsAppSecret"][0].decode()
    assert secret_hash.startswith("$argon2id$")
    outputs = [run(cfg, *args) for args in (
        ["app", "show", client_id], ["app", "show", client_id, "--json"], ["app", "list"],
        ["app", "list", "--json"])]
    assert all(o.exit_code == 0 for o in outputs)
    entries = root.search(dns.base, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["*", "+"], "all")
    audit = root.search("cn=accesslog", ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["*"], "audit")
    places = {
        "show/list": "\n".join(o.output for o in outputs),
        "operator log": slapd.path(slapd.cli.operator_log).read_text(),
        "directory": repr(entries),
        "audit log": repr(audit),
        "slapd log": (slapd.state_dir / "slapd.log").read_text(errors="replace"),
    }
    for name, text in places.items():
        assert secret not in text and secret2 not in text, name
    assert secret_hash not in places["show/list"]
    assert client_id in places["show/list"]
    log = [json.loads(line) for line in places["operator log"].splitlines()]
    assert {"command": "app add", "exit": 0} in [
        {"command": r["command"], "exit": r["exit"]} for r in log]


def test_json_is_exactly_id_and_secret(cfg: Path, reg: Registry) -> None:
    res = add_oidc(cfg, "--json")
    assert res.exit_code == 0 and res.stderr == ""
    data = json.loads(res.stdout)
    assert list(data) == ["client_id", "client_secret"]
    app = reg.get(data["client_id"])
    assert app is not None and app.check_secret(data["client_secret"])

    res = add_oidc(cfg, "--public", "--scope", "openid", "--scope", "profile", "--json")
    data = json.loads(res.stdout)
    assert list(data) == ["client_id", "client_secret"] and data["client_secret"] is None
    app = reg.get(data["client_id"])
    assert app is not None and app.public and app.secret_hash is None
    assert app.scopes == ("openid", "profile")

    confidential = json.loads(add_oidc(cfg, "--json").stdout)["client_id"]
    res = run(cfg, "app", "rotate-secret", confidential, "--json")
    data = json.loads(res.stdout)
    assert list(data) == ["client_id", "client_secret"] and len(data["client_secret"]) == 43


def test_public_client_text_shows_no_secret(cfg: Path, reg: Registry) -> None:
    res = add_oidc(cfg, "--public")
    assert res.exit_code == 0 and "client_secret" not in res.output
    assert "public client" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["app", "add", "X"], "exactly one of --oidc and --saml"),
    (["app", "add", "X", "--oidc", "--saml", "--redirect-uri", "https://x.example/cb"],
     "exactly one of --oidc and --saml"),
    (["app", "add", "X", "--oidc"], "needs at least one --redirect-uri"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "http://x.example/cb"],
     "--redirect-uri 'http://x.example/cb' uses http"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "https://x.example/cb#f"], "fragment"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "https://*.x.example/cb"], "wildcard"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "/cb"], "not an absolute URI"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "https://x.example/cb",
      "--post-logout-uri", "http://x.example/"], "--post-logout-uri"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "https://x.example/cb", "--scope", "email"],
     "openid scope"),
    (["app", "add", "X", "--oidc", "--redirect-uri", "https://x.example/cb", "--metadata",
      str(DATA / "sp-metadata.xml")], "--metadata is for --saml"),
    (["app", "add", "", "--oidc", "--redirect-uri", "https://x.example/cb"], "name"),
    (["app", "add", "X", "--saml"], "--saml needs --metadata"),
    (["app", "add", "X", "--saml", "--metadata", str(DATA / "sp-metadata.xml"),
      "--redirect-uri", "https://x.example/cb", "--public"],
     "--redirect-uri, --public only for --oidc"),
    (["app", "add", "X", "--saml", "--metadata", str(DATA / "idp-metadata.xml")],
     "idp-metadata.xml: no SPSSODescriptor"),
    (["app", "add", "X", "--saml", "--metadata", str(DATA / "missing.xml")],
     "missing.xml: cannot read"),
])
def test_usage_errors_are_one_line_exit_2_and_write_nothing(
        cfg: Path, reg: Registry, args: list[str], message: str) -> None:
    before = reg.list()
    res = run(cfg, *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == ""
    assert reg.list() == before


def test_saml_acs_must_be_https(cfg: Path, reg: Registry, tmp_path: Path) -> None:
    md = tmp_path / "insecure-sp.xml"
    md.write_bytes((DATA / "sp-metadata.xml").read_bytes().replace(
        b'Location="https://library.example.edu.sg/saml/acs"',
        b'Location="http://library.example.edu.sg/saml/acs"'))
    res = run(cfg, "app", "add", "Library", "--saml", "--metadata", str(md))
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        f"mimsdir: {md}: AssertionConsumerService 'http://library.example.edu.sg/saml/acs' "
        f"uses http: only https is allowed, or http to 127.0.0.1, [::1] or localhost")


def test_saml_add_show_and_duplicate_refused(cfg: Path, reg: Registry) -> None:
    md = str(DATA / "sp-metadata.xml")
    res = run(cfg, "app", "add", "Library e-books", "--saml", "--metadata", md,
              "--role", "student", "--role", "teacher", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data == {"client_id": data["client_id"], "client_secret": None}
    app = reg.by_entity_id("https://library.example.edu.sg/saml/sp")
    assert app is not None and app.client_id == data["client_id"]
    assert app.saml_metadata == (DATA / "sp-metadata.xml").read_text()

    shown = run(cfg, "app", "show", app.client_id)
    assert "entity ID           https://library.example.edu.sg/saml/sp" in shown.stdout
    assert "ACS URL             https://library.example.edu.sg/saml/acs" in shown.stdout
    assert "student/teacher" in shown.stdout
    as_json = json.loads(run(cfg, "app", "show", app.client_id, "--json").stdout)
    assert as_json["saml_metadata"] == app.saml_metadata and "secret_hash" not in as_json

    again = run(cfg, "app", "add", "Library again", "--saml", "--metadata", md)
    assert again.exit_code == 3
    assert f"registered already as {app.client_id}" in again.stderr
    assert [a.client_id for a in reg.list() if a.protocol == "saml"
            and a.saml_entity_id == app.saml_entity_id] == [app.client_id]


def test_list_show_remove(cfg: Path, reg: Registry) -> None:
    assert run(cfg, "app", "list").exit_code == 0
    client_id = json.loads(add_oidc(cfg, "--json", "--level", "P6").stdout)["client_id"]
    listed = run(cfg, "app", "list")
    assert re.search(rf"^{client_id} +oidc +Maths Quest +\(students P6\)$", listed.stdout, re.M)
    items = json.loads(run(cfg, "app", "list", "--json").stdout)
    mine = [i for i in items if i["client_id"] == client_id]
    assert mine and mine[0]["has_secret"] is True and "saml_metadata" not in mine[0]
    assert not any("secret_hash" in i for i in items)
    shown = run(cfg, "app", "show", client_id)
    assert "set (stored as an argon2id hash; not shown)" in shown.stdout
    assert "redirect URI        https://mathsquest.example/oidc/callback" in shown.stdout

    res = run(cfg, "app", "remove", client_id)
    assert res.exit_code == 0 and reg.get(client_id) is None
    for args in (["remove", client_id], ["show", client_id], ["rotate-secret", client_id],
                 ["show", "x)(cn=*"]):
        res = run(cfg, "app", *args)
        assert res.exit_code == 1, args
        assert "no application" in res.stderr


def test_rotate_secret(cfg: Path, reg: Registry) -> None:
    res = add_oidc(cfg)
    (client_id,) = ID_RE.findall(res.stdout)
    (old,) = SECRET_RE.findall(res.stdout)
    rotated = run(cfg, "app", "rotate-secret", client_id)
    assert rotated.exit_code == 0
    (new,) = SECRET_RE.findall(rotated.stdout)
    app = reg.get(client_id)
    assert app is not None and app.check_secret(new) and not app.check_secret(old)
    assert "old secret no longer works" in rotated.stderr

    public = json.loads(add_oidc(cfg, "--public", "--json").stdout)["client_id"]
    saml = json.loads(run(cfg, "app", "add", "SP", "--saml", "--metadata",
                          str(DATA / "sp-metadata.xml"), "--json").stdout)["client_id"]
    for client, kind in ((public, "public client"), (saml, "SAML app")):
        res = run(cfg, "app", "rotate-secret", client)
        assert res.exit_code == 2 and f"is a {kind}: it has no secret" in res.stderr
        assert res.stdout == ""
        got = reg.get(client)
        assert got is not None and got.secret_hash is None


def test_an_ict_admin_registers_a_teacher_cannot(cfg: Path, slapd: Config, make,  # type: ignore[no-untyped-def]
                                                 reg: Registry, tmp_path: Path) -> None:
    admin = make.admin()
    (tmp_path / "a").mkdir()
    acfg = admin_config(tmp_path / "a", slapd, admin.dn, admin.password)
    res = add_oidc(acfg, "--json")
    assert res.exit_code == 0, res.output
    assert reg.get(json.loads(res.stdout)["client_id"]) is not None
    teacher = make.teacher()
    (tmp_path / "t").mkdir()
    tcfg = admin_config(tmp_path / "t", slapd, teacher.dn, teacher.password)
    before = reg.list()
    res = add_oidc(tcfg)
    assert res.exit_code == 1 and "refused by the directory" in res.stderr
    assert "client_secret" not in res.stdout
    assert reg.list() == before


# -- keys ------------------------------------------------------------------------------------

@pytest.fixture
def keys_cfg(slapd: Config, tmp_path: Path) -> Path:
    """The session's config with a secrets dir of its own for the keys."""
    data = yaml.safe_load(config_path(slapd).read_text(encoding="utf-8"))
    data["ldap"]["secrets_dir"] = str(tmp_path / "secrets")
    data["oidc"] = {"key_grace_hours": 6}
    data["cli"] = {"operator_log": str(slapd.path(slapd.cli.operator_log).resolve())}
    path = tmp_path / "keys-config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_keys_rotate_and_list(keys_cfg: Path, tmp_path: Path) -> None:
    res = run(keys_cfg, "app", "keys", "list")
    assert res.exit_code == 0 and "no signing keys yet" in res.stdout
    assert json.loads(run(keys_cfg, "app", "keys", "list", "--json").stdout) == []

    first = json.loads(run(keys_cfg, "app", "keys", "rotate", "--json").stdout)
    assert len(first["rotated"]) == 2 and first["retired"] == []
    res = run(keys_cfg, "app", "keys", "rotate")
    assert res.exit_code == 0
    new = re.findall(r"^new signing key (\S+) \((RS256|ES256)\)$", res.stdout, re.M)
    assert [alg for _, alg in new] == ["RS256", "ES256"]
    assert "previous keys stay published until" in res.stdout

    listed = json.loads(run(keys_cfg, "app", "keys", "list", "--json").stdout)
    assert [(k["alg"], k["state"]) for k in listed] == [
        ("RS256", "active"), ("ES256", "active"), ("RS256", "previous"), ("ES256", "previous")]
    assert {k["kid"] for k in listed if k["state"] == "previous"} == set(first["rotated"])
    assert all(set(k) == {"kid", "alg", "state", "created", "retire_after"} for k in listed)
    rotated_at = datetime.fromisoformat(listed[0]["created"])
    assert {datetime.fromisoformat(k["retire_after"]) - rotated_at for k in listed
            if k["state"] == "previous"} == {timedelta(hours=6)}    # oidc.key_grace_hours
    text = run(keys_cfg, "app", "keys", "list").stdout
    assert text.count("previous") == 2 and "published until" in text

    folder = tmp_path / "secrets" / "oidc-keys"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "keys.json").st_mode) == 0o600
    assert '"d"' in (folder / "keys.json").read_text()     # private parts: only in the file
    assert '"d"' not in text and '"d"' not in json.dumps(listed)


def test_help_has_examples() -> None:
    for cmd in (["app"], ["app", "add"], ["app", "list"], ["app", "show"], ["app", "remove"],
                ["app", "rotate-secret"], ["app", "keys"], ["app", "keys", "rotate"],
                ["app", "keys", "list"]):
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, cmd


def test_id_token_algorithm(cfg: Path, reg: Registry) -> None:
    out = add_oidc(cfg, "--id-token-alg", "ES256", "--json")
    assert out.exit_code == 0, out.output
    client_id = json.loads(out.stdout)["client_id"]
    app = reg.get(client_id)
    assert app is not None and app.id_token_alg == "ES256"
    plain = reg.get(json.loads(add_oidc(cfg, "--json").stdout)["client_id"])
    assert plain is not None and plain.id_token_alg == "RS256"
    assert add_oidc(cfg, "--id-token-alg", "HS256").exit_code == 2


def test_saml_cert_prints_the_idp_certificate(cfg: Path, slapd: Config) -> None:
    from mimsdir.apps.keys import saml_credentials
    from tests.portal_helpers import make_app

    res = run(cfg, "app", "saml-cert")
    assert res.exit_code == 0, res.output
    _key, cert = saml_credentials(slapd.secrets_dir)
    assert res.stdout == cert.read_text() and res.stdout.startswith("-----BEGIN CERTIFICATE")
    body = "".join(res.stdout.strip().splitlines()[1:-1])
    assert body.encode() in make_app(slapd).test_client().get("/saml/metadata").data
