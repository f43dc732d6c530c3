"""The portal's session records under ``ou=sessions``, as far as others than the portal
touch them: a staff command that resets or disables someone ends their sessions too.

The portal itself (``mimsdir/portal/directory.py``) reads and writes the records; this is
the one way to end them all for a person, shared by the portal and the staff commands.
"""

from __future__ import annotations

import contextlib

import ldap

from mimsdir.errors import NotFound
from mimsdir.ldapio import Conn, filter_eq, first


def end_sessions(conn: Conn, sessions_dn: str, subject_dn: str,
                 keep: str | None = None) -> int:
    """Delete every session record of ``subject_dn`` (but the one named ``keep``): the
    person is signed out on every portal instance at their next request."""
    res = conn.search(sessions_dn, ldap.SCOPE_ONELEVEL, filter_eq("mimsSessionSubject",
                                                                  subject_dn),
                      ["cn"], "finding a person's sessions")
    ended = 0
    for dn, attrs in res:
        if keep is not None and first(attrs, "cn") == keep:
            continue
        with contextlib.suppress(NotFound):  # another instance ended it first
            conn.delete(dn, "ending a session")
            ended += 1
    return ended
