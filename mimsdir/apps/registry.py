"""The registered applications, kept in the directory under ``ou=apps`` (one entry each,
``cn=<client id>``), so every portal instance near every replica sees the same ones.

All I/O goes through ``Conn``; slapd's ACLs decide who may do what (the portal's account
reads, ICT admins and the host's root write). Whatever identity the connection has, the
registry asks nothing else of it.
"""

from __future__ import annotations

import ldap

from mimsdir.apps.model import (
    APP_ATTRS,
    App,
    app_from_entry,
    app_to_attrs,
    is_client_id,
    validate_app,
)
from mimsdir.directory.slapdconf import Dns
from mimsdir.errors import (
    Conflict,
    DirectoryError,
    NotFound,
    PolicyViolation,
    RefusedError,
    UsageError,
)
from mimsdir.ldapio import Conn, Entry, filter_eq

__all__ = ["DuplicateEntityId", "NoSecret", "Registry"]

_APP_FILTER = "(objectClass=mimsApp)"


class DuplicateEntityId(RefusedError):
    """A SAML SP with this entity ID is registered already: an AuthnRequest's issuer must name
    exactly one application. Nothing was written (exit 3)."""

    code = "duplicate"


class NoSecret(UsageError):
    """A public client or a SAML SP has no client secret to set."""

    code = "no-secret"


class Registry:
    """Applications in the directory, read and written as ``App`` values."""

    def __init__(self, conn: Conn, dns: Dns) -> None:
        self.conn = conn
        self.dns = dns

    def _app(self, entry: Entry) -> App:
        try:
            return app_from_entry(*entry)
        except ValueError as exc:
            raise DirectoryError(f"reading the registered applications: {exc}") from None

    def get(self, client_id: str) -> App | None:
        """The app registered as ``client_id``, or None (also for a string that cannot be a
        client id: it never reaches a DN)."""
        if not is_client_id(client_id):
            return None
        try:
            res = self.conn.search(self.dns.app(client_id), ldap.SCOPE_BASE, _APP_FILTER,
                                   APP_ATTRS, f"reading the application {client_id}")
        except NotFound:
            return None
        return self._app(res[0]) if res else None

    def by_entity_id(self, entity_id: str) -> App | None:
        """The SAML app whose SP has this entity ID (compared exactly), or None."""
        if not entity_id:
            return None
        res = self.conn.search(self.dns.apps, ldap.SCOPE_ONELEVEL,
                               f"(&{_APP_FILTER}{filter_eq('mimsAppSamlEntityId', entity_id)})",
                               APP_ATTRS, "looking up a SAML entity ID")
        return self._app(res[0]) if res else None

    def list(self) -> list[App]:
        """Every registered app, by name then client id."""
        res = self.conn.search(self.dns.apps, ldap.SCOPE_ONELEVEL, _APP_FILTER, APP_ATTRS,
                               "listing the registered applications")
        return sorted((self._app(e) for e in res), key=lambda a: (a.name.casefold(),
                                                                   a.client_id))

    def add(self, app: App) -> None:
        """Register ``app``. Raises ValueError (an invalid app, see ``validate_app``),
        ``DuplicateEntityId`` (its SAML entity ID is registered already, also when two
        registrations race: slapd's unique overlay refuses the second) or ``Conflict`` (the
        client id exists)."""
        validate_app(app)
        if app.saml_entity_id is not None:
            other = self.by_entity_id(app.saml_entity_id)
            if other is not None:
                raise self._duplicate(app.saml_entity_id, other.client_id)
        try:
            self.conn.add(self.dns.app(app.client_id), app_to_attrs(app),
                          f"registering the application {app.client_id}")
        except PolicyViolation as exc:
            # slapd's unique overlay (constraint violation): another registration won a race.
            if app.saml_entity_id is not None and "unique" in exc.diagnostic.lower():
                raise self._duplicate(app.saml_entity_id, None) from None
            raise
        except Conflict:
            raise Conflict(f"registering {app.client_id}: that client id is taken") from None

    @staticmethod
    def _duplicate(entity_id: str, client_id: str | None) -> DuplicateEntityId:
        by = f" as {client_id}" if client_id else ""
        return DuplicateEntityId(f"the SAML entity ID {entity_id!r} is registered already{by}; "
                                 f"remove that app first to register it again")

    def remove(self, client_id: str) -> bool:
        """Delete the app; False if there was none."""
        if not is_client_id(client_id):
            return False
        try:
            self.conn.delete(self.dns.app(client_id), f"removing the application {client_id}")
        except NotFound:
            return False
        return True

    def set_secret_hash(self, client_id: str, hash: str) -> None:
        """Replace a confidential OIDC client's secret hash (the old secret stops working at
        once). Raises NotFound for no such app and ``NoSecret`` for a public client or a SAML
        app: the directory checks both in the same operation (an assertion), so a change
        made meanwhile cannot slip through."""
        if not hash.startswith("$argon2id$"):
            raise ValueError("the secret must be stored as an argon2id hash")
        if not is_client_id(client_id):
            raise NotFound(f"no application {client_id!r}")
        try:
            self.conn.modify(self.dns.app(client_id),
                             [(ldap.MOD_REPLACE, "mimsAppSecret", [hash.encode()])],
                             f"setting the secret of {client_id}",
                             assertion="(&(objectClass=mimsApp)(mimsAppProtocol=oidc)"
                                       "(!(mimsAppPublic=TRUE)))")
        except NotFound:
            raise NotFound(f"no application {client_id!r}") from None
        except Conflict:
            raise NoSecret(f"{client_id} is a public client or a SAML app: it has no "
                           f"secret") from None
