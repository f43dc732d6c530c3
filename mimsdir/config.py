"""Configuration: one YAML file, validated once at load into typed, frozen objects.

Why so strict: a typo in a cron job's config (``max_disabel: 50``) must fail loudly on the first
run, not silently fall back to a default that disables a school. Every error names the key path.
Secrets never live in the YAML: only paths to files (or environment variables) that hold them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mimsdir.errors import ConfigError

DEFAULT_CONFIG = "config.yaml"
# Where scripts/bootstrap.sh builds slapd's password check module and its deny-list.
PWCHECK_BUILD_DIR = Path(__file__).resolve().parents[1] / "build" / "mims_pwcheck"


@dataclass(frozen=True)
class Argon2Params:
    """slapd's argon2 parameters (``directory.argon2_module`` makes argon2id, Debian's
    module argon2i). OWASP floor: m=19456 KiB, t>=2; 3 here, as argon2i needs."""

    m: int = 19456
    t: int = 3
    p: int = 1

    def validate(self, path: str) -> None:
        if self.m < 19456:
            raise ConfigError(f"{path}.m: must be at least 19456 (KiB), got {self.m}")
        if self.t < 3:
            raise ConfigError(f"{path}.t: must be at least 3, got {self.t}")
        if self.p < 1:
            raise ConfigError(f"{path}.p: must be at least 1, got {self.p}")


#: How the directory gets its TLS certificate (``ldap.tls.mode``).
TLS_MODES = ("off", "generate", "files")


@dataclass(frozen=True)
class TlsConfig:
    """TLS between every client and slapd, and between replicating providers (issue 10).

    ``mode`` says where slapd's certificate comes from: ``off`` (none), ``generate`` (a
    private CA made once by `directory up` in ``<state_dir>/tls/``, which devices are given
    with `mimsdir directory tls show`) or ``files`` (``cert_file`` + ``key_file``, e.g. from
    the school's or MOE's CA). Clients (sync, CLI, portal, replication) always verify the
    server's certificate against ``ca_file`` (generate: the project's CA; unset in files
    mode: the system's CAs), and start TLS on an ``ldap://`` URI when ``starttls`` is on
    (default: whenever ``mode`` is not off); an ``ldaps://`` URI is TLS from the first byte.

    ``require``: slapd answers nothing but StartTLS on a network connection without TLS (no
    bind, no password change, no search in clear); the host's root over ldapi is unaffected.
    ``ldaps_uri``: a second listener speaking TLS from the first byte (port 636 style).
    ``names``: more host names or addresses for the generated server certificate.
    """

    mode: str = "off"
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    require: bool = False
    starttls: bool | None = None
    ldaps_uri: str | None = None
    names: tuple[str, ...] = ()

    @staticmethod
    def from_yaml(value: Any, path: str) -> Any:
        """``tls: generate`` (or ``off``) is short for ``tls: {mode: generate}``; YAML reads a
        bare ``off`` or ``no`` as false, which means off here too."""
        if value is False:
            return {"mode": "off"}
        if isinstance(value, str):
            return {"mode": value}
        if isinstance(value, dict) and value.get("mode", "x") is False:
            return {**value, "mode": "off"}
        return value

    @property
    def on(self) -> bool:
        return self.mode != "off"

    @property
    def client_starttls(self) -> bool:
        """Clients start TLS on an ldap:// URI (never fall back to clear text)."""
        return self.on if self.starttls is None else self.starttls

    def validate(self, path: str) -> None:
        if self.mode not in TLS_MODES:
            raise ConfigError(f"{path}.mode: one of {', '.join(TLS_MODES)}, got {self.mode!r}")
        if self.mode == "files" and bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(f"{path}.key_file: cert_file and key_file go together")
        if self.mode != "files" and (self.cert_file or self.key_file):
            raise ConfigError(f"{path}.cert_file: only with mode: files")
        if self.require and not self.on:
            raise ConfigError(f"{path}.require: needs TLS (mode: generate or files)")
        if self.ldaps_uri is not None:
            if not self.on:
                raise ConfigError(f"{path}.ldaps_uri: needs TLS (mode: generate or files)")
            if not self.ldaps_uri.startswith("ldaps://") or any(c in self.ldaps_uri
                                                                for c in ' "'):
                raise ConfigError(f"{path}.ldaps_uri: not an ldaps:// URL: "
                                  f"{self.ldaps_uri!r}")
        for name in self.names:
            if not name or (any(c in name for c in " /:@") and not _is_ip(name)):
                raise ConfigError(f"{path}.names: not a host name or address: {name!r}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _uri_list(text: str) -> tuple[str, ...]:
    """The URIs of a list as libldap writes it: separated by spaces or commas."""
    return tuple(u for u in text.replace(",", " ").split() if u)


@dataclass(frozen=True)
class LdapConfig:
    # One URI, or several (a YAML list, or one string with spaces between them, as libldap
    # takes it): clients (sync, CLI, portal) try them in order and go on to the next when
    # one is unreachable. A host that runs a directory listens on the first.
    uri: str = "ldap://127.0.0.1:3389"
    base_dn: str = "dc=mims,dc=example"
    timeout: float = 10.0
    # Where the service accounts' password files are (one file per service: sync.pw, sspr.pw,
    # device.pw). Default: <directory.state_dir>/secrets, written by `directory up`.
    secrets_dir: str | None = None
    # Optional ldapi URL for the host's root (SASL EXTERNAL); default: the embedded directory's.
    ldapi_uri: str | None = None
    # Staff commands (student, qna, report, requests) act as: the host's root over ldapi when
    # admin_dn is unset (a school server running its own slapd), else this ICT admin's DN with
    # the password read from admin_password_file or $MIMS_ADMIN_PASSWORD.
    admin_dn: str | None = None
    admin_password_file: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)

    @staticmethod
    def from_yaml(value: Any, path: str) -> Any:
        """``uri: [ldap://a, ldap://b]`` is kept as libldap's form, ``ldap://a ldap://b``."""
        if isinstance(value, dict) and isinstance(value.get("uri"), list):
            items = value["uri"]
            if not items or not all(isinstance(u, str) for u in items):
                raise ConfigError(f"{path}.uri: expected a URI or a list of URIs")
            return {**value, "uri": " ".join(items)}
        return value

    @property
    def uris(self) -> tuple[str, ...]:
        """Every URI of ``uri``, in the order clients try them."""
        return _uri_list(self.uri)

    @property
    def listen_uri(self) -> str:
        """The first URI: where this host's slapd listens (`directory up`)."""
        return self.uris[0]

    def validate(self, path: str) -> None:
        if not self.uris:
            raise ConfigError(f"{path}.uri: expected a URI or a list of URIs")
        for uri in self.uris:
            if not uri.startswith(("ldap://", "ldaps://", "ldapi://")):
                raise ConfigError(f"{path}.uri: must start with ldap://, ldaps:// or ldapi://, "
                                  f"got {uri!r}")
        if len(self.uris) > 1 and any(u.startswith("ldapi://") for u in self.uris):
            raise ConfigError(f"{path}.uri: ldapi:// cannot be one of several URIs")
        if (self.tls.require and any(u.startswith("ldap://") for u in self.uris)
                and not self.tls.client_starttls):
            raise ConfigError(f"{path}.tls.starttls: must be on with require and an ldap:// "
                              f"uri (clients would send passwords in clear, and be refused)")
        if "=" not in self.base_dn:
            raise ConfigError(f"{path}.base_dn: not a DN: {self.base_dn!r}")
        if self.timeout <= 0:
            raise ConfigError(f"{path}.timeout: must be positive")


def canonical_ldap_url(uri: str) -> str | None:
    """``scheme://host[:port]`` in lower case, nothing after it; None if ``uri`` is not an
    ldap:// or ldaps:// URL of that shape (a path, DN, query, user or a bad port)."""
    from urllib.parse import urlsplit

    if any(c in uri for c in ' "\'\\,'):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username is not None or parts.password is not None):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


#: ``directory.replication.role``: a provider takes writes (multi-provider syncrepl with its
#: ``peers``); a consumer is a read-only replica of the ``providers`` (syncrepl refreshAndPersist).
ROLES = ("provider", "consumer")


@dataclass(frozen=True)
class ReplicationConfig:
    """Replication with slapd's own syncrepl (never a home-made one).

    A provider (the default role) lists the other providers in ``peers`` and has its own
    ``server_id``; all of them must hold the same ``secrets/`` (the replicator's password in
    particular): copy the first provider's secrets folder to the others before their first
    start. A consumer (``role: consumer``) lists the ``providers`` it replicates from and
    forwards writes to; it has no server id (it never hands out uid or gid numbers) and
    needs the providers' ``replicator.pw`` and ``chain.pw`` (docs/replication.md).
    """

    role: str = "provider"
    server_id: int = 0  # 0: replication off (a provider), always 0 on a consumer
    peers: tuple[str, ...] = ()
    # A consumer's providers: replicated from (syncrepl), and where writes go.
    providers: tuple[str, ...] = ()
    # On this provider's first start, create no base tree: take everything from the peers.
    join: bool = False
    retry: str = "5 10 30 +"

    @property
    def consumer(self) -> bool:
        return self.role == "consumer"

    @property
    def provider_urls(self) -> tuple[str, ...]:
        """``providers`` in one canonical form (``canonical_ldap_url``), the same in every
        place of a consumer's cn=config: slapo-chain finds the database of a referral's URL
        by comparing the text of the two, and a URL it does not find it follows with an
        anonymous connection in clear (slapd 2.5.13; docs/replication.md)."""
        return tuple(canonical_ldap_url(u) or u for u in self.providers)

    def validate(self, path: str) -> None:
        from mimsdir.posix import ID_STRIDE

        if self.role not in ROLES:
            raise ConfigError(f"{path}.role: one of {', '.join(ROLES)}, got {self.role!r}")
        for uri in self.providers:
            if canonical_ldap_url(uri) is None:
                raise ConfigError(f"{path}.providers: not an ldap:// or ldaps:// URL of the "
                                  f"form scheme://host[:port]: {uri!r}")
        if len(set(self.provider_urls)) != len(self.providers):
            raise ConfigError(f"{path}.providers: a provider is listed twice")
        if self.consumer:
            if not self.providers:
                raise ConfigError(f"{path}.providers: a consumer needs at least one provider")
            if self.server_id:
                raise ConfigError(f"{path}.server_id: a consumer has none (it never hands out "
                                  f"uid or gid numbers; server ids are the providers')")
            if self.peers:
                raise ConfigError(f"{path}.peers: a consumer has no peers; list its "
                                  f"providers in providers")
            if self.join:
                raise ConfigError(f"{path}.join: a consumer always takes everything from its "
                                  f"providers; leave join out")
            return
        if self.providers:
            raise ConfigError(f"{path}.providers: only for role: consumer (providers "
                              f"replicate each other through peers)")
        # slapd takes 1..4095; uidNumber/gidNumber values are interleaved by server id
        # (mimsdir/posix.py), which leaves room for ID_STRIDE - 1 providers.
        if self.server_id and not 1 <= self.server_id < ID_STRIDE:
            raise ConfigError(f"{path}.server_id: between 1 and {ID_STRIDE - 1} (uid and gid "
                              f"numbers are partitioned by server id, docs/directory.md)")
        if self.peers and not self.server_id:
            raise ConfigError(f"{path}.server_id: needed when peers are listed")
        for peer in self.peers:
            if not peer.startswith(("ldap://", "ldaps://")) or any(c in peer for c in ' "'):
                raise ConfigError(f"{path}.peers: not an ldap:// or ldaps:// URL: {peer!r}")


@dataclass(frozen=True)
class DirectoryConfig:
    """The embedded slapd that `mimsdir directory up` runs."""

    state_dir: str = "var/directory"
    argon2: Argon2Params = field(default_factory=Argon2Params)
    # MDB map size. Sparse on Linux: reserved address space, not disk. 500,000 students with
    # indexes fit in well under 4 GiB; the accesslog needs its own.
    max_size_mb: int = 8192
    accesslog_max_size_mb: int = 4096
    # Days an accesslog record is kept before slapd purges it.
    audit_retention_days: int = 180
    threads: int = 16
    # slapd -d log level: "none", "stats", or any olcLogLevel words, space separated.
    log_level: str = "none"
    slapd: str = "/usr/sbin/slapd"
    slapadd: str = "/usr/sbin/slapadd"
    module_path: str = "/usr/lib/ldap"
    schema_dir: str = "/etc/ldap/schema"
    # slapd's password check module (ppolicy pwdCheckModule) and the deny-list it reads
    # (pwdCheckModuleArg), both built by scripts/bootstrap.sh. Empty: no check module (only
    # the minimum length is checked; not for production).
    pwcheck_module: str = str(PWCHECK_BUILD_DIR / "mims_pwcheck.so")
    pwcheck_denylist: str = str(PWCHECK_BUILD_DIR / "denylist.txt")
    # slapd's argon2 password module: the project's (slapd-modules/mims_argon2.c on argon2's
    # reference code, SIMD chosen at load), built by scripts/bootstrap.sh: argon2id, a check
    # in a quarter (AVX-512F) to a half (AVX2) of the CPU time of Debian's module, whose
    # libargon2 has no SIMD.
    # Empty: Debian's module (argon2i) from module_path.
    argon2_module: str = str(PWCHECK_BUILD_DIR / "mims_argon2.so")
    replication: ReplicationConfig = field(default_factory=ReplicationConfig)

    def validate(self, path: str) -> None:
        self.argon2.validate(f"{path}.argon2")
        if self.max_size_mb < 10 or self.accesslog_max_size_mb < 10:
            raise ConfigError(f"{path}.max_size_mb: at least 10")
        if self.threads < 2:
            raise ConfigError(f"{path}.threads: at least 2")


#: The fewest failure times ppolicy keeps per entry (pwdMaxRecordedFailure; ppolicy raises it
#: to max_failures). It also bounds the failure count in slapd's growing delay,
#: ``pwdMinDelay << failures``.
RECORDED_FAILURES = 5
#: slapd 2.5 computes the delay in a C int: ``min_delay << failures`` must stay below 2**31.
_DELAY_INT_LIMIT = 2**31


@dataclass(frozen=True)
class PolicyConfig:
    """One ppolicy entry. Enforced by slapd, never by our Python.

    Wrong passwords make the next sign-in wait, briefly, instead of locking the account
    for long: after ``max_failures`` failures within ``failure_window_seconds``, slapd
    refuses every bind (at once, without checking the password) for ``lockout_seconds``.
    A classmate typing wrong passwords makes a child wait at most ``lockout_seconds``; a
    guesser gets ``max_failures + 1`` tries per ``lockout_seconds`` (slapd 2.5.13 forgets
    the failures when a wait ends). A correct sign-in forgets the failures.

    ``min_delay_seconds``/``max_delay_seconds`` are ppolicy's growing delay (pwdMinDelay,
    pwdMaxDelay: 1, 2, 4 ... seconds). Off, and refused by `directory up` on slapd 2.5.13
    (Debian 12): its ppolicy writes the delay's end time through an uninitialised buffer,
    and the first wrong password brings slapd down (see docs/security.md §2).
    """

    min_length: int = 8
    # Wrong passwords allowed within the window before a wait (0: never wait; at most 100,
    # NIST SP 800-63B's bound on consecutive failures before a throttle).
    max_failures: int = 5
    # The wait, in seconds: it ends by itself (a classmate must not lock a child out for
    # long). slapd 2.5.13 allows max_failures + 1 tries per wait after the first one.
    lockout_seconds: int = 120
    # Failures older than this are forgotten.
    failure_window_seconds: int = 3600
    # ppolicy's growing delay (0: off). Needs a slapd newer than 2.5.13, see above.
    min_delay_seconds: int = 0
    max_delay_seconds: int = 0
    history: int = 10
    must_change_after_reset: bool = True

    def validate(self, path: str) -> None:
        if self.min_length < 4:
            raise ConfigError(f"{path}.min_length: at least 4")
        if self.max_failures < 0 or self.history < 0:
            raise ConfigError(f"{path}: max_failures and history cannot be negative")
        if self.max_failures > 100:
            raise ConfigError(f"{path}.max_failures: at most 100 (NIST SP 800-63B)")
        if self.max_failures and self.lockout_seconds <= 0:
            raise ConfigError(f"{path}.lockout_seconds: must be positive when lockout is on")
        if self.failure_window_seconds < 1:
            raise ConfigError(f"{path}.failure_window_seconds: at least 1")
        if self.min_delay_seconds < 0:
            raise ConfigError(f"{path}.min_delay_seconds: cannot be negative")
        if self.min_delay_seconds and not (
            self.min_delay_seconds <= self.max_delay_seconds <= 86400
        ):
            raise ConfigError(f"{path}.max_delay_seconds: between min_delay_seconds and 86400")
        if self.min_delay_seconds and self.min_delay_seconds << self.max_shift >= _DELAY_INT_LIMIT:
            most = 2 + (_DELAY_INT_LIMIT - 1).bit_length() - self.min_delay_seconds.bit_length()
            raise ConfigError(
                f"{path}.max_failures: at most {most} (or 0) with min_delay_seconds "
                f"{self.min_delay_seconds}: slapd 2.5 computes min_delay << failures in a "
                f"32-bit int"
            )

    @property
    def max_shift(self) -> int:
        """The largest failure count slapd shifts the delay by: the failures it keeps, less
        the ones that lock instead of delaying."""
        if self.max_failures:
            return max(0, self.max_failures - 2)
        return RECORDED_FAILURES

    @property
    def recorded_failures(self) -> int:
        """pwdMaxRecordedFailure: what ppolicy would use anyway, written out."""
        return max(self.max_failures, RECORDED_FAILURES)


@dataclass(frozen=True)
class PoliciesConfig:
    lower_primary: PolicyConfig = field(default_factory=PolicyConfig)
    upper_primary: PolicyConfig = field(default_factory=PolicyConfig)
    staff: PolicyConfig = field(
        default_factory=lambda: PolicyConfig(min_length=10, lockout_seconds=300, history=12)
    )


@dataclass(frozen=True)
class SyncConfig:
    """Roster sync guards (design-notes §7)."""

    # A count ("50") or a percentage of the scope ("5%").
    max_disable: str = "5%"
    # Refuse when a school's row count fell by more than this since the last good run.
    max_shrink: str = "10%"
    retention_days: int = 365
    google_ou_pattern: str = (
        r"^/Students/(?P<school>[^/]+)/(?P<level>[^/]+)/(?P<class>[^/]+)$"
    )
    allowed_email_domains: tuple[str, ...] = ()
    slips_dir: str = "var/slips"
    # The run lock and the row counts of the last successful run (for max_shrink).
    state_dir: str = "var/sync"
    # Writes in flight at once (python-ldap asynchronous operations).
    window: int = 32
    # Retries of a write while the directory is unreachable, with exponential backoff.
    retries: int = 4

    def validate(self, path: str) -> None:
        for key in ("max_disable", "max_shrink"):
            value = getattr(self, key)
            try:
                parse_limit(value)
            except ValueError as exc:
                raise ConfigError(f"{path}.{key}: {exc}") from None
        if self.retention_days < 1:
            raise ConfigError(f"{path}.retention_days: at least 1")
        if not 1 <= self.window <= 1024:
            raise ConfigError(f"{path}.window: between 1 and 1024")
        if self.retries < 0:
            raise ConfigError(f"{path}.retries: cannot be negative")


@dataclass(frozen=True)
class PosixConfig:
    """What students and staff carry for device sign-in (posixAccount, mimsdir/posix.py)."""

    # {school} is the school code, {uid} the student (or staff) ID, both lower-case.
    home_template: str = "/home/{school}/{uid}"
    # Staff: {school} is their school code, or "staff" when they have none.
    staff_home_template: str = "/home/staff/{uid}"
    shell: str = "/bin/bash"
    # The first uidNumber and gidNumber handed out; numbers are first + n * 64 + server id.
    uid_min: int = 1000000
    gid_min: int = 900000

    def validate(self, path: str) -> None:
        from mimsdir.posix import MIN_FIRST_ID, shell_problem, template_problem

        for key in ("home_template", "staff_home_template"):
            problem = template_problem(getattr(self, key))
            if problem:
                raise ConfigError(f"{path}.{key}: {problem}, got {getattr(self, key)!r}")
        problem = shell_problem(self.shell)
        if problem:
            raise ConfigError(f"{path}.shell: {problem}, got {self.shell!r}")
        for key in ("uid_min", "gid_min"):
            value = getattr(self, key)
            if not MIN_FIRST_ID <= value <= 2_000_000_000:
                raise ConfigError(f"{path}.{key}: between {MIN_FIRST_ID} (above every "
                                  f"device's local ids) and 2000000000, got {value}")


@dataclass(frozen=True)
class QuestionConfig:
    id: str
    text: str


@dataclass(frozen=True)
class QnaConfig:
    """Challenge questions and answers (argon2id, hashed by mimsdir)."""

    # Empty: the built-in catalogue (mimsdir.challenge.DEFAULT_QUESTIONS).
    questions: tuple[QuestionConfig, ...] = ()
    # How many a student registers, and how many a reset asks.
    register_count: int = 3
    ask_count: int = 2
    min_answer_length: int = 3
    # argon2id parameters; OWASP's floor is m=19456 KiB, t=2, p=1.
    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1

    def validate(self, path: str) -> None:
        if self.memory_kib < 19456 or self.time_cost < 2 or self.parallelism < 1:
            raise ConfigError(f"{path}: argon2id below OWASP's minimum (m=19456, t=2, p=1)")
        if not 1 <= self.ask_count <= self.register_count:
            raise ConfigError(f"{path}.ask_count: between 1 and register_count")
        if self.questions and len(self.questions) < self.register_count:
            raise ConfigError(f"{path}.questions: fewer than register_count")
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{path}.questions: duplicate id")


@dataclass(frozen=True)
class CredentialsConfig:
    """Default passwords issued by ICT resets and by the sync for new students."""

    # At least the lower-primary policy's min_length; word + digits, typeable by a child.
    default_password_length: int = 9

    def validate(self, path: str) -> None:
        if self.default_password_length < 8:
            raise ConfigError(f"{path}.default_password_length: at least 8")


@dataclass(frozen=True)
class PortalConfig:
    """The SSPR portal (`mimsdir sspr serve`)."""

    listen: str = "127.0.0.1:8080"
    # The portal's public address, as browsers and applications reach it (through nginx):
    # the OpenID Connect issuer and the base of the SAML IdP's URLs. https, except on a
    # loopback host (the demo).
    public_url: str = "http://127.0.0.1:8080"
    threads: int = 8
    # Signs the session cookie; generated once into <secrets_dir>/portal.key when unset.
    # Several portal instances behind one address must share the same file.
    secret_key_file: str | None = None
    # Mark the session cookie Secure: set true whenever the portal is served over TLS.
    secure_cookies: bool = False
    # Proxies in front of the portal whose X-Forwarded-For/-Proto to trust (0: none), and the
    # address the nearest one connects from: waitress believes those headers only from that
    # peer, so a client reaching the port directly cannot choose its own address.
    trusted_proxies: int = 0
    trusted_proxy_address: str = "127.0.0.1"
    # /metrics is served here, never on `listen` (its directory timings tell an outsider
    # which login IDs exist); null turns it off.
    metrics_listen: str | None = "127.0.0.1:9108"
    idle_timeout_minutes: int = 15
    # A session ends this long after sign-in, however active (absolute lifetime).
    session_hours: int = 8
    # SSPR back-off after each wrong set of answers: 1st, 2nd, 3rd, 4th and later failures.
    backoff_minutes: tuple[int, ...] = (1, 5, 15, 60)
    # One SSPR failure is forgiven per this many minutes without a failure.
    sspr_decay_minutes: int = 60
    # One budget across every form post, per client address (browsers never signed in on
    # before). A class of 40 behind one school NAT signing in at once, with typos, stays far
    # below; a guessing script does not.
    address_limit: str = "120 per minute; 1200 per hour"
    # The same, per familiar browser (one that has signed in before: it has its own budget,
    # so a script exhausting the school address does not stop it).
    device_limit: str = "30 per minute; 300 per hour"
    # Sign-in and SSPR attempts per login ID (counted before they are checked), apart for
    # each browser it was used on before and for all other browsers together.
    account_limit: str = "10 per 15 minutes"
    # Where the counters live: memory:// per instance, or a shared redis:// / memcached://
    # URI for several instances.
    rate_limit_storage: str = "memory://"
    # Security events (JSON lines: sign-ins, failures, resets, teacher actions) and the
    # access log; relative to the config file. Created 0600.
    security_log: str = "var/portal-security.jsonl"
    access_log: str = "var/portal-access.log"
    languages: tuple[str, ...] = ("en", "zh", "ms", "ta")

    def validate(self, path: str) -> None:
        for key, where in (("listen", self.listen), ("metrics_listen", self.metrics_listen)):
            host, _, port = (where or "h:0").rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"{path}.{key}: expected host:port, got {where!r}")
        if self.metrics_listen == self.listen:
            raise ConfigError(f"{path}.metrics_listen: must not be the public listen address")
        if self.trusted_proxies < 0:
            raise ConfigError(f"{path}.trusted_proxies: cannot be negative")
        try:
            ipaddress.ip_address(self.trusted_proxy_address)
        except ValueError:
            raise ConfigError(f"{path}.trusted_proxy_address: one IP address (the proxy's), "
                              f"got {self.trusted_proxy_address!r}") from None
        if self.threads < 1 or self.idle_timeout_minutes < 1:
            raise ConfigError(f"{path}: threads and idle_timeout_minutes at least 1")
        if not self.backoff_minutes or any(m < 0 for m in self.backoff_minutes):
            raise ConfigError(f"{path}.backoff_minutes: a list of minutes, none negative")
        if self.session_hours < 1 or self.sspr_decay_minutes < 1:
            raise ConfigError(f"{path}: session_hours and sspr_decay_minutes at least 1")
        from limits import parse_many

        for key in ("address_limit", "device_limit", "account_limit"):
            try:
                parse_many(getattr(self, key))
            except ValueError:
                raise ConfigError(f"{path}.{key}: expected limits like '10 per 15 minutes', "
                                  f"got {getattr(self, key)!r}") from None
        if "en" not in self.languages:
            raise ConfigError(f"{path}.languages: must include en")
        problem = public_url_problem(self.public_url)
        if problem:
            raise ConfigError(f"{path}.public_url: {problem}, got {self.public_url!r}")


def public_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the portal's public address (the OIDC issuer), or None.

    OpenID Connect Discovery: an https URL with no query or fragment, compared exactly by
    relying parties, so no trailing slash either (the endpoints are appended to it). Plain
    http only on a loopback host, where nothing leaves the machine.
    """
    from urllib.parse import urlsplit

    from mimsdir.apps.model import is_loopback_host

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a bad port)
    except ValueError:
        return "not a URL with a valid port"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "an absolute https:// URL is needed"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "must be https:// (http only for 127.0.0.1, [::1] or localhost)"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "no query or fragment allowed"
    if parts.username is not None or parts.password is not None:
        return "no user name or password allowed"
    if url.endswith("/"):
        return "no trailing slash (the issuer is compared exactly)"
    return None


@dataclass(frozen=True)
class OidcConfig:
    """The portal's OpenID Connect provider (issue 9); its issuer is ``portal.public_url``."""

    # A rotated signing key stays in the JWKS this long, so tokens it signed still verify
    # and relying parties that cached the JWKS still find it.
    key_grace_hours: int = 24
    access_token_minutes: int = 5
    refresh_token_days: int = 30
    # An authorization code must be redeemed within this (RFC 6749 §4.1.2: at most 10 minutes).
    code_seconds: int = 60

    def validate(self, path: str) -> None:
        if not 1 <= self.access_token_minutes <= 60:
            raise ConfigError(f"{path}.access_token_minutes: between 1 and 60")
        if not 1 <= self.refresh_token_days <= 365:
            raise ConfigError(f"{path}.refresh_token_days: between 1 and 365")
        if not 10 <= self.code_seconds <= 600:
            raise ConfigError(f"{path}.code_seconds: between 10 and 600 (RFC 6749: at most "
                              f"10 minutes)")
        # At least an hour, so at least the longest access token's life (60 minutes): a
        # rotated key stays published while the tokens it signed live.
        if not 1 <= self.key_grace_hours <= 24 * 90:
            raise ConfigError(f"{path}.key_grace_hours: between 1 and 2160")


@dataclass(frozen=True)
class CliConfig:
    # The CLI's own record of which operator (OS user) ran which command (JSON lines).
    operator_log: str = "var/operator-log.jsonl"


def parse_limit(value: str) -> tuple[float, bool]:
    """'5%' -> (5.0, True); '50' -> (50.0, False). Raises ValueError naming the problem."""
    text = str(value).strip()
    is_percent = text.endswith("%")
    number = text[:-1].strip() if is_percent else text
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(
            f"expected a count like 50 or a percentage like 5%, got {value!r}"
        ) from None
    if amount < 0 or (is_percent and amount > 100):
        raise ValueError(f"out of range: {value!r}")
    return amount, is_percent


@dataclass(frozen=True)
class Config:
    ldap: LdapConfig = field(default_factory=LdapConfig)
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    policies: PoliciesConfig = field(default_factory=PoliciesConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    qna: QnaConfig = field(default_factory=QnaConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    cli: CliConfig = field(default_factory=CliConfig)
    portal: PortalConfig = field(default_factory=PortalConfig)
    oidc: OidcConfig = field(default_factory=OidcConfig)
    posix: PosixConfig = field(default_factory=PosixConfig)
    # The folder the config file lives in: relative paths in it are relative to this.
    base_path: str = "."

    def validate(self, path: str) -> None:
        r = self.directory.replication
        own = {canonical_ldap_url(u) for u in (self.ldap.listen_uri, self.ldap.tls.ldaps_uri)
               if u}
        for uri in r.provider_urls:
            if uri in own:
                raise ConfigError(f"directory.replication.providers: {uri} is this consumer's "
                                  f"own listener (ldap.uri); list the providers it replicates "
                                  f"from")

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file, not the cwd (cron)."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_path) / p

    @property
    def state_dir(self) -> Path:
        return self.path(self.directory.state_dir).resolve()

    @property
    def secrets_dir(self) -> Path:
        if self.ldap.secrets_dir:
            return self.path(self.ldap.secrets_dir).resolve()
        return self.state_dir / "secrets"

    @property
    def tls_dir(self) -> Path:
        """Where ``ldap.tls.mode: generate`` keeps the project's CA and slapd's certificate."""
        return self.state_dir / "tls"

    @property
    def tls_ca_file(self) -> Path | None:
        """The CA that clients verify slapd's certificate with: ``ldap.tls.ca_file``, else the
        generated CA, else None (the system's trusted CAs)."""
        tls = self.ldap.tls
        if tls.ca_file:
            return self.path(tls.ca_file).resolve()
        if tls.mode == "generate":
            return self.tls_dir / "ca.crt"
        return None

    @property
    def ldapi_uri(self) -> str:
        if self.ldap.ldapi_uri:
            return self.ldap.ldapi_uri
        from urllib.parse import quote

        return "ldapi://" + quote(str(self.state_dir / "ldapi"), safe="")


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a YAML mapping; unknown keys and wrong types name the key."""
    from_yaml = getattr(cls, "from_yaml", None)
    if from_yaml is not None:
        data = from_yaml(data, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields or key == "base_path":
            known = ", ".join(sorted(k for k in fields if k != "base_path"))
            raise ConfigError(f"{key_path}: unknown key (known here: {known})")
        kwargs[key] = _coerce(hints[key], value, key_path)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate:
        validate(path)
    return obj


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)  # type: ignore[arg-type]
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{path}: expected text, got {type(value).__name__}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {hint!r}")  # pragma: no cover


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load ``--config FILE``, else ``$MIMS_CONFIG``, else ``./config.yaml``, else defaults.

    A missing file that was named explicitly is an error; a missing ./config.yaml is not
    (defaults suit the embedded demo directory).
    """
    explicit = path or os.environ.get("MIMS_CONFIG")
    cfg_path = Path(explicit) if explicit else Path(DEFAULT_CONFIG)
    if not cfg_path.exists():
        if explicit:
            raise ConfigError(f"{cfg_path}: configuration file not found")
        return Config(base_path=str(Path.cwd()))
    try:
        data = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{cfg_path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{cfg_path}:{where}: not valid YAML") from None
    try:
        cfg = _build(Config, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{cfg_path}: {exc}") from None
    return dataclasses.replace(cfg, base_path=str(cfg_path.resolve().parent))


def read_secret(path: Path, what: str) -> str:
    """Read a one-line secret file; the error names the file, never the content."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None
