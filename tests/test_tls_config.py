"""ldap.tls without a running slapd: the configuration and what clients verify with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mimsdir.config import Config, TlsConfig, load_config
from mimsdir.connect import client_tls
from mimsdir.errors import ConfigError
from mimsdir.ldapio import TlsClient


@pytest.mark.parametrize(("text", "mode"), [
    ("ldap:\n  tls: generate\n", "generate"),
    ("ldap:\n  tls: off\n", "off"),
    ("ldap:\n  tls: {mode: off}\n", "off"),
    ("ldap:\n  tls: {mode: files, ca_file: ca.pem}\n", "files"),
    ("ldap: {uri: 'ldap://h:389'}\n", "off"),
])
def test_tls_modes_and_the_short_form(tmp_path: Path, text: str, mode: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    assert load_config(tmp_path / "config.yaml").ldap.tls.mode == mode


@pytest.mark.parametrize(("text", "message"), [
    ("ldap:\n  tls: sometimes\n", "ldap.tls.mode: one of off, generate, files"),
    ("ldap:\n  tls: {mode: generate, cert_file: c.pem}\n", "ldap.tls.cert_file: only with"),
    ("ldap:\n  tls: {mode: files, cert_file: c.pem}\n", "cert_file and key_file go together"),
    ("ldap:\n  tls: {require: true}\n", "ldap.tls.require: needs TLS"),
    ("ldap:\n  tls: {mode: generate, require: true, starttls: false}\n",
     "ldap.tls.starttls: must be on with require"),
    ("ldap:\n  tls: {mode: generate, ldaps_uri: 'ldap://h:636'}\n", "not an ldaps:// URL"),
    ("ldap:\n  tls: {ldaps_uri: 'ldaps://h:636'}\n", "ldap.tls.ldaps_uri: needs TLS"),
    ("ldap:\n  tls: {mode: generate, names: ['a b']}\n", "ldap.tls.names: not a host name"),
    ("ldap:\n  tls: {mode: generate, require: yes please}\n", "expected true or false"),
    ("ldap:\n  tls: {mode: generate, verify: false}\n", "ldap.tls.verify: unknown key"),
])
def test_tls_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "config.yaml")


def test_what_clients_verify_with(tmp_path: Path) -> None:
    def cfg(**tls_cfg: object) -> Config:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(
            {"ldap": {"tls": tls_cfg}, "directory": {"state_dir": "st"}}))
        return load_config(tmp_path / "config.yaml")

    assert client_tls(cfg(mode="off")) is None  # clear text, as before this issue
    generated = client_tls(cfg(mode="generate"))
    assert generated == TlsClient(ca_file=str(tmp_path / "st" / "tls" / "ca.crt"),
                                  starttls=True)
    # A school's or public CA: the system's trusted CAs, unless ca_file names one.
    assert client_tls(cfg(mode="files")) == TlsClient(ca_file=None, starttls=True)
    assert client_tls(cfg(mode="files", ca_file="moe.pem")) == TlsClient(
        ca_file=str(tmp_path / "moe.pem"), starttls=True)
    # A host that runs no slapd, only clients of a remote one that requires TLS.
    assert client_tls(cfg(mode="off", starttls=True)) == TlsClient(ca_file=None,
                                                                    starttls=True)


def test_tls_config_defaults_keep_existing_configs_working() -> None:
    assert TlsConfig().mode == "off" and not TlsConfig().client_starttls
