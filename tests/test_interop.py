"""A device-style login (service bind, search by mail, bind as the student) with three clients:
python-ldap, ldap-utils' ldapwhoami/ldapsearch, and ldap3 as an independent implementation."""

from __future__ import annotations

import os
import ssl
import subprocess

import ldap
import ldap3
import pytest

from mimsdir.connect import network_conn
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import filter_eq


@pytest.fixture
def student(make):  # type: ignore[no-untyped-def]
    return make.student(level="P5", password="Device-login-5")


def _device_pw(slapd) -> str:  # type: ignore[no-untyped-def]
    return (slapd.secrets_dir / "device.pw").read_text().strip()


def test_python_ldap(slapd, student) -> None:  # type: ignore[no-untyped-def]
    dns = Dns(slapd.ldap.base_dn)
    with network_conn(slapd) as dev:
        dev.bind(dns.service("device"), _device_pw(slapd))
        res = dev.search(dns.students, ldap.SCOPE_SUBTREE, filter_eq("mail", student.mail),
                         ["uid", "mimsAccountStatus"], "device lookup")
    assert [dn for dn, _ in res] == [student.dn]
    with network_conn(slapd) as c:
        out = c.bind_ppolicy(res[0][0], "Device-login-5")
        assert out.ok and not out.must_change
        assert c.whoami() == f"dn:{student.dn}"


def test_ldap_utils(slapd, student) -> None:  # type: ignore[no-untyped-def]
    """As a device's LDAP client does it: StartTLS required (-ZZ), the directory's CA from
    LDAPTLS_CACERT (what `mimsdir directory tls show` prints)."""
    dns = Dns(slapd.ldap.base_dn)
    pw_file = slapd.secrets_dir / "device.pw"
    env = {**os.environ, "LDAPTLS_CACERT": str(slapd.tls_ca_file), "LDAPTLS_REQCERT": "demand"}
    search = subprocess.run(
        ["ldapsearch", "-x", "-ZZ", "-LLL", "-H", slapd.ldap.uri, "-D", dns.service("device"),
         "-y", str(pw_file), "-b", dns.students, f"(mail={student.mail})", "1.1"],
        capture_output=True, text=True, check=False, env=env,
    )
    assert search.returncode == 0, search.stderr
    assert f"dn: {student.dn}" in search.stdout
    who = subprocess.run(["ldapwhoami", "-x", "-ZZ", "-H", slapd.ldap.uri, "-D", student.dn,
                          "-w", "Device-login-5"], capture_output=True, text=True, check=False,
                         env=env)
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == f"dn:{student.dn}"
    bad = subprocess.run(["ldapwhoami", "-x", "-ZZ", "-H", slapd.ldap.uri, "-D", student.dn,
                          "-w", "wrong"], capture_output=True, text=True, check=False, env=env)
    assert bad.returncode == 49
    # Without TLS the same bind is refused before the password is looked at.
    clear = subprocess.run(["ldapwhoami", "-x", "-H", slapd.ldap.uri, "-D", student.dn,
                            "-w", "Device-login-5"], capture_output=True, text=True,
                           check=False, env=env)
    assert clear.returncode == 13, clear.stderr  # confidentialityRequired


# ldap3 checks the server's name with ssl.match_hostname (deprecated since Python 3.7, still
# working in 3.11): its warning is not ours.
@pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")
def test_ldap3(slapd, student) -> None:  # type: ignore[no-untyped-def]
    dns = Dns(slapd.ldap.base_dn)
    host, port = slapd.ldap.uri.removeprefix("ldap://").split(":")
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(slapd.tls_ca_file))
    server = ldap3.Server(host, port=int(port), get_info=ldap3.NONE, tls=tls)
    dev = ldap3.Connection(server, dns.service("device"), _device_pw(slapd),
                           auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND)
    dev.search(dns.students, f"(mail={ldap3.utils.conv.escape_filter_chars(student.mail)})",
               attributes=["uid"])
    assert [e.entry_dn for e in dev.entries] == [student.dn]
    dev.unbind()
    user = ldap3.Connection(server, student.dn, "Device-login-5")
    assert user.start_tls() and user.bind()
    assert user.extend.standard.who_am_i() == f"dn:{student.dn}"
    user.unbind()
    wrong = ldap3.Connection(server, student.dn, "nope")
    assert wrong.start_tls() and not wrong.bind()
    wrong.unbind()
