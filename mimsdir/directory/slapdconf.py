"""Render the embedded slapd's cn=config and its base tree from the templates in ``schema/``.

Pure functions of the configuration: what `directory up` feeds to ``slapadd`` is inspectable
and testable without running anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from string import Template

from mimsdir.config import Config, PolicyConfig
from mimsdir.ldapio import TLS_PRIORITY

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"

#: One account per service (design-notes §2). ``chain``: what a read-only consumer forwards
#: writes to the providers as (docs/replication.md, "Consumers").
SERVICES = ("sync", "sspr", "device", "replicator", "chain")
OUS = ("students", "staff", "groups", "services", "policies", "sessions", "apps", "posixgroups",
       "idpools")
#: The parts of the tree whose writes are not in the audit log (cn=accesslog): the portal's
#: sessions, written at every sign-in (schema/slapd-config.ldif.in, docs/directory.md "Audit").
UNAUDITED_OUS = ("sessions",)
#: The decoy account (ou=services): see decoy_entry.
DECOY = "decoy"


@dataclass(frozen=True)
class Dns:
    """Every well-known DN of the tree, derived from the base DN (design-notes §2)."""

    base: str

    @property
    def students(self) -> str:
        return f"ou=students,{self.base}"

    @property
    def staff(self) -> str:
        return f"ou=staff,{self.base}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.base}"

    @property
    def services(self) -> str:
        return f"ou=services,{self.base}"

    @property
    def policies(self) -> str:
        return f"ou=policies,{self.base}"

    @property
    def sessions(self) -> str:
        """The portal's sessions and per-login-ID SSPR state: replicated like everything
        else, so every portal instance near every replica sees the same ones."""
        return f"ou=sessions,{self.base}"

    @property
    def apps(self) -> str:
        """Registered applications (OpenID Connect clients, SAML service providers): in the
        directory, so every portal instance near every replica sees the same ones."""
        return f"ou=apps,{self.base}"

    def app(self, client_id: str) -> str:
        from ldap.dn import escape_dn_chars

        return f"cn={escape_dn_chars(client_id)},{self.apps}"

    @property
    def posixgroups(self) -> str:
        """The posixGroups devices resolve a user's primary group with: one per school
        (``cn=school-<code>``) and one for staff (``cn=mims-staff``)."""
        return f"ou=posixgroups,{self.base}"

    def posix_group(self, name: str) -> str:
        from ldap.dn import escape_dn_chars

        return f"cn={escape_dn_chars(name)},{self.posixgroups}"

    @property
    def idpools(self) -> str:
        """The uidNumber/gidNumber counters (mimsdir/directory/idpool.py)."""
        return f"ou=idpools,{self.base}"

    def idpool(self, name: str) -> str:
        return f"cn={name},{self.idpools}"

    @property
    def admins(self) -> str:
        return f"cn=ict-admins,{self.groups}"

    @property
    def root(self) -> str:
        """The rootDN: what the host's root becomes over ldapi. No entry, no password."""
        return f"cn=host-root,{self.base}"

    @property
    def replication_root(self) -> str:
        """A consumer's data rootDN: what replication (and ppolicy's forwarded writes) act
        as there. Nobody can bind as it, and the host's root is not it: on a consumer the
        host's root may read the data but never write it (docs/replication.md)."""
        return f"cn=replication,{self.base}"

    def service(self, name: str) -> str:
        return f"cn={name},{self.services}"

    def school_device(self, school: str) -> str:
        """A school's own device account (mimsdir/directory/devices.py)."""
        return self.service(f"device-{school.lower()}")

    def policy(self, name: str) -> str:
        return f"cn={name},{self.policies}"

    def student(self, uid: str) -> str:
        from ldap.dn import escape_dn_chars

        return f"uid={escape_dn_chars(uid)},{self.students}"


def form_teacher_filter(dns: Dns) -> str:
    """Who the portal may act as: a member of staff (mimsStaff) who is not an ICT admin and
    not disabled or gone (no mimsAccountStatus counts as active). ``memberOf`` is computed
    by the dynlist overlay at the moment of the check, so adding someone to cn=ict-admins
    takes effect at once."""
    return (f"(&(objectClass=mimsStaff)(!(memberOf={dns.admins}))"
            f"(|(!(mimsAccountStatus=*))(mimsAccountStatus=active)))")


def service_authz(dns: Dns) -> dict[str, list[str]]:
    """Whom each service may act as (``authzTo``, with ``olcAuthzPolicy: to``): the portal
    acts as a signed-in form teacher, so slapd checks a teacher's writes against the
    teacher's ACLs. No service may act as an ICT admin, a disabled member of staff or
    another service: with the portal's password one gets a teacher's rights at most, never
    an admin's.

    ``chain`` (a consumer's forwarded writes) acts as the student or member of staff who
    signed in on the consumer, so a password changed on a device near a school is changed on
    a provider with that person's own rights; never as an ICT admin or a service (an ICT
    admin changes their password on a provider)."""
    # In the form slapd stores it (libldap's ldap_url_desc2str escapes "|" in a URL's filter):
    # an entry added over LDAP (a peer's or consumer's replicated copy) then holds the same
    # text as one loaded by slapadd, and `up` does not rewrite it on every start.
    filt = form_teacher_filter(dns).replace("|", "%7C")
    teacher = f"ldap:///{dns.staff}??one?{filt}"
    return {"sspr": [teacher], "chain": [f"dn.onelevel:{dns.students}", teacher]}


def policy_for_level(level: str) -> str:
    """P1-P3 share the lower-primary policy, P4-P6 the upper-primary one."""
    return "lower-primary" if level.upper() in ("P1", "P2", "P3") else "upper-primary"


def render_acl(dns: Dns, server_id: int = 0) -> list[str]:
    """The olcAccess values, in order, from ``schema/acl.in``.

    ``server_id`` (0 without replication) names the id pools this provider lets be written:
    its own, never another provider's (cn=config is per provider)."""
    text = (SCHEMA_DIR / "acl.in").read_text(encoding="utf-8")
    values = {
        "base": dns.base,
        "admins": dns.admins,
        "sync": dns.service("sync"),
        "sspr": dns.service("sspr"),
        "device": dns.service("device"),
        "replicator": dns.service("replicator"),
        "chain": dns.service("chain"),
        "root": dns.root,
        "decoy": dns.service(DECOY),
        "teacher": 'set="this/mimsFormTeacher & user"',
        "school_device": (f'dn.one="{dns.services}" '
                          'set="this/mimsSchoolCode & user/mimsSchoolCode"'),
        "sid": str(server_id),
    }
    rules: list[str] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            if current:
                rules.append(" ".join(current))
                current = []
            continue
        current.append(Template(line).substitute(values))
    if current:
        rules.append(" ".join(current))
    return rules


#: The strength (SSF) slapd requires of every operation but StartTLS with ``ldap.tls.require``:
#: any TLS 1.2+ cipher it offers (AES-128 and up) gives at least this.
REQUIRED_SSF = 128


def tls_lines(cfg: Config) -> str:
    """slapd's TLS settings for the ``cn=config`` entry ('' when TLS is off).

    With ``require``: ``olcSecurity: ssf=128`` makes slapd answer every operation on a
    connection weaker than that (a network connection without TLS: ssf 0) with
    confidentialityRequired, except StartTLS: no bind, password change or search in clear.
    The host's root over ldapi keeps working because a local socket is given
    ``olcLocalSSF`` (slapd's default, 71, would lock root out of ldapi, cn=config included).
    """
    from mimsdir.directory.tls import server_files, tls_settings

    files = server_files(cfg)
    if files is None:
        return ""
    lines = [f"{k}: {v}" for k, v in tls_settings(files).items()]
    # TLS 1.2 and later (olcTLSProtocolMin is ignored by GnuTLS builds: ldapio.TLS_PRIORITY).
    lines.append(f"olcTLSCipherSuite: {TLS_PRIORITY}")
    if cfg.ldap.tls.require:
        lines += [f"olcLocalSSF: {REQUIRED_SSF}", f"olcSecurity: ssf={REQUIRED_SSF}"]
    return "\n".join(lines) + "\n"


def syncrepl_tls(cfg: Config, peer: str) -> str:
    """The olcSyncrepl TLS options for a peer: StartTLS (critical: never on in clear) on
    ldap://, TLS from the start on ldaps://, the peer's certificate always verified against
    our CA. syncrepl ignores slapd's own TLS settings, so each is given here."""
    from mimsdir.directory.tls import SYSTEM_CA_BUNDLE

    tls = cfg.ldap.tls
    ldaps = peer.lower().startswith("ldaps://")
    if not ldaps and not tls.client_starttls:
        return ""
    ca = cfg.tls_ca_file or SYSTEM_CA_BUNDLE
    opts = ["starttls=critical"] if not ldaps else []
    opts += [f'tls_cacert="{ca}"', "tls_reqcert=demand", f'tls_cipher_suite="{TLS_PRIORITY}"']
    return " " + " ".join(opts)


def _syncrepl_line(cfg: Config, dns: Dns, i: int, provider: str, password: str) -> str:
    """One olcSyncrepl value: refreshAndPersist of the whole tree from ``provider``, as the
    replicator, over TLS as ``syncrepl_tls`` says."""
    r = cfg.directory.replication
    return (f'olcSyncrepl: {{{i - 1}}}rid={i:03d} provider={provider} bindmethod=simple '
            f'binddn="{dns.service("replicator")}" credentials="{password}" '
            f'searchbase="{dns.base}" scope=sub type=refreshAndPersist '
            f'retry="{r.retry}" timeout=3 network-timeout=5 keepalive=240:10:30'
            f'{syncrepl_tls(cfg, provider)}')


def _syncrepl(cfg: Config, dns: Dns, replicator_password: str | None) -> tuple[str, str]:
    """(olcServerID lines, olcSyncrepl + olcMultiProvider lines) for a provider with peers,
    or (nothing, olcSyncrepl + olcUpdateRef lines) for a consumer."""
    r = cfg.directory.replication
    if r.consumer:
        return "", _consumer_syncrepl(cfg, dns, replicator_password)
    if not r.server_id:
        return "", ""
    # Each non-empty value ends with a newline: an empty one must not leave a blank line,
    # which would end the LDIF entry early.
    server_id = f"olcServerID: {r.server_id}\n"
    if not r.peers:
        return server_id, ""
    if not replicator_password:
        raise ValueError("replication needs the replicator's password in the secrets dir")
    lines = [_syncrepl_line(cfg, dns, i, peer, replicator_password)
             for i, peer in enumerate(r.peers, start=1)]
    lines.append("olcMultiProvider: TRUE")
    return server_id, "\n".join(lines) + "\n"


def _consumer_syncrepl(cfg: Config, dns: Dns, replicator_password: str | None) -> str:
    """A read-only consumer: syncrepl refreshAndPersist from every provider (any provider
    that answers keeps it current; a change that comes from both is applied once, by its
    entryCSN), and a referral to the providers for every write (olcUpdateRef), which the
    chain overlay follows (``chain_config``).

    Plain syncrepl (whole entries), not delta-syncrepl (the providers' audit logs): with two
    providers, slapd 2.5.13 left a consumer restarted after a crash with entries whose
    entryCSN and modifyTimestamp were older than the providers' (docs/replication.md,
    "Why not delta-syncrepl")."""
    r = cfg.directory.replication
    if not replicator_password:
        raise ValueError("a consumer needs the providers' replicator password "
                         "(secrets/replicator.pw)")
    lines = [_syncrepl_line(cfg, dns, i, provider, replicator_password)
             for i, provider in enumerate(r.provider_urls, start=1)]
    lines += [f"olcUpdateRef: {provider}" for provider in r.provider_urls]
    return "\n".join(lines) + "\n"


def chain_tls(cfg: Config, uri: str) -> tuple[str, str]:
    """(olcDbStartTLS value, idassert-bind TLS options) for a chain database: StartTLS on
    ldap:// (critical for the bind that carries the chain account's password), TLS from the
    start on ldaps://, the provider's certificate always verified against our CA."""
    from mimsdir.directory.tls import SYSTEM_CA_BUNDLE

    tls = cfg.ldap.tls
    ldaps = uri.lower().startswith("ldaps://")
    if not ldaps and not tls.client_starttls:
        return "none", ""
    ca = cfg.tls_ca_file or SYSTEM_CA_BUNDLE
    opts = f'tls_cacert="{ca}" tls_reqcert=demand tls_cipher_suite="{TLS_PRIORITY}"'
    if ldaps:
        return f"ldaps {opts}", f" {opts}"
    return f"start {opts}", f" starttls=critical {opts}"


def chain_config(cfg: Config, dns: Dns, chain_password: str | None) -> str:
    """A consumer's chain overlay (slapo-chain(5)), on the frontend: a write that the
    consumer answers with a referral to the providers (olcUpdateRef), and ppolicy's
    forwarded bind state (olcPPolicyForwardUpdates), are carried out on a provider (slapo-chain
    tries the referral's URLs in order, and the next one when a provider cannot be reached
    or refuses the write), over TLS with the provider's certificate verified.

    Identity: the chain account binds, and asserts (proxied authorization, critical) the
    identity that made the write on the consumer: a student's own password change is made on
    the provider as that student. Only students and staff may be asserted
    (olcDbIDAssertAuthzFrom here, prescriptive; the provider's authzTo narrows staff to form
    teachers); anyone else's write is refused. ppolicy's forwarded writes run as the
    consumer's rootDN, which back-ldap never asserts: they are made as the chain account
    itself, which may write the lockout state and nothing else (schema/acl.in). On the
    providers, a write asserted by the chain account reaches only the asserted person's own
    entry (schema/acl.in, ``realdn``): a form teacher's reset through a consumer is refused."""
    r = cfg.directory.replication
    if not r.consumer:
        return ""
    if not chain_password:
        raise ValueError("a consumer needs the providers' chain password (secrets/chain.pw)")
    frontend = "olcDatabase={-1}frontend,cn=config"
    overlay = f"olcOverlay={{0}}chain,{frontend}"
    entries = [
        f"dn: {overlay}\nobjectClass: olcOverlayConfig\nobjectClass: olcChainConfig\n"
        f"olcOverlay: {{0}}chain\n"
        # A write that cannot reach any provider gets the real error, not a referral the
        # device cannot follow (it does not know the providers' CA or a chain identity).
        f"olcChainReturnError: TRUE",
        # The first database is the chain's defaults (slapo-chain: no URI).
        f"dn: olcDatabase={{0}}ldap,{overlay}\nobjectClass: olcLDAPConfig\n"
        f"objectClass: olcChainDatabase\nolcDatabase: {{0}}ldap",
    ]
    for i, uri in enumerate(r.provider_urls, start=1):
        start_tls, bind_tls = chain_tls(cfg, uri)
        entries.append("\n".join([
            f"dn: olcDatabase={{{i}}}ldap,{overlay}",
            "objectClass: olcLDAPConfig",
            "objectClass: olcChainDatabase",
            f"olcDatabase: {{{i}}}ldap",
            # Unquoted, and the very text of olcUpdateRef: slapo-chain keys its databases by
            # this value as written, and looks a referral's URL up by its text; a quoted
            # value is not found for some URLs, which slapd then follows anonymously in
            # clear (measured; tests/test_replicas.py's trap).
            f"olcDbURI: {uri}",
            f"olcDbStartTLS: {start_tls}",
            f'olcDbIDAssertBind: bindmethod=simple binddn="{dns.service("chain")}" '
            f'credentials="{chain_password}" mode=self '
            f'flags=prescriptive,proxy-authz-critical{bind_tls}',
            f"olcDbIDAssertAuthzFrom: dn.onelevel:{dns.students}",
            f"olcDbIDAssertAuthzFrom: dn.subtree:{dns.staff}",
            "olcDbChaseReferrals: FALSE",
            "olcDbRebindAsUser: FALSE",
            "olcDbNetworkTimeout: 5",
            "olcDbKeepalive: 240:10:30",
        ]))
    return "\n\n".join(entries) + "\n\n"


def render_config(cfg: Config, replicator_password: str | None = None,
                  chain_password: str | None = None) -> str:
    """The cn=config LDIF for ``slapadd -n0``."""
    d = cfg.directory
    dns = Dns(cfg.ldap.base_dn)
    state_dir = cfg.state_dir
    consumer = d.replication.consumer
    acl = render_acl(dns, d.replication.server_id)
    acl_lines = "\n".join(f"olcAccess: {{{i}}}{rule}" for i, rule in enumerate(acl))
    server_id_lines, syncrepl_lines = _syncrepl(cfg, dns, replicator_password)
    chain = chain_config(cfg, dns, chain_password)
    values = {
        "state_dir": str(state_dir),
        "log_level": d.log_level,
        "threads": str(d.threads),
        "uid": str(os.geteuid()),
        "root_dn": dns.root,
        "data_root_dn": dns.replication_root if consumer else dns.root,
        "module_path": d.module_path,
        "argon2_module": argon2_module(cfg),
        "argon2_m": str(d.argon2.m),
        "argon2_t": str(d.argon2.t),
        "argon2_p": str(d.argon2.p),
        "extra_modules": "olcModuleLoad: {7}back_ldap\n" if consumer else "",
        # A blank line ends the frontend entry before the chain overlay's entries.
        "frontend_overlays": "\n" + chain.rstrip("\n") + "\n" if chain else "",
        "ppolicy_lines": "olcPPolicyForwardUpdates: TRUE\n" if consumer else "",
        "schema_dir": d.schema_dir,
        "mims_schema": str(SCHEMA_DIR / "mims.ldif"),
        # cn=config only includes the schema file: its digest in the rendered text makes a
        # schema change alone rebuild cn=config on the next `up`.
        "schema_digest": hashlib.sha256((SCHEMA_DIR / "mims.ldif").read_bytes()).hexdigest(),
        "accesslog_max_size": str(d.accesslog_max_size_mb * 1024 * 1024),
        "accesslog_bases": "".join(f"olcAccessLogBase: writes ou={ou},{dns.base}\n"
                                   for ou in OUS if ou not in UNAUDITED_OUS),
        "max_size": str(d.max_size_mb * 1024 * 1024),
        "base": dns.base,
        "acl_lines": acl_lines,
        "server_id_lines": server_id_lines,
        "tls_lines": tls_lines(cfg),
        "syncrepl_lines": syncrepl_lines,
        "audit_retention": f"{d.audit_retention_days:02d}",
    }
    template = Template((SCHEMA_DIR / "slapd-config.ldif.in").read_text(encoding="utf-8"))
    return template.substitute(values)


def argon2_module(cfg: Config) -> str:
    """What ``olcModuleLoad`` (and slappasswd's ``module-load``) names for the argon2 password
    module: the project's build by its absolute path, or Debian's (``argon2``, found in
    ``module_path``)."""
    d = cfg.directory
    return str(cfg.path(d.argon2_module).resolve()) if d.argon2_module else "argon2"


def _check_module(cfg: Config) -> dict[str, str]:
    """ppolicy's pwdCheckModule settings: the project's own module and its deny-list."""
    d = cfg.directory
    if not d.pwcheck_module:
        return {}
    return {"pwdCheckModule": str(cfg.path(d.pwcheck_module).resolve()),
            "pwdCheckModuleArg": str(cfg.path(d.pwcheck_denylist).resolve())}


def policy_attrs(name: str, p: PolicyConfig | None, check: dict[str, str] | None = None,
                 safe_modify: bool = False) -> dict[str, list[str]]:
    """The ppolicy entry's attributes for a policy of the config (None: service accounts).

    ``check`` holds pwdCheckModule and pwdCheckModuleArg (empty: no check module).
    ``safe_modify``: whoever is not a password administrator must give the old password
    (staff: the portal, acting as a teacher, must never set that teacher's password).
    """
    check = check or {}
    attrs: dict[str, list[str]] = {
        "objectClass": ["organizationalRole", "pwdPolicy"] + (["pwdPolicyChecker"] if check
                                                              else []),
        "cn": [name],
        "pwdAttribute": ["userPassword"],
    }
    if p is None:
        # Service accounts: long random secrets, never locked out (a locked device account
        # would stop every login of a school), never forced to change (a rotation must not
        # leave the service able to do nothing but change its password again).
        settings = {"pwdMinLength": "16", "pwdCheckQuality": "2", "pwdLockout": "FALSE",
                    "pwdMustChange": "FALSE", "pwdAllowUserChange": "TRUE", "pwdInHistory": "0",
                    "pwdSafeModify": "FALSE"}
    else:
        delays = p.min_delay_seconds > 0
        settings = {
            "pwdMinLength": str(p.min_length),
            # 2 = refuse what slapd cannot check: a client-hashed password is rejected. Above
            # 0, slapd also runs the check module for anyone who is not a password admin.
            "pwdCheckQuality": "2",
            # ppolicy enforces both the wait and the delays only with pwdLockout TRUE
            # (account_locked() returns early otherwise).
            "pwdLockout": "TRUE" if (p.max_failures or delays) else "FALSE",
            "pwdMaxFailure": str(p.max_failures),
            "pwdLockoutDuration": str(p.lockout_seconds),
            "pwdFailureCountInterval": str(p.failure_window_seconds),
            # The growing delay: binds refused until now + min(min << n, max). 0 on slapd
            # 2.5.13, whose delay code crashes (config.PolicyConfig).
            "pwdMinDelay": str(p.min_delay_seconds),
            "pwdMaxDelay": str(p.max_delay_seconds if delays else 0),
            "pwdMaxRecordedFailure": str(p.recorded_failures),
            "pwdInHistory": str(p.history),
            "pwdMustChange": "TRUE" if p.must_change_after_reset else "FALSE",
            "pwdAllowUserChange": "TRUE",
            # Students: FALSE, so that a write by someone who is not a password administrator
            # and does not know the old password (the SSPR portal setting the password a
            # student chose after answering their questions) is checked like the student's
            # own change: check module and history. A student's own change still needs a
            # bind as the student, and the Password Modify operation still verifies the old
            # password whenever one is given. Resetters who issue default passwords (ICT,
            # teachers, sync) hold "manage" on userPassword, see schema/acl.in.
            "pwdSafeModify": "TRUE" if safe_modify else "FALSE",
        }
        settings.update(check)
    attrs.update({k: [v] for k, v in settings.items()})
    return attrs


def decoy_policy_attrs(p: PolicyConfig) -> dict[str, list[str]]:
    """The decoy account's policy: a failed bind costs what a student's does, and never locks.

    Like a student's policy ``p`` it records each failure time (pwdMaxRecordedFailure, so
    slapd writes pwdFailureTime on every failed bind, the same modify as for a student);
    pwdLockout FALSE means nothing recorded is ever enforced.
    """
    return {
        "objectClass": ["organizationalRole", "pwdPolicy"],
        "cn": [DECOY],
        "pwdAttribute": ["userPassword"],
        "pwdMinLength": ["16"],
        "pwdCheckQuality": ["2"],
        "pwdLockout": ["FALSE"],
        "pwdMaxFailure": ["0"],
        "pwdFailureCountInterval": [str(p.failure_window_seconds)],
        "pwdMaxRecordedFailure": [str(p.recorded_failures)],
        "pwdInHistory": ["0"],
        "pwdMustChange": ["FALSE"],
        "pwdAllowUserChange": ["FALSE"],
        "pwdSafeModify": ["FALSE"],
    }


def policies(cfg: Config) -> dict[str, dict[str, list[str]]]:
    pol = cfg.policies
    check = _check_module(cfg)
    return {
        "lower-primary": policy_attrs("lower-primary", pol.lower_primary, check),
        "upper-primary": policy_attrs("upper-primary", pol.upper_primary, check),
        "staff": policy_attrs("staff", pol.staff, check, safe_modify=True),
        "services": policy_attrs("services", None),
        DECOY: decoy_policy_attrs(pol.lower_primary),
    }


def decoy_entry(dns: Dns, hashed_password: str) -> dict[str, list[str]]:
    """``cn=decoy,ou=services``: the portal binds to it when a login ID has no usable account,
    so a wrong password costs the same argon2 check and the same failure write either way.
    Its password is random and written nowhere: nobody can sign in as it."""
    return {"objectClass": ["applicationProcess", "simpleSecurityObject"], "cn": [DECOY],
            "userPassword": [hashed_password], "pwdPolicySubentry": [dns.policy(DECOY)]}


def probe_entry() -> dict[str, list[str]]:
    """``cn=probe,ou=idpools``: every allocation first raises it to learn, from the entryCSN
    slapd stamps on that write, which provider it is talking to (mimsdir/directory/idpool.py)."""
    return {"objectClass": ["mimsIdPool"], "cn": ["probe"], "mimsIdNext": ["0"],
            "description": ["raised by every allocation: its entryCSN names the provider"]}


def _ldif(dn: str, attrs: dict[str, list[str]]) -> str:
    return "\n".join([f"dn: {dn}"] + [f"{k}: {v}" for k, vs in attrs.items() for v in vs])


def _base_entry(base: str) -> str:
    first = base.split(",", 1)[0]
    attr, _, value = first.partition("=")
    attr = attr.strip().lower()
    if attr == "dc":
        return (f"dn: {base}\nobjectClass: dcObject\nobjectClass: organization\n"
                f"dc: {value}\no: {value}")
    if attr == "o":
        return f"dn: {base}\nobjectClass: organization\no: {value}"
    if attr == "ou":
        return f"dn: {base}\nobjectClass: organizationalUnit\nou: {value}"
    raise ValueError(f"ldap.base_dn: cannot make a base entry for {base!r} (use dc=, o= or ou=)")


def render_tree(cfg: Config, service_passwords: dict[str, str]) -> str:
    """The base entry, the OUs, the policies, the service accounts and the decoy, for
    ``slapadd``.

    slapadd stores values as given, so ``service_passwords`` holds hashes made by slappasswd
    with the same argon2 module and parameters as the server (never clear text); the
    decoy's is under the key ``DECOY``.
    """
    dns = Dns(cfg.ldap.base_dn)
    entries = [_base_entry(dns.base)]
    for ou in OUS:
        entries.append(f"dn: ou={ou},{dns.base}\nobjectClass: organizationalUnit\nou: {ou}")
    for name, attrs in policies(cfg).items():
        entries.append(_ldif(dns.policy(name), attrs))
    for name in SERVICES:
        lines = [
            f"dn: {dns.service(name)}",
            "objectClass: applicationProcess",
            "objectClass: simpleSecurityObject",
            f"cn: {name}",
            f"userPassword: {service_passwords[name]}",
            f"pwdPolicySubentry: {dns.policy('services')}",
        ]
        lines += [f"authzTo: {v}" for v in service_authz(dns).get(name, [])]
        entries.append("\n".join(lines))
    entries.append(_ldif(dns.service(DECOY), decoy_entry(dns, service_passwords[DECOY])))
    entries.append(_ldif(dns.idpool("probe"), probe_entry()))
    return "\n\n".join(entries) + "\n"

