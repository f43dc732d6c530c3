"""The schema: one source, two forms that agree, loaded by slapd with the right rules."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import ldap
import pytest

from mimsdir import schemadef
from mimsdir.directory.slapdconf import SCHEMA_DIR

ROOT = Path(__file__).resolve().parent.parent


def test_committed_forms_are_generated_from_the_source() -> None:
    assert (SCHEMA_DIR / "mims.schema").read_text() == schemadef.render_schema()
    assert (SCHEMA_DIR / "mims.ldif").read_text() == schemadef.render_ldif()


def test_both_forms_carry_the_same_definitions() -> None:
    schema_lines = [ln.split(" ", 1)[1] for ln in (SCHEMA_DIR / "mims.schema").read_text()
                    .splitlines() if ln.startswith(("attributetype", "objectclass"))]
    ldif_lines = [ln.split(": ", 1)[1] for ln in (SCHEMA_DIR / "mims.ldif").read_text()
                  .splitlines() if ln.startswith(("olcAttributeTypes", "olcObjectClasses"))]
    assert schema_lines == ldif_lines
    assert len(schema_lines) == len(schemadef.ATTRIBUTES) + len(schemadef.OBJECT_CLASSES)


def test_slapd_conf_form_loads(tmp_path: Path) -> None:
    """The .schema form loads into a slapd.conf-style server (slapd -Ttest -f)."""
    conf = tmp_path / "slapd.conf"
    conf.write_text("\n".join([
        "include /etc/ldap/schema/core.schema",
        "include /etc/ldap/schema/cosine.schema",
        "include /etc/ldap/schema/nis.schema",
        "include /etc/ldap/schema/inetorgperson.schema",
        f"include {SCHEMA_DIR / 'mims.schema'}",
        "database config",
    ]) + "\n")
    res = subprocess.run(["/usr/sbin/slapd", "-Ttest", "-u", "-f", str(conf)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def _subschema(slapd):  # type: ignore[no-untyped-def]
    from mimsdir.directory.server import root_conn

    with root_conn(slapd) as c:
        res = c.search("cn=Subschema", ldap.SCOPE_BASE, "(objectClass=*)",
                       ["attributeTypes", "objectClasses"], "reading the subschema")
    return res[0][1]


@pytest.mark.parametrize("attr", schemadef.ATTRIBUTES, ids=lambda a: a.name)
def test_attribute_as_slapd_sees_it(slapd, attr: schemadef.AttributeDef) -> None:  # type: ignore[no-untyped-def]
    """Syntax, equality and single/multi value, read back from the running server."""
    from ldap.schema.models import AttributeType

    values = _subschema(slapd)["attributeTypes"]
    found = [AttributeType(v.decode()) for v in values if f"'{attr.name}'".encode() in v]
    assert len(found) == 1
    at = found[0]
    assert at.oid == attr.oid
    assert at.syntax == attr.syntax
    assert at.equality == attr.equality
    assert at.single_value == attr.single
    assert (at.ordering or None) == attr.ordering
    assert (at.substr or None) == attr.substr


def test_object_classes_as_slapd_sees_them(slapd) -> None:  # type: ignore[no-untyped-def]
    from ldap.schema.models import ObjectClass

    values = _subschema(slapd)["objectClasses"]
    for oc in schemadef.OBJECT_CLASSES:
        found = [ObjectClass(v.decode()) for v in values if f"'{oc.name}'".encode() in v]
        assert len(found) == 1
        assert found[0].oid == oc.oid
        assert found[0].kind == {"STRUCTURAL": 0, "AUXILIARY": 2}[oc.kind]
        assert set(found[0].must) == set(oc.must)
        assert set(found[0].may) == set(oc.may)


def test_oids_live_under_the_project_arc() -> None:
    oids = [a.oid for a in schemadef.ATTRIBUTES] + [o.oid for o in schemadef.OBJECT_CLASSES]
    assert len(set(oids)) == len(oids)
    assert all(o.startswith(schemadef.ARC + ".1.") or o.startswith(schemadef.ARC + ".2.")
               for o in oids)


def test_a_schema_change_alone_rebuilds_cn_config(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """cn=config includes mims.ldif by path; `up` rebuilds cn=config when the rendered text
    changes, so the text carries the schema's digest: new attributes reach an existing
    directory."""
    import shutil

    from mimsdir.config import Config
    from mimsdir.directory import slapdconf

    copy = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, copy)
    monkeypatch.setattr(slapdconf, "SCHEMA_DIR", copy)
    before = slapdconf.render_config(Config())
    with (copy / "mims.ldif").open("a") as fh:
        fh.write("olcObjectClasses: ( 2.25.1 NAME 'later' SUP top AUXILIARY )\n")
    assert slapdconf.render_config(Config()) != before


def test_slapd_loads_the_projects_argon2_module_or_debians() -> None:
    """The project's build by its absolute path; with argon2_module empty,
    Debian's, found in module_path. slappasswd loads the same one (server.hash_password)."""
    from mimsdir.config import Config
    from mimsdir.directory import slapdconf

    cfg = Config()
    built = str(Path(cfg.directory.argon2_module).resolve())
    assert built.endswith("build/mims_pwcheck/mims_argon2.so")
    assert f"olcModuleLoad: {{2}}{built} m=19456 t=3 p=1\n" in slapdconf.render_config(cfg)
    debian = dataclasses.replace(cfg, directory=dataclasses.replace(cfg.directory,
                                                                    argon2_module=""))
    assert "olcModuleLoad: {2}argon2 m=19456 t=3 p=1\n" in slapdconf.render_config(debian)
