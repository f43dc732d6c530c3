"""Password policy as slapd enforces it: must-change after reset, lockout, hashing, unique mail."""

from __future__ import annotations

import re
import subprocess
import time

import argon2
import ldap
import pytest

from mimsdir.connect import network_conn
from mimsdir.errors import AccessDenied, MimsError, PolicyViolation
from mimsdir.ldapio import first
from tests.conftest import conn_as, service_conn


def bind(cfg, dn, pw):
    c = network_conn(cfg, timeout=5)
    return c, c.bind_ppolicy(dn, pw)


def test_reset_forces_change_and_restricts_session(slapd, make, root, dns):
    s = make.student(level="P3", password="First-pass-1")
    # An ICT reset: the password set by someone else, flagged must-change.
    root.set_password(s.dn, "Default4821")
    attrs = root.get(s.dn, ["pwdReset"], "reading pwdReset")
    assert first(attrs, "pwdReset") == "TRUE"

    c, out = bind(slapd, s.dn, "Default4821")
    assert out.ok and out.must_change
    # Restricted to changing the password: a search of its own entry is refused.
    # slapd answers insufficientAccess: "Operations are restricted to bind/unbind/abandon/
    # StartTLS/modify password".
    with pytest.raises(AccessDenied):
        c.search(s.dn, ldap.SCOPE_BASE, "(objectClass=*)", ["cn"], "reading own entry")
    c.set_password(s.dn, "Brand-new-9", old="Default4821")
    c.close()

    c, out = bind(slapd, s.dn, "Brand-new-9")
    assert out.ok and not out.must_change
    assert c.get(s.dn, ["cn"], "reading own entry")
    c.close()
    c, out = bind(slapd, s.dn, "Default4821")
    assert not out.ok


def test_lockout_after_failures_and_auto_unlock(slapd, make, root):
    s = make.student(level="P2", password="Right-pass-1")
    for _ in range(3):  # tests configure max_failures: 3, lockout_seconds: 2
        _, out = bind(slapd, s.dn, "wrong-guess")
        assert not out.ok
    _, out = bind(slapd, s.dn, "Right-pass-1")
    assert not out.ok and out.locked
    assert first(root.get(s.dn, ["pwdAccountLockedTime"], "reading lock"), "pwdAccountLockedTime")
    time.sleep(2.5)
    _, out = bind(slapd, s.dn, "Right-pass-1")
    assert out.ok


def test_admin_clears_lockout(slapd, make, root):
    admin = make.admin()
    s = make.student(level="P5", password="Right-pass-1")
    for _ in range(3):
        bind(slapd, s.dn, "nope-nope")
    _, out = bind(slapd, s.dn, "Right-pass-1")
    assert out.locked
    with conn_as(slapd, admin.dn, admin.password) as a:
        a.modify(s.dn, [(ldap.MOD_DELETE, "pwdAccountLockedTime", None)], "unlocking")
    _, out = bind(slapd, s.dn, "Right-pass-1")
    assert out.ok


def test_passwords_stored_as_argon2_never_clear(slapd, make, root):
    s = make.student(password="Exop-pass-12")
    raw = root.get(s.dn, ["userPassword"], "reading hash")["userPassword"][0]
    # The project's argon2 module (libsodium): argon2id, and nothing after the hash (Debian's
    # module appended two stray bytes).
    assert re.fullmatch(rb"\{ARGON2\}\$argon2id\$v=19\$m=19456,t=3,p=1\$[A-Za-z0-9+/]+"
                        rb"\$[A-Za-z0-9+/]+", raw), raw[:40]
    # A plain userPassword write by a client (here an ICT admin) is hashed by slapd.
    admin = make.admin()
    with conn_as(slapd, admin.dn, admin.password) as a:
        a.modify(s.dn, [(ldap.MOD_REPLACE, "userPassword", [b"Plain-text-99"])], "plain write")
    raw = root.get(s.dn, ["userPassword"], "reading hash")["userPassword"][0]
    assert raw.startswith(b"{ARGON2}$argon2id$") and b"Plain-text-99" not in raw
    assert bind(slapd, s.dn, "Plain-text-99")[1].ok
    # An independent argon2 (argon2-cffi, the reference code) checks slapd's hash: a replica
    # or a restore on Debian's own module reads it too.
    assert argon2.PasswordHasher().verify(raw.decode()[len("{ARGON2}"):], "Plain-text-99")


def test_hashes_of_debians_argon2_module_still_sign_in(slapd, make, root):
    """Entries hashed before the project built its own module (argon2i, Debian's libargon2,
    with its two stray bytes) keep signing in: libsodium checks argon2i too."""
    a = slapd.directory.argon2
    pw_file = slapd.secrets_dir / "debian-argon2-test.pw"
    pw_file.write_text("Debian-made-pass-7")
    try:
        made = subprocess.run(
            ["/usr/sbin/slappasswd", "-o", f"module-path={slapd.directory.module_path}",
             "-o", f"module-load=argon2 m={a.m} t={a.t} p={a.p}", "-h", "{ARGON2}",
             "-T", str(pw_file)], capture_output=True, text=True, check=True).stdout.strip()
    finally:
        pw_file.unlink()
    assert made.startswith("{ARGON2}$argon2i$v=19$m=19456,t=3,p=1$")
    s = make.student(password="Unused-pass-55")
    root.modify(s.dn, [(ldap.MOD_REPLACE, "userPassword", [made.encode() + b"\0\x01"])],
                "an argon2i hash as Debian's module stores it")
    assert bind(slapd, s.dn, "Debian-made-pass-7")[1].ok
    assert not bind(slapd, s.dn, "Debian-made-pass-8")[1].ok


def test_quality_min_length_and_history(slapd, make):
    s = make.student(level="P4", password="Original-1")
    with conn_as(slapd, s.dn, "Original-1") as c:
        with pytest.raises(PolicyViolation, match="too short"):
            c.set_password(s.dn, "abc", old="Original-1")
        # A wrong old password is refused by the Password Modify operation itself, whatever
        # the policy's pwdSafeModify says.
        with pytest.raises(MimsError, match="unwilling"):
            c.set_password(s.dn, "Another-pass-2", old="Not-the-old-one-1")
        c.set_password(s.dn, "Another-pass-2", old="Original-1")
        with pytest.raises(PolicyViolation, match="used before"):
            c.set_password(s.dn, "Original-1", old="Another-pass-2")


def test_student_self_change_needs_a_bind_not_the_old_password(slapd, make):
    """Student policies have pwdSafeModify FALSE (so the SSPR portal's write is checked like
    the student's own): a student signed in may change without repeating the old one."""
    s = make.student(level="P4", password="Original-1")
    with conn_as(slapd, s.dn, "Original-1") as c:
        c.set_password(s.dn, "Another-pass-2")
    assert bind(slapd, s.dn, "Another-pass-2")[1].ok


def test_staff_self_change_still_needs_the_old_password(slapd, make):
    """Staff keep pwdSafeModify: the portal acting as a teacher must never set that
    teacher's password without the old one."""
    t = make.teacher(password="Teacher-pass-1")
    with conn_as(slapd, t.dn, "Teacher-pass-1") as c:
        with pytest.raises(PolicyViolation, match="old password"):
            c.set_password(t.dn, "Brand-new-staff-9")
        c.set_password(t.dn, "Brand-new-staff-9", old="Teacher-pass-1")


def test_mail_is_unique(slapd, make, root):
    a = make.student()
    with pytest.raises(PolicyViolation, match="non-unique"):
        make.student(mail=[a.mail.encode()])


def test_service_password_rotation_keeps_service_usable(slapd, make, root, dns):
    admin = make.admin()
    dn = dns.service("device")
    old = (slapd.secrets_dir / "device.pw").read_text().strip()
    try:
        with conn_as(slapd, admin.dn, admin.password) as a:
            a.set_password(dn, "Rotated-device-secret-1234")
        c, out = bind(slapd, dn, "Rotated-device-secret-1234")
        assert out.ok and not out.must_change
        # Fully usable, not restricted to a password change: it can search students.
        c.search(dns.students, ldap.SCOPE_ONELEVEL, "(mail=nobody@x)", ["uid"], "device search")
        c.close()
        root.set_password(dn, "Rotated-by-root-5678-abcd")
        c, out = bind(slapd, dn, "Rotated-by-root-5678-abcd")
        assert out.ok and not out.must_change
        c.close()
    finally:
        root.set_password(dn, old)
    with service_conn(slapd, "device") as d:
        d.whoami()


def test_disabled_student_cannot_bind(slapd, make, root):
    s = make.student(password="Right-pass-1")
    assert bind(slapd, s.dn, "Right-pass-1")[1].ok
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"left"])], "disabling")
    assert not bind(slapd, s.dn, "Right-pass-1")[1].ok
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"active"])], "enabling")
    assert bind(slapd, s.dn, "Right-pass-1")[1].ok


def test_anonymous_can_bind_only(slapd, dns, make):
    """design-notes §4: "anonymous: bind only. No search, no read." slapd refuses every
    operation on the data before authentication (olcRequires: authc, result 53
    "authentication required"): a refusal, not an empty answer."""
    s = make.student(level="P4", password="Right-pass-1")
    with network_conn(slapd) as c:
        # An anonymous bind is itself allowed (RFC 4513 5.1.1): it names nobody and grants
        # nothing.
        c.lo.simple_bind_s("", "")
        assert c.whoami() == ""
        for base, scope in ((dns.base, ldap.SCOPE_SUBTREE), (dns.students, ldap.SCOPE_ONELEVEL),
                            (s.dn, ldap.SCOPE_BASE)):
            with pytest.raises(AccessDenied, match="sign in first"):
                c.search(base, scope, f"(mail={s.mail})", ["dn", "mail"], "anonymous search")
        with pytest.raises(AccessDenied, match="sign in first"):
            c.get(s.dn, ["cn"], "anonymous read")
        with pytest.raises(ldap.UNWILLING_TO_PERFORM, match="authentication required"):
            c.lo.compare_s(s.dn, "mail", s.mail)
        # Binding is what it may do: the same connection authenticates as the student.
        assert c.bind_ppolicy(s.dn, "Right-pass-1").ok
        assert c.whoami() == f"dn:{s.dn}"
        assert c.get(s.dn, ["mail"], "reading own entry") == {"mail": [s.mail.encode()]}


def test_unlock_clears_failures_so_one_typo_does_not_relock(slapd, make, root):
    """Unlocking must clear pwdFailureTime (NO-USER-MODIFICATION: Relax Rules + manage)."""
    admin = make.admin()
    teacher = make.teacher("4A")
    s = make.student(level="P4", password="Right-pass-1", teacher=teacher)
    for who in (admin, teacher):
        for _ in range(3):
            bind(slapd, s.dn, "nope-nope")
        assert bind(slapd, s.dn, "Right-pass-1")[1].locked
        with conn_as(slapd, who.dn, who.password) as c:
            c.modify(s.dn, [(ldap.MOD_REPLACE, "pwdAccountLockedTime", []),
                            (ldap.MOD_REPLACE, "pwdFailureTime", [])], "unlocking")
        assert "pwdFailureTime" not in root.get(s.dn, ["pwdFailureTime"], "failures")
        bind(slapd, s.dn, "one-typo")
        assert bind(slapd, s.dn, "Right-pass-1")[1].ok
