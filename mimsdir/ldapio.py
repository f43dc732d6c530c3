"""The one LDAP adapter: every call to python-ldap goes through here.

Why one module: errors from libldap are translated once, with what was being attempted, into
the project's error tree (``mimsdir.errors``), so neither a student's screen nor a cron mail
ever shows a raw libldap dict; and the ppolicy controls are decoded in one place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ldap
import ldap.filter
from ldap.controls import (
    DecodeControlTuples,
    RequestControlTuples,
    SimplePagedResultsControl,
)
from ldap.controls.libldap import AssertionControl
from ldap.controls.ppolicy import PasswordPolicyControl
from ldap.controls.readentry import PostReadControl
from ldap.controls.simple import ProxyAuthzControl, RelaxRulesControl

from mimsdir.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    DirectoryError,
    DirectoryUnavailable,
    MimsError,
    NotFound,
    PolicyViolation,
    TlsRefused,
)

Attrs = dict[str, list[bytes]]
RELAX_ATTRS = frozenset({"pwdfailuretime", "pwdaccounttmplockoutend"})
Entry = tuple[str, Attrs]

# ppolicy error codes (draft-behera-ldap-password-policy, python-ldap's PasswordPolicyControl)
PP_EXPIRED = 0
PP_LOCKED = 1
PP_CHANGE_AFTER_RESET = 2
PP_MOD_NOT_ALLOWED = 3
PP_MUST_SUPPLY_OLD = 4
PP_INSUFFICIENT_QUALITY = 5
PP_TOO_SHORT = 6
PP_TOO_YOUNG = 7
PP_IN_HISTORY = 8

PPOLICY_REASONS = {
    PP_EXPIRED: "password expired",
    PP_LOCKED: "account locked",
    PP_CHANGE_AFTER_RESET: "password must be changed after reset",
    PP_MOD_NOT_ALLOWED: "password change not allowed",
    PP_MUST_SUPPLY_OLD: "the old password must be supplied",
    PP_INSUFFICIENT_QUALITY: "password quality too low",
    PP_TOO_SHORT: "password too short",
    PP_TOO_YOUNG: "password changed too recently",
    PP_IN_HISTORY: "password was used before",
}


@dataclass(frozen=True)
class BindOutcome:
    """What a bind with the ppolicy request control told us.

    ``ok`` is True when the credentials were accepted. ``must_change`` means the password was
    set by someone else (ICT reset) and slapd restricts the session to changing it.
    """

    ok: bool
    must_change: bool = False
    locked: bool = False
    expired: bool = False
    grace_logins: int | None = None
    expires_in: int | None = None
    error: str | None = None


def escape_filter(value: str) -> str:
    """Escape a value for an LDAP filter: a login ID like ``*)(mail=*`` finds nobody."""
    return ldap.filter.escape_filter_chars(value, escape_mode=1)


def filter_eq(attr: str, value: str) -> str:
    return f"({attr}={escape_filter(value)})"


def filter_any(attr: str, items: Iterable[str]) -> str:
    """``(|(attr=a)(attr=b)...)``, every value escaped; a single value needs no ``|``."""
    parts = [filter_eq(attr, v) for v in items]
    return parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"


#: TLS 1.2 and 1.3 only, GnuTLS's default ciphers otherwise. A GnuTLS priority string,
#: because Debian's libldap (python-ldap's and slapd's) is built with GnuTLS, whose code in
#: OpenLDAP 2.5.13 ignores OPT_X_TLS_PROTOCOL_MIN (olcTLSProtocolMin): measured, slapd with
#: olcTLSProtocolMin 3.3 still accepted TLS 1.0. Used by clients and by slapd alike.
TLS_PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"


@dataclass(frozen=True)
class TlsClient:
    """How a connection checks who it talks to: the server's certificate must chain to
    ``ca_file`` (None: the system's trusted CAs) and name the URI's host, always (there is
    no "allow" or "never"). ``starttls``: on an ``ldap://`` URI, start TLS before anything
    else is sent, and fail rather than go on in clear. An ``ldaps://`` URI is TLS anyway."""

    ca_file: str | None = None
    starttls: bool = True


def _ppolicy_from(ctrls: Sequence[Any] | None) -> PasswordPolicyControl | None:
    for c in ctrls or ():
        if isinstance(c, PasswordPolicyControl):
            return c
    return None


def _decode_ctrls(info: dict[str, Any]) -> list[Any]:
    raw = info.get("ctrls") or []
    try:
        return DecodeControlTuples(raw, {PasswordPolicyControl.controlType: PasswordPolicyControl})
    except Exception:  # a control we cannot decode is not worth failing the operation for
        return []


def translate(exc: ldap.LDAPError, doing: str) -> MimsError:
    """Map a libldap error to the project's tree, naming what was being attempted."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    detail = info.get("info") or info.get("desc") or exc.__class__.__name__
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    if isinstance(exc, ldap.SERVER_DOWN | ldap.TIMEOUT | ldap.CONNECT_ERROR | ldap.UNAVAILABLE
                  | ldap.BUSY):
        return DirectoryUnavailable(f"{doing}: directory unreachable ({detail})")
    pp = _ppolicy_from(_decode_ctrls(info))
    if pp is not None and pp.error is not None:
        # The password policy said why: that beats the generic result code. The server's
        # text is kept too: slapd's password check module puts a stable code first
        # ("mims:common ..."), which the portal translates; it never holds the password.
        err = PolicyViolation(f"{doing}: {PPOLICY_REASONS.get(pp.error, str(detail))}")
        err.ppolicy_error = pp.error
        err.diagnostic = str(detail)
        return err
    if isinstance(exc, ldap.INVALID_CREDENTIALS):
        # Our own identity (a service or admin password file) is wrong: a configuration
        # problem, not a directory failure.
        return ConfigError(f"{doing}: invalid credentials (check the password file)")
    if isinstance(exc, ldap.INSUFFICIENT_ACCESS):
        return AccessDenied(f"{doing}: refused by the directory's access control")
    if isinstance(exc, ldap.STRONG_AUTH_REQUIRED) or (
        isinstance(exc, ldap.UNWILLING_TO_PERFORM) and "authentication required" in str(detail)
    ):
        return AccessDenied(f"{doing}: refused: sign in first")
    if isinstance(exc, ldap.REFERRAL) or (isinstance(exc, ldap.INAPPROPRIATE_AUTH)
                                          and info.get("msgtype") != ldap.RES_BIND):
        # A read-only consumer forwards only a student's or staff member's own writes (its
        # chain overlay refuses any other identity; without one it refers to a provider).
        # (A bind answered so is about the bind, not about a replica.)
        return AccessDenied(f"{doing}: refused: this directory is a read-only replica that "
                            f"does not take this write ({exc.__class__.__name__}); write to a "
                            f"provider")
    if isinstance(exc, ldap.CONFIDENTIALITY_REQUIRED):
        return ConfigError(f"{doing}: the directory requires TLS for this ({detail}); set "
                           f"ldap.tls (starttls, ca_file) or use an ldaps:// URI")
    if isinstance(exc, ldap.NO_SUCH_OBJECT):
        return NotFound(f"{doing}: no such entry")
    if isinstance(exc, ldap.ASSERTION_FAILED | ldap.ALREADY_EXISTS):
        return Conflict(f"{doing}: the entry changed meanwhile")
    if isinstance(exc, ldap.CONSTRAINT_VIOLATION):
        plain = PolicyViolation(f"{doing}: {detail}")
        plain.diagnostic = str(detail)
        return plain
    if isinstance(exc, ldap.UNWILLING_TO_PERFORM):
        return DirectoryError(f"{doing}: the directory is unwilling ({detail})")
    return DirectoryError(f"{doing}: {exc.__class__.__name__} ({detail})")


def _tls_failure(exc: ldap.LDAPError, uri: str) -> MimsError:
    """StartTLS failed: the server does not offer it, or its certificate is not one we
    trust for this host. Either way nothing more is sent."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    detail = info.get("info") or info.get("desc") or exc.__class__.__name__
    if isinstance(exc, ldap.PROTOCOL_ERROR):
        return TlsRefused(f"starting TLS with {uri}: the directory does not offer StartTLS "
                          f"({detail}); is ldap.tls on at the server?")
    if isinstance(exc, ldap.TIMEOUT) or info.get("errno") in _UNREACHABLE:
        # The TCP connection itself failed: no TLS was tried.
        return DirectoryUnavailable(f"starting TLS with {uri}: directory unreachable "
                                    f"({detail})")
    # libldap (GnuTLS) says no more than "(unknown error code)" for a refused certificate.
    return TlsRefused(f"starting TLS with {uri}: no TLS session ({detail}): the directory's "
                      f"certificate is not trusted for this host (check ldap.tls.ca_file and "
                      f"the host name in the URI), or it does not speak TLS there")


_UNREACHABLE = {errno.ECONNREFUSED, errno.ENOTCONN, errno.EHOSTUNREACH, errno.ENETUNREACH,
                errno.ETIMEDOUT}


@contextlib.contextmanager
def attempting(doing: str) -> Iterator[None]:
    """Translate any LDAPError raised inside into a MimsError that says what we were doing."""
    try:
        yield
    except ldap.LDAPError as exc:
        raise translate(exc, doing) from None


class Conn:
    """A connection to slapd, thin on purpose: callers speak in DNs and attribute dicts."""

    def __init__(self, uri: str, timeout: float = 10.0, tls: TlsClient | None = None) -> None:
        """Connect to ``uri``. With ``tls`` (or any ``ldaps://`` URI) the server's
        certificate is verified, and on ``ldap://`` StartTLS is done here, before any bind
        can send a password: a failure raises and nothing goes out in clear."""
        self.uri = uri
        ldaps = uri.lower().startswith("ldaps://")
        starttls = bool(tls and tls.starttls and uri.lower().startswith("ldap://"))
        #: True when everything on this connection is encrypted with a verified server.
        self.encrypted = ldaps or starttls
        with attempting(f"connecting to {uri}"):
            lo = ldap.initialize(uri, bytes_mode=False)
            lo.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            lo.set_option(ldap.OPT_REFERRALS, 0)
            lo.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
            lo.set_option(ldap.OPT_TIMEOUT, timeout)
            if self.encrypted:
                # Per connection, never libldap's process-wide defaults or ~/.ldaprc:
                # demand a valid certificate for this host from this CA.
                lo.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
                if tls and tls.ca_file:
                    lo.set_option(ldap.OPT_X_TLS_CACERTFILE, tls.ca_file)
                lo.set_option(ldap.OPT_X_TLS_CIPHER_SUITE, TLS_PRIORITY)
                lo.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the options above
        self.lo: Any = lo
        self.bound_dn: str | None = None
        # Set by ``act_as``: every operation then carries RFC 4370 proxied authorization and
        # slapd applies its ACLs to that identity, not to ours.
        self._proxy: list[Any] = []
        if self.encrypted:
            try:
                if starttls:
                    self.lo.start_tls_s()
                else:
                    # ldaps: the handshake happens on the first operation; make it happen
                    # here (an anonymous WhoAmI) so a refused certificate is told as such.
                    self.lo.whoami_s()
            except ldap.LDAPError as exc:
                self.close()
                raise _tls_failure(exc, uri) from None

    def probe(self) -> None:
        """Make libldap connect now (it connects on the first operation): an unreachable
        directory raises ``DirectoryUnavailable`` here. Any answer means it is there, even
        a refusal (an anonymous WhoAmI where TLS is required)."""
        try:
            self.lo.whoami_s()
        except _DOWN as exc:
            self.close()
            raise translate(exc, f"connecting to {self.uri}") from None
        except ldap.LDAPError:
            pass

    def looks_alive(self) -> bool:
        """No round trip: False when the directory has closed this connection (its socket
        reads as ended, or holds anything: an idle connection is owed nothing), or it was
        never opened or is closed here. A connection the directory still holds reads as
        empty. Used by the portal's pools before a connection is used again."""
        if getattr(self, "_closed", False):
            return False
        try:
            fd = self.lo.get_option(ldap.OPT_DESC)
        except (ldap.LDAPError, AttributeError, ValueError):
            return False
        if not isinstance(fd, int) or fd < 0:
            return False
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # nothing to read: still open
        except OSError:
            return False
        return False

    def act_as(self, dn: str | None) -> None:
        """Perform the following operations as ``dn`` (proxied authorization), or as
        ourselves again with None. slapd allows it only where our entry's authzTo says so."""
        self._proxy = [ProxyAuthzControl(True, f"dn:{dn}".encode())] if dn else []

    # -- binding --------------------------------------------------------------------------
    def bind(self, dn: str, password: str, doing: str | None = None) -> None:
        """Simple bind; raises on failure (use ``bind_ppolicy`` for a user's sign-in)."""
        with attempting(doing or f"binding as {dn}"):
            self.lo.simple_bind_s(dn, password)
        self.bound_dn = dn

    def bind_external(self) -> None:
        """SASL EXTERNAL over ldapi: the host's root, as on a stock Debian slapd."""
        with attempting(f"binding as the host's root over {self.uri}"):
            self.lo.sasl_external_bind_s()
        self.bound_dn = "external"

    def bind_ppolicy(self, dn: str, password: str) -> BindOutcome:
        """Bind asking for the password-policy response control, and decode its answer.

        Wrong password, locked or disabled: ``ok=False`` with a reason; never raises for those.
        The directory being down still raises ``DirectoryUnavailable``.
        """
        if not password:
            # An empty password is an anonymous bind that "succeeds": never treat it as one.
            return BindOutcome(ok=False, error="invalid credentials")
        try:
            msgid = self.lo.simple_bind(dn, password, serverctrls=[PasswordPolicyControl()])
            _, _, _, ctrls = self.lo.result3(msgid)
        except ldap.INVALID_CREDENTIALS as exc:
            info = exc.args[0] if exc.args else {}
            pp = _ppolicy_from(_decode_ctrls(info))
            locked = bool(pp and pp.error == PP_LOCKED)
            expired = bool(pp and pp.error == PP_EXPIRED)
            return BindOutcome(ok=False, locked=locked, expired=expired,
                               error="account locked" if locked else "invalid credentials")
        except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR, ldap.UNAVAILABLE) as exc:
            raise translate(exc, "signing in") from None
        except ldap.LDAPError as exc:
            info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            pp = _ppolicy_from(_decode_ctrls(info))
            return BindOutcome(ok=False, locked=bool(pp and pp.error == PP_LOCKED),
                               error=exc.__class__.__name__)
        self.bound_dn = dn
        pp = _ppolicy_from(ctrls)
        if pp is None:
            return BindOutcome(ok=True)
        return BindOutcome(
            ok=True,
            must_change=pp.error == PP_CHANGE_AFTER_RESET,
            grace_logins=pp.graceAuthNsRemaining,
            expires_in=pp.timeBeforeExpiration,
        )

    def whoami(self) -> str:
        with attempting("asking the directory who we are"):
            # python-ldap's whoami_s hands controls to C unconverted: convert them here.
            return self.lo.whoami_s(RequestControlTuples(self._proxy) if self._proxy else None)

    # -- reading --------------------------------------------------------------------------
    def search(self, base: str, scope: int, filterstr: str, attrs: Sequence[str] | None,
               doing: str) -> list[Entry]:
        with attempting(doing):
            res = self.lo.search_ext_s(base, scope, filterstr, list(attrs) if attrs else None,
                                       serverctrls=self._proxy or None)
        return [(dn, a) for dn, a in res if dn]

    def search_paged(self, base: str, scope: int, filterstr: str, attrs: Sequence[str] | None,
                     doing: str, page_size: int = 1000) -> Iterator[Entry]:
        """Every matching entry, fetched in pages so a national directory fits in memory.

        The next page is asked for before this one is handed out: slapd reads it while the
        caller works on this one (a national listing took the sum of both before)."""
        ctrl = SimplePagedResultsControl(True, size=page_size, cookie="")
        wanted = list(attrs) if attrs else None

        def ask() -> int:
            with attempting(doing):
                return int(self.lo.search_ext(base, scope, filterstr, wanted,
                                              serverctrls=[ctrl, *self._proxy]))

        msgid: int | None = ask()
        try:
            while msgid is not None:
                with attempting(doing):
                    _, rdata, _, sctrls = self.lo.result3(msgid)
                msgid = None
                cookie = next((c.cookie for c in sctrls
                               if c.controlType == SimplePagedResultsControl.controlType), b"")
                if cookie:
                    ctrl.cookie = cookie
                    msgid = ask()
                for dn, a in rdata:
                    if dn:
                        yield dn, a
        finally:
            if msgid is not None:  # the caller stopped early: the page asked for is not read
                with contextlib.suppress(ldap.LDAPError):
                    self.lo.abandon_ext(msgid)

    def get(self, dn: str, attrs: Sequence[str] | None, doing: str) -> Attrs | None:
        try:
            res = self.search(dn, ldap.SCOPE_BASE, "(objectClass=*)", attrs, doing)
        except NotFound:
            return None
        return res[0][1] if res else None

    # -- writing --------------------------------------------------------------------------
    def add(self, dn: str, attrs: Attrs, doing: str) -> None:
        with attempting(doing):
            self.lo.add_ext_s(dn, list(attrs.items()), serverctrls=self._proxy or None)

    def modify(self, dn: str, modlist: list[tuple[int, str, Any]], doing: str,
               assertion: str | None = None) -> None:
        """Modify; a change to ppolicy's ``pwdFailureTime`` or ``pwdAccountTmpLockoutEnd``
        (NO-USER-MODIFICATION in slapd 2.5) goes with the Relax Rules control, which slapd
        honours for holders of ``manage`` on them (resetters, see schema/acl.in): an unlock
        must clear the failures and the sign-in delay, or the student still waits.

        ``assertion`` (RFC 4528): the modify happens only if the entry still matches this
        filter, else ``Conflict``: a counter read, then written, cannot lose a concurrent
        increment."""
        ctrls: list[Any] = [RelaxRulesControl()] if any(m[1].lower() in RELAX_ATTRS
                                                         for m in modlist) else []
        if assertion:
            ctrls.append(AssertionControl(True, assertion))
        with attempting(doing):
            self.lo.modify_ext_s(dn, modlist, serverctrls=[*ctrls, *self._proxy] or None)

    def increment(self, dn: str, attr: str, by: int, read_attrs: Sequence[str],
                  doing: str) -> Attrs:
        """Raise an INTEGER attribute by ``by`` (RFC 4525 Modify-Increment) and return
        ``read_attrs`` of the entry as that very modify left it (RFC 4527 post-read): slapd
        applies the increment atomically, so two callers never see the same value."""
        ctrl = PostReadControl(True, list(read_attrs))
        with attempting(doing):
            msgid = self.lo.modify_ext(dn, [(ldap.MOD_INCREMENT, attr, [str(by).encode()])],
                                       serverctrls=[ctrl, *self._proxy])
            _, _, _, ctrls = self.lo.result3(
                msgid, resp_ctrl_classes={PostReadControl.controlType: PostReadControl})
        for c in ctrls or ():
            if isinstance(c, PostReadControl):
                return dict(c.entry)
        raise DirectoryError(f"{doing}: the directory did not return the entry (post-read)")

    def delete(self, dn: str, doing: str) -> None:
        with attempting(doing):
            self.lo.delete_ext_s(dn, serverctrls=self._proxy or None)

    def set_password(self, dn: str, new: str, old: str | None = None,
                     doing: str = "setting a password") -> None:
        """RFC 3062 Password Modify: slapd hashes it (argon2) and applies ppolicy."""
        with attempting(doing):
            self.lo.passwd_s(dn, old, new, serverctrls=[PasswordPolicyControl(), *self._proxy])

    def close(self) -> None:
        """Idempotent: python-ldap raises AttributeError on a second unbind."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        with contextlib.suppress(ldap.LDAPError, AttributeError):
            self.lo.unbind_s()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def first(attrs: Attrs, name: str) -> str | None:
    """The first value of ``name`` as text, matching the attribute name case-insensitively
    (the name as asked for first: slapd answers with the names a search asked for)."""
    found = attrs.get(name)
    if found:
        return found[0].decode("utf-8", "replace")
    low = name.lower()
    for key, values in attrs.items():
        if values and key.lower() == low:
            return values[0].decode("utf-8", "replace")
    return None


def values(attrs: Attrs, name: str) -> list[str]:
    found = attrs.get(name)
    if found is None:
        low = name.lower()
        found = next((vals for key, vals in attrs.items() if key.lower() == low), None)
    return [v.decode("utf-8", "replace") for v in found] if found is not None else []


# -- pipelined writes ------------------------------------------------------------------------
@dataclass
class Op:
    """One write for the pipeline. ``key`` identifies it in results (a student's uid)."""

    key: str
    kind: str  # "add" | "modify" | "delete" | "passwd"
    dn: str
    payload: Any = None
    tag: str = ""
    resent: bool = False


class Pipeline:
    """Writes with a bounded number in flight (python-ldap asynchronous operations).

    Each result is checked and handed to ``on_done(op, error)``; one student's failure does not
    stop the others. When the server goes away, the connection is rebuilt with exponential
    backoff and every write whose result was not seen is sent again (writes are idempotent:
    MOD_REPLACE everywhere, and an add or delete that already happened counts as done). If the
    server stays away, ``DirectoryUnavailable`` is raised: the caller exits 4 and the next run
    converges because it plans again from what the directory holds.
    """

    def __init__(self, connect: Any, window: int, retries: int, on_done: Any,
                 result_timeout: float = 60.0, sleep: Any = None) -> None:
        import time as _time

        self._connect = connect
        self._conn: Conn = connect()
        self.window = window
        self.retries = retries
        self.on_done = on_done
        self.result_timeout = result_timeout
        self._sleep = sleep or _time.sleep
        self._inflight: list[tuple[int, Op]] = []
        self.reconnects = 0

    def submit(self, op: Op) -> None:
        while len(self._inflight) >= self.window:
            self._collect_one()
        self._send(op)

    def flush(self) -> None:
        while self._inflight:
            self._collect_one()

    def close(self) -> None:
        self._conn.close()

    def _send(self, op: Op) -> None:
        while True:
            try:
                self._inflight.append((self._start(op), op))
                return
            except _DOWN:
                self._recover(pending=[op])
                return
            except ldap.LDAPError as exc:
                self.on_done(op, translate(exc, f"{op.tag or op.kind} {op.dn}"))
                return

    def _start(self, op: Op) -> int:
        lo = self._conn.lo
        if op.kind == "add":
            return lo.add_ext(op.dn, list(op.payload.items()))
        if op.kind == "modify":
            return lo.modify_ext(op.dn, op.payload)
        if op.kind == "delete":
            return lo.delete_ext(op.dn)
        if op.kind == "passwd":
            return lo.passwd(op.dn, None, op.payload)
        raise ValueError(op.kind)

    def _collect_one(self) -> None:
        msgid, op = self._inflight[0]
        try:
            self._conn.lo.result3(msgid, all=1, timeout=self.result_timeout)
        except _DOWN:
            self._recover(pending=[])
            return
        except ldap.LDAPError as exc:
            self._inflight.pop(0)
            if op.resent and _already_done(op, exc):
                self.on_done(op, None)
            else:
                self.on_done(op, translate(exc, f"{op.tag or op.kind} {op.dn}"))
            return
        self._inflight.pop(0)
        self.on_done(op, None)

    def _recover(self, pending: list[Op]) -> None:
        """Reconnect and resend everything whose result we never saw."""
        unsent = [op for _, op in self._inflight] + pending
        self._inflight = []
        self._conn.close()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            self._sleep(min(30.0, 0.5 * 2 ** attempt))
            try:
                self._conn = self._connect()
                break
            except MimsError as exc:
                last = exc
        else:
            raise DirectoryUnavailable(
                f"the directory went away mid-run and did not come back after "
                f"{self.retries + 1} attempts ({last}); rerun the sync: it converges"
            )
        self.reconnects += 1
        for op in unsent:
            op.resent = True
            self._send(op)


_DOWN = (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR, ldap.UNAVAILABLE, ldap.BUSY)


def _already_done(op: Op, exc: ldap.LDAPError) -> bool:
    """A resent write whose first copy had landed before the connection dropped."""
    if op.kind == "add":
        return isinstance(exc, ldap.ALREADY_EXISTS)
    if op.kind == "delete":
        return isinstance(exc, ldap.NO_SUCH_OBJECT)
    if op.kind == "modify" and any(m[0] == ldap.MOD_ADD for m in op.payload):
        # A modify is all or nothing: a value it adds being there already means it landed.
        return isinstance(exc, ldap.TYPE_OR_VALUE_EXISTS)
    if op.kind == "passwd":
        # The same password again: "in history" / "not being changed" means it is set.
        return isinstance(exc, ldap.CONSTRAINT_VIOLATION)
    return False
