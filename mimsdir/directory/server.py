"""Start, stop and inspect the embedded slapd that lives in ``directory.state_dir``.

``up`` rebuilds cn=config from ``schema/`` every time it starts slapd (data is kept), so the
running server is always what the templates and config.yaml say; it is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ldap

from mimsdir.config import Config
from mimsdir.connect import network_conn
from mimsdir.directory import tls
from mimsdir.directory.slapdconf import (
    DECOY,
    OUS,
    SERVICES,
    Dns,
    argon2_module,
    decoy_entry,
    policies,
    probe_entry,
    render_config,
    render_tree,
    service_authz,
)
from mimsdir.errors import (
    ConfigError,
    DirectoryError,
    DirectoryUnavailable,
    MimsError,
    TlsRefused,
)
from mimsdir.ldapio import Conn, filter_eq, first

READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    uri: str
    ldapi_uri: str
    state_dir: Path
    students: int | None = None
    entries: int | None = None
    role: str = "provider"
    #: The base entry's contextCSN values: how far this server's copy goes, one value per
    #: provider (server id) whose changes it holds. Servers in step show the same values.
    context_csns: tuple[str, ...] = ()


def _pid(cfg: Config) -> int | None:
    """The running slapd's pid from its pid file, or None if it is not running."""
    pid_file = cfg.state_dir / "slapd.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A recycled pid belonging to another program is not our slapd.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"slapd" in cmdline and str(cfg.state_dir).encode() in cmdline else None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def service_password_file(cfg: Config, name: str) -> Path:
    return cfg.secrets_dir / f"{name}.pw"


#: What a read-only consumer needs of the providers' secrets: the replicator's password (to
#: replicate) and the chain account's (to forward writes). Nothing else: a server near the
#: schools holds no sync, portal or device password.
CONSUMER_SECRETS = ("replicator", "chain")


def _ensure_service_passwords(cfg: Config) -> dict[str, str]:
    """Generate each service account's password once, into a 0600 file; never print it.

    A consumer generates none: it must hold the providers' own (``CONSUMER_SECRETS``)."""
    cfg.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(cfg.secrets_dir, 0o700)
    out = {}
    if cfg.directory.replication.consumer:
        for name in CONSUMER_SECRETS:
            path = service_password_file(cfg, name)
            if not path.is_file():
                raise ConfigError(
                    f"{path}: missing: a consumer uses the providers' {name} password; copy "
                    f"{', '.join(n + '.pw' for n in CONSUMER_SECRETS)} from a provider's "
                    f"secrets folder (docs/replication.md, \"Add a consumer\")")
            out[name] = path.read_text(encoding="utf-8").strip()
        return out
    for name in SERVICES:
        path = service_password_file(cfg, name)
        if not path.exists():
            # No trailing newline: `ldapsearch -y FILE` uses the file's whole content.
            _write_private(path, secrets.token_urlsafe(24))
        out[name] = path.read_text(encoding="utf-8").strip()
    return out


def decoy_password_hash(cfg: Config) -> str:
    """A fresh random password for the decoy account, hashed like a student's; the clear
    text is dropped at once, so nobody can ever sign in as the decoy."""
    return hash_password(cfg, secrets.token_urlsafe(32))


def check_module_files(cfg: Config) -> None:
    """The modules the project builds must exist before slapd may load them: without the
    argon2 module slapd does not start; without the check module and its deny-list every
    student's own password change would be refused ("mims:unavailable")."""
    d = cfg.directory
    files = [("argon2_module", d.argon2_module)] if d.argon2_module else []
    if d.pwcheck_module:
        files += [("pwcheck_module", d.pwcheck_module), ("pwcheck_denylist", d.pwcheck_denylist)]
    for key, value in files:
        path = cfg.path(value).resolve()
        if not path.is_file():
            raise ConfigError(f"directory.{key}: {path} not found (scripts/bootstrap.sh, run "
                              f"by `make install`, builds it; an empty {key} turns it off)")


#: The last slapd release whose ppolicy delay (pwdMinDelay) must not be used: 2.5.13 writes the
#: delay's end time (pwdAccountTmpLockoutEnd) through an uninitialised berval
#: (servers/slapd/overlays/ppolicy.c, ppolicy_bind_response), and a wrong password brings
#: slapd down (an assertion in entry_schema_check). Debian 12 ships 2.5.13.
LAST_SLAPD_WITHOUT_SAFE_DELAYS = (2, 5, 13)


def slapd_version(cfg: Config) -> tuple[int, int, int] | None:
    """The installed slapd's release, from ``slapd -VV`` (None if it cannot be told)."""
    res = subprocess.run([cfg.directory.slapd, "-VV"], capture_output=True, text=True,
                         check=False)
    match = re.search(r"slapd (\d+)\.(\d+)\.(\d+)", res.stdout + res.stderr)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check_delays_supported(cfg: Config) -> None:
    """Refuse ppolicy's growing delay on a slapd whose delay code crashes it."""
    pol = cfg.policies
    named = [(name, p) for name, p in (("lower_primary", pol.lower_primary),
                                       ("upper_primary", pol.upper_primary),
                                       ("staff", pol.staff)) if p.min_delay_seconds]
    if not named:
        return
    version = slapd_version(cfg)
    if version is None or version <= LAST_SLAPD_WITHOUT_SAFE_DELAYS:
        shown = ".".join(map(str, version)) if version else "unknown"
        raise ConfigError(
            f"policies.{named[0][0]}.min_delay_seconds: slapd {shown} cannot use ppolicy's "
            f"growing delay (its pwdMinDelay code crashes slapd on a wrong password); set it "
            f"to 0 and use max_failures/lockout_seconds (docs/security.md §2)")


def hash_password(cfg: Config, password: str) -> str:
    """Hash with slappasswd and the server's own argon2 module and parameters.

    The secret goes through a 0600 temp file (``-T``), never the command line.
    """
    a = cfg.directory.argon2
    with tempfile.NamedTemporaryFile("w", dir=cfg.secrets_dir, delete=False) as fh:
        fh.write(password)
        secret_path = fh.name
    try:
        res = subprocess.run(
            ["/usr/sbin/slappasswd", "-o", f"module-path={cfg.directory.module_path}",
             "-o", f"module-load={argon2_module(cfg)} m={a.m} t={a.t} p={a.p}",
             "-h", "{ARGON2}", "-T", secret_path],
            capture_output=True, text=True, check=False,
        )
    finally:
        os.unlink(secret_path)
    if res.returncode != 0:
        raise DirectoryError(f"slappasswd failed: {res.stderr.strip()[:200]}")
    return res.stdout.strip()


def _run(cmd: list[str], what: str) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-8:])
        raise DirectoryError(f"{what} failed (exit {res.returncode}):\n{tail}")
    return res.stdout + res.stderr


def build(cfg: Config) -> None:
    """(Re)write cn=config from the templates; create the databases on first use."""
    state = cfg.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state, 0o700)
    for sub in ("data", "accesslog"):
        (state / sub).mkdir(exist_ok=True, mode=0o700)
    config_dir = state / "slapd.d"
    passwords = _ensure_service_passwords(cfg)
    new_config = render_config(cfg, passwords.get("replicator"), passwords.get("chain"))
    config_ldif = state / "config.ldif"
    if not config_dir.exists() or not config_ldif.exists() or config_ldif.read_text() != new_config:
        tmp_dir = state / "slapd.d.new"
        _rmtree(tmp_dir)
        tmp_dir.mkdir(mode=0o700)
        _write_private(config_ldif, new_config)
        _run([cfg.directory.slapadd, "-n0", "-F", str(tmp_dir), "-l", str(config_ldif)],
             "slapadd of cn=config")
        _rmtree(config_dir)
        tmp_dir.rename(config_dir)
    # -u: check the configuration without opening the databases (absent on first run)
    _run([cfg.directory.slapd, "-Ttest", "-u", "-F", str(config_dir)], "slapd -Ttest")
    r = cfg.directory.replication
    if not (state / "data" / "data.mdb").exists() and not r.join and not r.consumer:
        # A joining provider or a consumer takes everything from the others: a tree of its
        # own would make conflicting twins.
        hashed = {name: hash_password(cfg, pw) for name, pw in passwords.items()}
        hashed[DECOY] = decoy_password_hash(cfg)
        tree = state / "tree.ldif"
        _write_private(tree, render_tree(cfg, hashed))
        try:
            _run([cfg.directory.slapadd, "-F", str(config_dir), "-b", cfg.ldap.base_dn, "-l",
                  str(tree)], "slapadd of the base tree")
        finally:
            tree.unlink()


def config_is_current(cfg: Config) -> bool:
    """Is the running slapd's cn=config what config.yaml renders now? (`up` on a running
    directory changes nothing in cn=config: a changed TLS setting needs down + up.)"""
    def secret(name: str) -> str | None:
        path = service_password_file(cfg, name)
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    try:
        rendered = render_config(cfg, secret("replicator"), secret("chain"))
        return (cfg.state_dir / "config.ldif").read_text(encoding="utf-8") == rendered
    except (OSError, ValueError, ConfigError):
        return False


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _listen_urls(cfg: Config) -> str:
    urls = [cfg.ldapi_uri]
    if not cfg.ldap.listen_uri.startswith("ldapi://"):
        urls.insert(0, cfg.ldap.listen_uri.rstrip("/") + "/")
    if cfg.ldap.tls.ldaps_uri:
        urls.insert(1, cfg.ldap.tls.ldaps_uri.rstrip("/") + "/")
    return " ".join(urls)


def up(cfg: Config) -> tuple[Status, bool]:
    """Start slapd if it is not running. Returns (status, started_now).

    If anything fails after slapd was started (it never becomes ready, the policies cannot be
    written, ...), the slapd started here is stopped before the error is raised: a failed
    ``up`` leaves no half-configured directory running.
    """
    check_module_files(cfg)
    check_delays_supported(cfg)
    pid = _pid(cfg)
    if pid is not None:
        ensure_policies(cfg)
        return status(cfg), False
    tls.prepare(cfg)
    build(cfg)
    state = cfg.state_dir
    log = state / "slapd.log"
    with contextlib.suppress(FileNotFoundError):
        (state / "ldapi").unlink()
    # Level names are accepted; "none" still logs what slapd always logs (a port in use, a
    # database that cannot open), which "-d 0" would swallow.
    debug = cfg.directory.log_level.replace(" ", ",")
    cmd = [cfg.directory.slapd, "-F", str(state / "slapd.d"), "-h", _listen_urls(cfg),
           "-d", debug]
    # slapd stays in the foreground (-d) so its log goes to our file; the shell detaches it
    # from this process so it outlives the CLI (no zombie, no Popen to reap) and tells us
    # its pid, so a slapd that dies at start-up is noticed at once.
    started = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" >>"$MIMS_SLAPD_LOG" 2>&1 </dev/null & echo $!', "sh",
         *cmd],
        env={**os.environ, "MIMS_SLAPD_LOG": str(log)}, check=True, capture_output=True,
        text=True,
    )
    new_pid = int(started.stdout.strip())
    try:
        _wait_ready(cfg, log, new_pid)
        ensure_policies(cfg)
    except BaseException:
        _stop_started(cfg, new_pid)
        raise
    return status(cfg), True


def _stop_started(cfg: Config, pid: int, timeout: float = 30.0) -> None:
    """Stop the slapd this ``up`` started, by the pid the shell reported (its pid file may
    not exist yet when start-up failed early)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (cfg.state_dir / "slapd.pid").unlink()


def ensure_policies(cfg: Config) -> list[str]:
    """Make the ppolicy entries say what config.yaml says (they live in the data, not in
    cn=config, so a rebuilt cn=config alone would not carry a changed lockout duration)."""
    dns = Dns(cfg.ldap.base_dn)
    changed: list[str] = []
    if cfg.directory.replication.consumer:
        # A consumer's data is the providers': the policies arrive by replication (and the
        # host's root could not write them here anyway).
        return changed
    replicated = bool(cfg.directory.replication.peers)
    with root_conn(cfg) as c:
        if replicated and c.get(dns.base, ["1.1"], "looking for the base entry") is None:
            # A joining provider still waits for its first copy from the peers: adding
            # entries here would make conflicting twins of the peers' ones.
            return changed
        for ou in OUS:
            ou_dn = f"ou={ou},{dns.base}"
            if not replicated and c.get(ou_dn, ["1.1"], f"looking for ou={ou}") is None:
                # A directory made before this subtree existed (an upgrade).
                c.add(ou_dn, {"objectClass": [b"organizationalUnit"], "ou": [ou.encode()]},
                      f"adding ou={ou}")
                changed.append(f"ou={ou}")
        for name in SERVICES:
            dn = dns.service(name)
            if not replicated and c.get(dn, ["1.1"], f"looking for the {name} service") is None:
                # A directory made before this service existed (an upgrade).
                pw = hash_password(cfg, _ensure_service_passwords(cfg)[name])
                c.add(dn, {"objectClass": [b"applicationProcess", b"simpleSecurityObject"],
                           "cn": [name.encode()], "userPassword": [pw.encode()],
                           "pwdPolicySubentry": [dns.policy("services").encode()]},
                      f"adding the {name} service account")
                changed.append(name)
        for name, attrs in policies(cfg).items():
            dn = dns.policy(name)
            current = c.get(dn, [*attrs, *_OPTIONAL_POLICY_ATTRS], f"reading the {name} policy")
            if current is None and replicated:
                continue
            if current is None:
                c.add(dn, {k: [v.encode() for v in vs] for k, vs in attrs.items()},
                      f"adding the {name} policy")
                changed.append(name)
                continue
            mods = _policy_mods(current, attrs)
            if mods:
                c.modify(dn, mods, f"updating the {name} policy")
                changed.append(name)
        probe_dn = dns.idpool("probe")
        if not replicated and c.get(probe_dn, ["1.1"], "looking for the id pool probe") is None:
            # A directory made before the id pools (mimsdir/directory/idpool.py).
            c.add(probe_dn, {k: [v.encode() for v in vs] for k, vs in probe_entry().items()},
                  "adding the id pool probe")
            changed.append("probe")
        decoy_dn = dns.service(DECOY)
        if not replicated and c.get(decoy_dn, ["1.1"], "looking for the decoy") is None:
            # Added after its policy (above), which it names.
            c.add(decoy_dn, {k: [v.encode() for v in vs]
                             for k, vs in decoy_entry(dns, decoy_password_hash(cfg)).items()},
                  "adding the decoy account")
            changed.append(DECOY)
        for name, authz in service_authz(dns).items():
            dn = dns.service(name)
            entry = c.get(dn, ["authzTo"], f"reading the {name} service's authzTo")
            if entry is None and replicated:
                # A joining provider whose first copy has not brought the service yet: the
                # peers' copy carries its authzTo.
                continue
            entry = entry or {}
            # authzTo is X-ORDERED 'VALUES' in slapd 2.5: a value written over LDAP comes back
            # as "{0}...". Without the prefix it is in the form slapd stores (service_authz),
            # so an unchanged authzTo is never rewritten (each rewrite is a replicated write).
            have = sorted(re.sub(r"^\{\d+\}", "", v.decode())
                          for vs in entry.values() for v in vs)
            if have != sorted(authz):
                c.modify(dn, [(ldap.MOD_REPLACE, "authzTo", [v.encode() for v in authz])],
                         f"updating the {name} service's authzTo")
                changed.append(f"{name}-authz")
    return changed


def _policy_mods(current: dict[str, list[bytes]], want_attrs: dict[str, list[str]]
                 ) -> list[tuple[int, str, list[bytes]]]:
    """The modify list that makes a policy entry say what the config says. Object classes
    are only ever added (pwdPolicyChecker, for the check module's attributes, comes first);
    the check module's attributes are removed when the config turns it off."""
    mods: list[tuple[int, str, list[bytes]]] = []

    def have(key: str) -> list[str]:
        return [v.decode() for k, vs in current.items() if k.lower() == key.lower() for v in vs]

    missing = [oc for oc in want_attrs.get("objectClass", [])
               if oc.lower() not in {h.lower() for h in have("objectClass")}]
    if missing:
        mods.append((ldap.MOD_ADD, "objectClass", [oc.encode() for oc in missing]))
    for key, want in want_attrs.items():
        if key != "objectClass" and sorted(have(key)) != sorted(want):
            mods.append((ldap.MOD_REPLACE, key, [v.encode() for v in want]))
    for key in _OPTIONAL_POLICY_ATTRS:  # the check module was turned off
        if key not in want_attrs and have(key):
            mods.append((ldap.MOD_REPLACE, key, []))
    return mods


#: Policy attributes the config may stop setting, removed then.
_OPTIONAL_POLICY_ATTRS = ("pwdCheckModule", "pwdCheckModuleArg")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # reparented to init, an exited slapd may linger as a zombie for a moment
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_ready(cfg: Config, log: Path, pid: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not _alive(pid):
            last = DirectoryError("slapd exited at start-up")
            break
        try:
            with Conn(cfg.ldapi_uri, timeout=2) as c:
                c.bind_external()
                # Every network listener answers, over TLS as clients will use it: a
                # certificate that clients refuse fails `up` here.
                for uri in (cfg.ldap.listen_uri, cfg.ldap.tls.ldaps_uri):
                    if uri and not uri.startswith("ldapi://"):
                        with network_conn(cfg, uri=uri, timeout=2) as tcp:
                            tcp.whoami()
                if _pid(cfg) is not None:
                    return
        except TlsRefused as exc:
            # slapd answers on ldapi, so its listeners are open: a certificate that clients
            # refuse will not get better by waiting.
            last = exc
            break
        except Exception as exc:  # not up yet: retry until the deadline
            last = exc
        time.sleep(0.1)
    tail = ""
    with contextlib.suppress(OSError):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise DirectoryUnavailable(
        f"slapd did not become ready ({last}); log {log}:\n{tail}"
    )


def down(cfg: Config, timeout: float = 30.0) -> bool:
    """Stop slapd by its pid file. Returns False if it was not running."""
    pid = _pid(cfg)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pid(cfg) is None:
            break
        time.sleep(0.05)
    else:
        # MDB is crash-safe: a kill loses nothing committed.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(FileNotFoundError):
        (cfg.state_dir / "slapd.pid").unlink()
    return True


def status(cfg: Config, count_students: bool = False) -> Status:
    """Whether slapd runs, and what it holds. The number of entries comes from slapd's
    monitor backend (``olmMDBEntries``): the same answer for ten entries or half a million,
    in a millisecond. Counting students means paging through every one of them (seconds at
    national size): only when asked."""
    pid = _pid(cfg)
    st = Status(running=pid is not None, pid=pid, uri=cfg.ldap.listen_uri, ldapi_uri=cfg.ldapi_uri,
                state_dir=cfg.state_dir, role=cfg.directory.replication.role)
    if pid is None:
        return st
    dns = Dns(cfg.ldap.base_dn)
    students = None
    try:
        with Conn(cfg.ldapi_uri, timeout=5) as c:
            c.bind_external()
            total = _monitored_entries(c, dns.base)
            if count_students:
                students = sum(1 for _ in c.search_paged(dns.students, ldap.SCOPE_ONELEVEL,
                                                         "(objectClass=mimsStudent)", ["1.1"],
                                                         "counting students"))
            base = c.get(dns.base, ["contextCSN"], "reading the replication state") or {}
    except Exception:  # a status report must not fail because counting did
        return st
    csns = tuple(sorted(v.decode() for k, vs in base.items() if k.lower() == "contextcsn"
                        for v in vs))
    return Status(**{**st.__dict__, "students": students, "entries": total,
                     "context_csns": csns})


def _monitored_entries(c: Conn, base: str) -> int | None:
    """Entries of the database holding ``base``, as slapd's monitor counts them (None on a
    slapd started with a cn=config from before the monitor database)."""
    try:
        found = c.search("cn=Databases,cn=Monitor", ldap.SCOPE_ONELEVEL,
                         filter_eq("namingContexts", base), ["olmMDBEntries"],
                         "reading slapd's entry count")
    except MimsError:
        return None
    for _, attrs in found:
        value = first(attrs, "olmMDBEntries")
        if value and value.isdigit():
            return int(value)
    return None


def root_conn(cfg: Config) -> Conn:
    """A connection bound as the host's root over the ldapi socket."""
    from mimsdir.connect import root_conn as _root_conn

    return _root_conn(cfg)
