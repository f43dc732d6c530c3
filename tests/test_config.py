"""Configuration errors name the key; defaults suit the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mimsdir.cli import main
from mimsdir.config import load_config, parse_limit
from mimsdir.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "message"), [
    ("ldap:\n  urii: ldap://x\n", "ldap.urii: unknown key"),
    ("ldap:\n  timeout: ten\n", "ldap.timeout: expected a number"),
    ("directory:\n  argon2: {m: 1024}\n", "directory.argon2.m: must be at least 19456"),
    ("directory:\n  argon2: {p: 0}\n", "directory.argon2.p: must be at least 1"),
    ("policies:\n  staff:\n    history: many\n", "policies.staff.history: expected a whole number"),
    ("sync:\n  max_disable: lots\n", "sync.max_disable"),
    ("sync: [1, 2]\n", "sync: expected a mapping"),
    ("ldap:\n  uri: http://x\n", "ldap.uri"),
    ("policies:\n  staff:\n    must_change_after_reset: maybe\n", "expected true or false"),
    ("ldap: {base_dn: [1\n", "not valid YAML"),
    ("oidc:\n  key_grace_hour: 2\n", "oidc.key_grace_hour: unknown key"),
    ("oidc:\n  key_grace_hours: 0\n", "oidc.key_grace_hours: between 1 and 2160"),
    ("oidc:\n  access_token_minutes: 120\n", "oidc.access_token_minutes: between 1 and 60"),
    ("oidc:\n  refresh_token_days: 0\n", "oidc.refresh_token_days: between 1 and 365"),
    ("oidc:\n  code_seconds: 3600\n", "oidc.code_seconds: between 10 and 600"),
    ("oidc:\n  code_seconds: soon\n", "oidc.code_seconds: expected a whole number"),
    ("portal:\n  public_url: http://portal.school.sg\n", "portal.public_url: must be https"),
    ("portal:\n  public_url: https://portal.school.sg/\n", "portal.public_url: no trailing"),
    ("portal:\n  public_url: https://portal.school.sg/?x=1\n", "portal.public_url: no query"),
    ("portal:\n  public_url: https://portal.school.sg#top\n", "portal.public_url: no query"),
    ("portal:\n  public_url: portal.school.sg\n", "portal.public_url: an absolute"),
    ("portal:\n  public_url: https://portal.school.sg:99999\n", "portal.public_url: not a URL"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_more_lanes_with_either_argon2_module(tmp_path: Path) -> None:
    """The project's module computes p lanes one after the other (libsodium's, before
    2026-12-02, made one lane only), and Debian's module takes p too."""
    for module in ("", "build/x.so"):
        cfg = load_config(write(tmp_path, f"directory:\n  argon2: {{p: 2}}\n"
                                          f"  argon2_module: '{module}'\n"))
        assert cfg.directory.argon2.p == 2


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "directory:\n  state_dir: st\n"))
    assert cfg.state_dir == (tmp_path / "st").resolve()
    assert cfg.secrets_dir == cfg.state_dir / "secrets"
    assert cfg.ldapi_uri.startswith("ldapi://%2F")


def test_env_var_and_missing_explicit_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    p = write(tmp_path, "ldap:\n  uri: ldap://127.0.0.1:1\n")
    monkeypatch.setenv("MIMS_CONFIG", str(p))
    assert load_config().ldap.uri == "ldap://127.0.0.1:1"
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_limits() -> None:
    assert parse_limit("5%") == (5.0, True)
    assert parse_limit("50") == (50.0, False)
    for bad in ("-1", "101%", "x"):
        with pytest.raises(ValueError):
            parse_limit(bad)


def test_cli_maps_config_error_to_exit_2(tmp_path: Path) -> None:
    p = write(tmp_path, "bogus: 1\n")
    res = CliRunner().invoke(main, ["--config", str(p), "directory", "status"])
    assert res.exit_code == 2
    assert "bogus: unknown key" in res.output


def test_shipped_config_is_valid() -> None:
    load_config(Path(__file__).resolve().parent.parent / "config.yaml")


def test_oidc_defaults_and_public_url(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "portal:\n  public_url: https://portal.school.sg/mims\n"
                                      "oidc:\n  key_grace_hours: 48\n"))
    assert cfg.portal.public_url == "https://portal.school.sg/mims"
    assert (cfg.oidc.key_grace_hours, cfg.oidc.access_token_minutes,
            cfg.oidc.refresh_token_days, cfg.oidc.code_seconds) == (48, 5, 30, 60)
    default = load_config(write(tmp_path, "{}\n"))
    assert default.portal.public_url == "http://127.0.0.1:8080"
    assert default.oidc.key_grace_hours == 24
