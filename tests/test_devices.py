"""Devices tested for real (issue 10, part 3): nslcd + libpam-ldapd and SSSD, each with the
files docs/devices.md shows, over StartTLS with the directory's CA, against the session's
slapd, inside a private namespace (tests/devices.py) so this machine's own NSS and PAM files
are never touched.

Each case signs a person in the way a device does: pamtester, a login-style PAM conversation
(tests/pam_login.py), getent, id and su. The session's policy (tests/conftest.py): 3 wrong
passwords, then a 2 s wait (production: 5, then 2 minutes).
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mimsdir.config import Config
from mimsdir.ldapio import first
from mimsdir.posix import school_group
from tests.conftest import Factory, Person
from tests.devices import (
    PAM_FILES,
    PLACEHOLDER,
    STACKS,
    TEMPLATES,
    Device,
    processes_in,
    render,
    template_values,
)
from tests.staff_helpers import config_path, run

ROOT = Path(__file__).resolve().parent.parent
#: What each stack says when the directory answers "must change" (the ppolicy control).
MUST_CHANGE = {"nslcd": "Password must be changed",
               "sssd": "Password expired. Change your password now."}
#: How each stack passes on the directory's refusal of a new password.
CHANGE_FAILED = {"nslcd": "password change failed: ",
                 "sssd": "Password change failed. Server message: "}
SUCCESS = {"authenticate": 0, "acct_mgmt": 0, "open_session": 0}
HOST_FILES = ["/etc/nsswitch.conf", *(f"/etc/pam.d/{f}" for f in PAM_FILES)]


@pytest.fixture(scope="module", params=STACKS)
def device(request: pytest.FixtureRequest, slapd: Config) -> Iterator[Device]:
    with Device(request.param, slapd) as d:
        yield d


def student(make: Factory, **kw: object) -> Person:
    return make.student(posix=True, password="Kite-river-482", **kw)  # type: ignore[arg-type]


def said(result: dict, stack: str) -> list[str]:  # type: ignore[type-arg]
    """What the person was told, without the login program's own greetings."""
    return [m for m in result["messages"] if "Debian" not in m and not m.startswith(
        ("Linux ", "Last login", "Creating directory"))]


def test_sign_in_with_email_and_password(device: Device, make: Factory, dns) -> None:  # type: ignore[no-untyped-def]
    s = student(make)
    res = device.pamtester(s.mail, s.password, "authenticate", "acct_mgmt", "open_session")
    assert res.rc == 0 and "successfully authenticated" in res.out, (res, device.log())
    out = device.pam(s.mail, s.password)
    assert out["codes"] == SUCCESS, out
    assert said(out, device.stack) == []
    assert out["account"]["name"] == s.mail
    home = out["account"]["home"]
    assert device.run(["test", "-d", home]).rc == 0  # pam_mkhomedir, in the namespace only
    assert not Path(home).exists()
    assert device.pam(s.mail, "Not-the-password-1")["codes"] == {"authenticate": 7}


def test_getent_and_id_by_email(device: Device, make: Factory, root, dns) -> None:  # type: ignore[no-untyped-def]
    s = student(make)
    attrs = root.get(s.dn, ["uidNumber", "gidNumber", "homeDirectory", "cn"], "posix")
    number, gid = first(attrs, "uidNumber"), first(attrs, "gidNumber")
    line = f"{s.mail}:*:{number}:{gid}:{first(attrs, 'cn')}:{first(attrs, 'homeDirectory')}:"
    entry = device.getent("passwd", s.mail)
    assert entry is not None and entry.replace(":x:", ":*:").startswith(line), entry
    assert entry.endswith(":/bin/bash")
    assert device.getent("passwd", str(number)) == entry
    group = school_group(make.school)
    assert device.getent("group", group) == f"{group}:*:{gid}:"
    ident = device.run(["id", s.mail], check=True).out.strip()
    assert ident == f"uid={number}({s.mail}) gid={gid}({group}) groups={gid}({group})"


def su(device: Device, user: str, password: str) -> tuple[int, str]:
    """`su USER -c id` typed at a terminal by an ordinary local user (nobody): su is setuid
    root and asks PAM for USER's password."""
    parent, child = pty.openpty()
    p = subprocess.Popen(["nsenter", "--target", str(device.pid), "--mount", "--pid", "--",
                          "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          "su", user, "-c", "id -un"],
                         stdin=child, stdout=child, stderr=child, start_new_session=True)
    os.close(child)
    out, typed, deadline = b"", False, time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([parent], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(parent, 4096)
                except OSError:  # the terminal closed: su is done
                    break
                if not chunk:
                    break
                out += chunk
                if not typed and b"Password:" in out:
                    os.write(parent, password.encode() + b"\n")
                    typed = True
            elif p.poll() is not None:
                break
        return p.wait(10), out.decode(errors="replace")
    finally:
        os.close(parent)
        if p.poll() is None:
            p.kill()


def test_su(device: Device, make: Factory) -> None:
    s = student(make)
    rc, out = su(device, s.mail.upper(), s.password)
    assert rc == 0 and out.splitlines()[-1].strip() == s.mail, out


def test_wrong_passwords_lock_and_the_unlock_restores(device: Device, make: Factory,
                                                      slapd: Config, root) -> None:  # type: ignore[no-untyped-def]
    """max_failures wrong passwords at the device: then the right one is refused too (the
    directory's wait), and ICT's unlock (`mimsdir student unlock`) lets the student in at
    once. The test's wait is 2 s, so the sign-in after the unlock must come within it to
    show that the unlock, not the end of the wait, let them in (a slow round is repeated)."""
    policy = slapd.policies.upper_primary
    s = student(make, level="P5")
    for _ in range(3):
        for _ in range(policy.max_failures):
            assert device.pam(s.mail, "Wrong-guess-17")["codes"] == {"authenticate": 7}
        locked_at = time.monotonic()
        refused = device.pam(s.mail, s.password)
        assert refused["codes"] == {"authenticate": 7}, refused
        assert "pwdAccountLockedTime" in root.get(s.dn, ["pwdAccountLockedTime"], "lock")
        res = run(config_path(slapd), "student", "unlock", s.uid)
        assert res.exit_code == 0, res.output
        out = device.pam(s.mail, s.password)
        assert out["codes"] == SUCCESS, out
        if time.monotonic() - locked_at < policy.lockout_seconds * 0.9:
            return
    pytest.fail("too slow to tell the unlock from the end of the wait, three times")


def test_ict_reset_must_change_at_the_device(device: Device, make: Factory,
                                             slapd: Config) -> None:
    """`mimsdir student reset-password`: the default password signs in only to be changed.
    The stack says so, asks for a new one (a refused one is explained and changes nothing),
    the change goes through PAM, and the next sign-in is an ordinary one."""
    s = student(make, level="P3")
    res = run(config_path(slapd), "student", "reset-password", s.mail, "--show")
    assert res.exit_code == 0, res.output
    default = res.stdout.split("new password: ")[1].split()[0]

    weak = device.pam(s.mail, {"new": "password1", "": default})
    assert weak["codes"] == {"authenticate": 0, "acct_mgmt": 12, "chauthtok": 20}, weak
    assert MUST_CHANGE[device.stack] in said(weak, device.stack)
    assert any(m.startswith(CHANGE_FAILED[device.stack] + "mims:common ")
               for m in said(weak, device.stack)), weak

    changed = device.pam(s.mail, {"new": "Lantern-owl-55", "": default})
    assert changed["codes"] == {"authenticate": 0, "acct_mgmt": 12, "chauthtok": 0,
                                "open_session": 0}, changed
    assert MUST_CHANGE[device.stack] in said(changed, device.stack)

    after = device.pam(s.mail, "Lantern-owl-55")
    assert after["codes"] == SUCCESS and said(after, device.stack) == [], after
    assert device.pam(s.mail, default)["codes"] == {"authenticate": 7}


@pytest.mark.parametrize("new, code", [
    ("Kite-river-482", "history"), ("password1", "mims:common"),
    ("zaq12wsx", "mims:common"), ("abcdefghij", "mims:sequence"), ("LOGIN", "mims:login"),
])
def test_history_and_quality_errors_reach_pam(device: Device, make: Factory, new: str,
                                              code: str) -> None:
    """passwd at the device, as the student: the directory's refusal, word for word."""
    s = student(make)
    if code == "history":
        ok = device.pam(s.mail, {"new": "Maple-comet-31", "": s.password}, chauthtok=True)
        assert ok["codes"] == {"chauthtok": 0}, ok
        answers = {"new": new, "": "Maple-comet-31"}
        expected = "Password is in history of old passwords"
    else:
        answers = {"new": new.replace("LOGIN", s.uid + "-k"), "": s.password}
        expected = code + " "
    out = device.pam(s.mail, answers, chauthtok=True)
    assert out["codes"] == {"chauthtok": 20}, out
    assert any(m.startswith(CHANGE_FAILED[device.stack] + expected)
               for m in said(out, device.stack)), out


@pytest.mark.parametrize("status", ["disabled", "left"])
def test_disabled_and_left_students_are_refused(device: Device, make: Factory,
                                                status: str) -> None:
    s = student(make, status=status)
    out = device.pam(s.mail, s.password)
    assert out["codes"] == {"authenticate": 7}, out
    # Files they own keep a name: NSS still resolves them.
    assert device.getent("passwd", s.mail) is not None


def test_upper_case_login_id(device: Device, make: Factory) -> None:
    s = student(make)
    typed = s.mail.upper()
    out = device.pam(typed, s.password)
    assert out["codes"] == SUCCESS, out
    assert out["account"]["name"] == s.mail  # the Linux user is the stored, lower-case email
    assert device.getent("passwd", typed.title()).split(":")[0] == s.mail  # type: ignore[union-attr]
    assert device.pamtester(typed, s.password, "authenticate", "acct_mgmt").rc == 0


def test_a_plain_ldap_bind_is_refused_when_tls_is_required(slapd: Config, make: Factory,
                                                           root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without StartTLS the directory refuses the bind (confidentiality required) before
    it looks at the password: ldapwhoami in clear, and nslcd with its TLS lines taken
    out, which then resolves nobody and signs nobody in. No failure is counted."""
    s = student(make)
    clear = subprocess.run(["ldapwhoami", "-x", "-H", slapd.ldap.uri, "-D", s.dn, "-w",
                            s.password], capture_output=True, text=True, timeout=30)
    assert clear.returncode == 13 and "Confidentiality required" in clear.stderr, clear
    tls = subprocess.run(["ldapwhoami", "-x", "-ZZ", "-H", slapd.ldap.uri, "-D", s.dn, "-w",
                          s.password], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "LDAPTLS_CACERT": str(slapd.tls_ca_file)})
    assert tls.returncode == 0 and tls.stdout.strip() == f"dn:{s.dn}", tls

    d = Device("nslcd", slapd)
    conf = d.files / "nslcd.conf"
    conf.write_text("".join(ln for ln in conf.read_text().splitlines(keepends=True)
                            if not ln.startswith(("ssl ", "tls_"))) + "reconnect_retrytime 1\n")
    with d:
        assert d.pam(s.mail, s.password)["codes"] != SUCCESS
        assert "Confidentiality required" in d.log()
    assert root.get(s.dn, ["pwdFailureTime"], "failures") == {}


def host_state() -> dict[str, str]:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in HOST_FILES}


def test_the_machine_itself_is_untouched(slapd: Config, make: Factory) -> None:
    """Installed (scripts/device_packages.sh) but switched off here: this machine's NSS and
    PAM files name neither stack, only the namespace sees the directory's people, and
    nothing of the namespace outlives it."""
    services = {}
    for ln in Path("/etc/nsswitch.conf").read_text().splitlines():
        if ":" in ln and not ln.lstrip().startswith("#"):
            name, _, sources = ln.partition(":")
            services[name.strip()] = sources.split()
    for db in ("passwd", "group", "shadow"):
        assert not {"ldap", "sss"} & set(services.get(db, [])), services[db]
    for name in PAM_FILES:
        text = Path(f"/etc/pam.d/{name}").read_text()
        assert not {"pam_ldap", "pam_sss", "pam_pwquality"} & set(text.split(".so")), name
        for module in ("pam_ldap.so", "pam_sss.so", "pam_pwquality.so"):
            assert module not in text, (name, module)
    again = subprocess.run(["bash", str(ROOT / "scripts" / "device_packages.sh")],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stderr == "", again  # all there: nothing to do

    s = student(make)
    before = host_state()
    d = Device("sssd", slapd)
    with d:
        assert d.getent("passwd", s.mail) is not None
        assert subprocess.run(["getent", "passwd", s.mail]).returncode == 2  # not here
        pidns = d.pidns
        assert len(processes_in(pidns)) >= 2  # the init and sssd's processes
    assert processes_in(pidns) == []
    assert host_state() == before


def test_the_docs_show_the_tested_files() -> None:
    """docs/devices.md shows, character for character, the files the tests run."""
    doc = (ROOT / "docs" / "devices.md").read_text()
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            assert path.read_text().strip() in doc, f"docs/devices.md lacks {path}"


def test_templates_fill_every_placeholder(slapd: Config) -> None:
    values = template_values(slapd, "/etc/ssl/certs/mims-directory-ca.pem")
    for stack in STACKS:
        name = "nslcd.conf" if stack == "nslcd" else "sssd.conf"
        out = render((TEMPLATES / stack / name).read_text(), values)
        assert not PLACEHOLDER.search(out), out
        for value in values.values():
            assert value in out
