"""Who we are when we talk to slapd: one function per identity, all reading secrets the same way.

- ``root_conn``: the host's root over ldapi (SASL EXTERNAL); the embedded directory's superuser.
- ``service_conn``: a service account (sync, sspr, device), password from ``secrets_dir``.
- ``admin_conn``: what staff commands act as: ``ldap.admin_dn`` if configured, else root.
- ``network_conn``: not bound yet, for a person's own bind (the portal's sign-in).

Every connection over the network goes through ``network_conn``: TLS as ``ldap.tls`` says,
the directory's certificate verified, StartTLS done before any password is sent.
"""

from __future__ import annotations

import os

from mimsdir.config import Config, read_secret
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import ConfigError
from mimsdir.ldapio import Conn, TlsClient


def client_tls(cfg: Config) -> TlsClient | None:
    """How clients reach slapd: the CA they verify it with (ldap.tls.ca_file, the generated
    CA, or the system's), and StartTLS on ldap:// URIs (ldap.tls.starttls, default on with
    TLS). None: clear text on ldap:// (TLS off); an ldaps:// URI is verified regardless."""
    tls = cfg.ldap.tls
    ca = cfg.tls_ca_file
    if not tls.client_starttls and ca is None:
        return None
    return TlsClient(ca_file=str(ca) if ca else None, starttls=tls.client_starttls)


def network_conn(cfg: Config, uri: str | None = None, timeout: float | None = None) -> Conn:
    """A connection to ``ldap.uri`` (or ``uri``), TLS as configured, not bound yet."""
    return Conn(uri or cfg.ldap.uri, timeout=cfg.ldap.timeout if timeout is None else timeout,
                tls=client_tls(cfg))


def root_conn(cfg: Config) -> Conn:
    c = Conn(cfg.ldapi_uri, timeout=cfg.ldap.timeout)
    try:
        c.bind_external()
    except BaseException:
        c.close()
        raise
    return c


def service_password(cfg: Config, name: str) -> str:
    env = os.environ.get(f"MIMS_{name.upper()}_PASSWORD")
    if env:
        return env
    return read_secret(cfg.secrets_dir / f"{name}.pw", f"{name} service password")


def service_conn(cfg: Config, name: str) -> Conn:
    c = network_conn(cfg)
    try:
        c.bind(Dns(cfg.ldap.base_dn).service(name), service_password(cfg, name),
               doing=f"signing in as the {name} service")
    except BaseException:
        c.close()
        raise
    return c


def admin_conn(cfg: Config) -> Conn:
    """Staff commands: an ICT admin's bind if configured, else the host's root over ldapi."""
    if not cfg.ldap.admin_dn:
        return root_conn(cfg)
    password = os.environ.get("MIMS_ADMIN_PASSWORD")
    if not password:
        if not cfg.ldap.admin_password_file:
            raise ConfigError("ldap.admin_password_file: needed with ldap.admin_dn "
                              "(or set $MIMS_ADMIN_PASSWORD)")
        password = read_secret(cfg.path(cfg.ldap.admin_password_file), "admin password")
    c = network_conn(cfg)
    try:
        c.bind(cfg.ldap.admin_dn, password, doing=f"signing in as {cfg.ldap.admin_dn}")
    except BaseException:
        c.close()
        raise
    return c
