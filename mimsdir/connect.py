"""Who we are when we talk to slapd: one function per identity, all reading secrets the same way.

- ``root_conn``: the host's root over ldapi (SASL EXTERNAL); the embedded directory's superuser.
- ``service_conn``: a service account (sync, sspr, device), password from ``secrets_dir``.
- ``admin_conn``: what staff commands act as: ``ldap.admin_dn`` if configured, else root.
- ``network_conn``: not bound yet, for a person's own bind (the portal's sign-in); the first
  of ``ldap.uri``'s directories that answers (failover between providers).

Every connection over the network goes through ``network_conn``: TLS as ``ldap.tls`` says,
the directory's certificate verified, StartTLS done before any password is sent.
"""

from __future__ import annotations

import os
import time

from mimsdir.config import Config, read_secret
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import ConfigError, DirectoryUnavailable, TlsRefused, UsageError
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


#: A directory of several in ``ldap.uri`` that could not be reached is tried after the others
#: for this long (seconds): a provider that is down and drops packets (no "refused") would
#: otherwise cost every new connection ``ldap.timeout`` before the next one is tried.
DOWN_FOR = 30.0
_down_until: dict[str, float] = {}


def _in_order(uris: tuple[str, ...]) -> list[str]:
    """``uris`` in their order, except that the ones found unreachable lately come last."""
    now = time.monotonic()
    return sorted(uris, key=lambda u: _down_until.get(u, 0.0) > now)


def network_conn(cfg: Config, uri: str | None = None, timeout: float | None = None) -> Conn:
    """A connection to the first directory of ``ldap.uri`` (or to ``uri``) that answers, TLS
    as configured, not bound yet.

    Failover: with several URIs (the providers), one that cannot be reached (refused, timed
    out) is skipped and the next is tried, in order, on every new connection, so the sync's
    reconnects, the CLI and the portal's pool go on with the next provider when one is down.
    One found unreachable is tried last for ``DOWN_FOR`` seconds (then in its place again).
    Anything else (a certificate that is not trusted, a directory that refuses StartTLS) is
    raised at once: a misconfigured provider is never skipped in silence."""
    uris = (uri,) if uri else cfg.ldap.uris
    wait = cfg.ldap.timeout if timeout is None else timeout
    tls = client_tls(cfg)
    failures: list[str] = []
    for candidate in _in_order(uris) if len(uris) > 1 else uris:
        try:
            conn = Conn(candidate, timeout=wait, tls=tls)
            if len(uris) > 1 and not conn.encrypted:
                conn.probe()  # clear text connects lazily: make it connect now
        except TlsRefused:
            raise  # it answered: a TLS problem there is not an outage
        except DirectoryUnavailable as exc:
            failures.append(str(exc))
            if len(uris) > 1:
                _down_until[candidate] = time.monotonic() + DOWN_FOR
            continue
        _down_until.pop(candidate, None)
        return conn
    if len(failures) == 1:
        raise DirectoryUnavailable(failures[0])
    raise DirectoryUnavailable("no directory answers: " + "; ".join(failures))


def refuse_on_consumer(cfg: Config, what: str) -> None:
    """Nothing writes to a read-only consumer's data but replication: not the sync, not the
    host's root (its numbers would come from no provider's partition, and its writes would
    never reach the providers), not the portal. slapd refuses such writes anyway (the
    consumer's rootDN is not the host's root, and its chain forwards only students' and
    staff's own writes); this says why, before anything is tried."""
    if cfg.directory.replication.consumer:
        raise UsageError(
            f"{what}: this host's directory is a read-only consumer "
            f"(directory.replication.role: consumer), which only replication writes to; run "
            f"it with a config whose ldap.uri lists the providers (docs/replication.md)")


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
        refuse_on_consumer(cfg, "staff commands as the host's root")
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
