"""slapd's own password rules: the check module (slapd-modules/mims_pwcheck.c), its deny-list,
and who slapd applies them to.

Two layers: the rules themselves, called straight from the built .so with ctypes (fast, so
many cases and 200 default passwords), and slapd applying them, for real: a student's own
change by Password Modify with the old password (what a device's ``passwd`` does) and the
SSPR portal's account writing the password a student chose. Each rule's code is the first
word of slapd's diagnostic text.
"""

from __future__ import annotations

import ctypes
import random
import subprocess
from pathlib import Path

import ldap
import pytest

from mimsdir.config import Config, load_config
from mimsdir.connect import network_conn
from mimsdir.directory.slapdconf import policies
from mimsdir.errors import MimsError, PolicyViolation
from mimsdir.ldapio import (
    PP_IN_HISTORY,
    PP_INSUFFICIENT_QUALITY,
    PP_TOO_SHORT,
    BindOutcome,
)
from mimsdir.wordlist import generate_default_password
from tests.conftest import Factory, Person, conn_as, service_conn

CFG = Config()
MODULE = Path(CFG.directory.pwcheck_module)
DENYLIST = Path(CFG.directory.pwcheck_denylist)
SOURCE = Path(__file__).resolve().parents[1] / "slapd-modules" / "mims_pwcheck.c"

# A student as the directory holds one (what the module reads of the entry).
ENTRY = [("uid", "S2614023J"), ("mail", "wei_ling_tan@students.demo.edu.sg"),
         ("cn", "Tan Wei Ling"), ("givenName", "Wei Ling"), ("sn", "Tan"),
         ("mimsSchoolCode", "DEMOPS"), ("objectClass", "inetOrgPerson")]


def module_check(password: str, attrs: list[tuple[str, str]] | None = None,
                 denylist: Path = DENYLIST) -> str | None:
    """The module's verdict: None when accepted, else its refusal text."""
    lib = ctypes.CDLL(str(MODULE))
    fn = lib.mims_pwcheck_values
    fn.restype = ctypes.c_int
    pairs = attrs if attrs is not None else ENTRY
    names = (ctypes.c_char_p * max(1, len(pairs)))(*[k.encode() for k, _ in pairs])
    vals = (ctypes.c_char_p * max(1, len(pairs)))(*[v.encode() for _, v in pairs])
    msg = ctypes.create_string_buffer(256)
    rc = fn(password.encode(), names, vals, len(pairs), str(denylist).encode(), msg, 256)
    return None if rc == 0 else msg.value.decode()


def code_of(text: str | None) -> str | None:
    return text.split(" ", 1)[0] if text else None


# (password, the rule that refuses it): every rule of the module, as a child would try it.
REFUSED = [
    ("password", "mims:common"),
    ("Password1!", "mims:common"),       # a common one with digits and a symbol added
    ("2024monkey", "mims:common"),       # ... or a year in front
    ("p@ssw0rd", "mims:common"),         # look-alike spelling
    ("minecraft", "mims:common"),        # the school/child list
    ("Primaryschool", "mims:common"),
    ("12345678", "mims:sequence"),
    ("abcdefgh", "mims:sequence"),
    ("qwertyui", "mims:sequence"),       # a keyboard row
    ("87654321", "mims:sequence"),
    ("abcdefgh1!", "mims:sequence"),
    ("aaaaaaaa", "mims:repeat"),
    ("abababab", "mims:repeat"),
    ("        ", "mims:space"),
    ("\t \t \t \t", "mims:space"),
    ("x" * 65, "mims:long"),
]


@pytest.mark.parametrize(("password", "code"), REFUSED)
def test_module_refuses_with_a_code(password: str, code: str) -> None:
    text = module_check(password)
    assert code_of(text) == code, text
    # After the code, one plain sentence.
    assert text is not None and text.endswith(".") and len(text.split(" ", 1)[1]) > 20


@pytest.mark.parametrize(("password", "code"), [
    ("S2614023J!", "mims:login"),        # the student ID
    ("my2614023pw", "mims:login"),       # its number alone
    ("WeiLing2468", "mims:name"),        # given name, any case
    ("tan-tan-tan-7", "mims:name"),      # surname (3 letters)
    ("LingLing789x", "mims:name"),       # a word of cn
    ("Demops-rocks9", "mims:school"),    # the school
])
def test_module_refuses_what_the_entry_says_about_the_child(password: str, code: str) -> None:
    assert code_of(module_check(password)) == code


def test_module_refuses_the_login_ids_local_part() -> None:
    assert code_of(module_check("zq_river9!x", [("mail", "zq_river9@students.x.sg")])) \
        == "mims:login"


def test_module_skips_name_connectors_and_short_parts() -> None:
    """"bin"/"binte" join Malay names and are no one's name; 2-letter names are not checked."""
    malay = [("cn", "Nur Aisyah binte Mohamed Rizal"), ("sn", "binte Mohamed Rizal"),
             ("givenName", "Nur Aisyah"), ("uid", "S2718752C")]
    assert module_check("Robin-kite-27", malay) is None      # contains "bin"
    assert code_of(module_check("Nur-kite-27", malay)) == "mims:name"
    assert code_of(module_check("Aisyah-kite-2", malay)) == "mims:name"
    assert module_check("Ngkite-river-5", [("sn", "Ng")]) is None


@pytest.mark.parametrize("password", [
    "Tiger8567", "Gr8-Kite-Rain", "purple tiger river", "Brand-new-9", ("Kite river " * 7)[:64],
    "Monkey8567",  # a common word with a random (not a simple) run of digits
])
def test_module_accepts_good_passwords(password: str) -> None:
    assert module_check(password) is None


def test_two_hundred_default_passwords_pass_the_module() -> None:
    """The project's own defaults (a word a child knows + digits) are never refused, even
    when the word is a common password ("Tiger", "Monkey"): their digits are random, never a
    simple run (mimsdir.wordlist.is_simple_run)."""
    rng = random.Random(2024)
    passwords = [generate_default_password(9, rng) for _ in range(200)]
    refused = {pw: module_check(pw, []) for pw in passwords}
    assert {pw: t for pw, t in refused.items() if t} == {}


def test_module_fails_closed_without_its_deny_list(tmp_path: Path) -> None:
    text = module_check("Brand-new-9", denylist=tmp_path / "missing.txt")
    assert code_of(text) == "mims:unavailable"


def test_module_rereads_a_changed_deny_list(tmp_path: Path) -> None:
    deny = tmp_path / "deny.txt"
    deny.write_text("zebracrossing\n", encoding="utf-8")
    assert code_of(module_check("Zebracrossing", [], deny)) == "mims:common"
    deny.write_text("# nothing common\nsomethingelse\n", encoding="utf-8")
    assert module_check("Zebracrossing", [], deny) is None


def test_the_built_module_is_current_and_loadable_by_slapd() -> None:
    """What scripts/bootstrap.sh builds: a fresh .so (not older than its source), kept loaded
    between checks (NODELETE), exporting ppolicy's entry point and referencing no slapd
    symbol; a deny-list with zxcvbn's common passwords and the school words."""
    assert MODULE.is_file() and MODULE.stat().st_mtime >= SOURCE.stat().st_mtime
    dynamic = subprocess.run(["readelf", "-d", str(MODULE)], capture_output=True, text=True,
                             check=True).stdout
    assert "NODELETE" in dynamic
    symbols = subprocess.run(["nm", "-D", str(MODULE)], capture_output=True, text=True,
                             check=True).stdout
    assert " T check_password" in symbols
    undefined = [line.split()[-1] for line in symbols.splitlines() if " U " in line]
    assert all("@GLIBC" in name for name in undefined), undefined
    words = set(DENYLIST.read_text(encoding="utf-8").split("\n"))
    assert {"password", "123456789", "iloveyou", "minecraft", "mims", "student"} <= words
    assert len(words) > 30000


def test_the_build_script_is_idempotent_and_fast() -> None:
    root = Path(__file__).resolve().parents[1]
    before = MODULE.stat().st_mtime_ns
    res = subprocess.run(["bash", "scripts/build_pwcheck.sh"], cwd=root, capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert MODULE.stat().st_mtime_ns == before


def test_policies_name_the_module_for_people_not_services() -> None:
    pols = policies(CFG)
    for name in ("lower-primary", "upper-primary", "staff"):
        assert pols[name]["pwdCheckModule"] == [str(MODULE)]
        assert pols[name]["pwdCheckModuleArg"] == [str(DENYLIST)]
        assert "pwdPolicyChecker" in pols[name]["objectClass"]
    assert "pwdCheckModule" not in pols["services"]


def test_directory_up_refuses_a_missing_module(tmp_path: Path) -> None:
    from mimsdir.directory import server
    from mimsdir.errors import ConfigError

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"directory:\n  state_dir: {tmp_path / 's'}\n"
                        f"  pwcheck_module: {tmp_path / 'none.so'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="pwcheck_module"):
        server.up(load_config(cfg_path))
    assert not (tmp_path / "s").exists()


# -- slapd applies the rules -----------------------------------------------------------------

def _self_change(cfg: Config, s: Person, new: str) -> None:
    """As a device's `passwd` does: bind as the student, Password Modify with the old one."""
    with conn_as(cfg, s.dn, s.password) as c:
        c.set_password(s.dn, new, old=s.password)


def _sspr_change(cfg: Config, s: Person, new: str) -> None:
    """As the portal does after the student answered their questions: no old password."""
    with service_conn(cfg, "sspr") as c:
        c.set_password(s.dn, new, doing="setting a password after SSPR")


def _student(make: Factory) -> Person:
    return make.student(level="P4", password="Settled-pass-5", cn=[b"Tan Wei Ling"],
                        givenName=[b"Wei Ling"], sn=[b"Tan"])


SLAPD_CASES = [("Password1!", "mims:common"), ("12345678", "mims:sequence"),
               ("aaaaaaaa", "mims:repeat"), ("        ", "mims:space"),
               ("Weiling-kite7", "mims:name"), ("x" * 65, "mims:long")]


@pytest.mark.parametrize("how", ["self", "sspr"])
def test_slapd_refuses_each_rule_and_accepts_a_good_password(slapd, make, how) -> None:  # type: ignore[no-untyped-def]
    s = _student(make)
    change = _self_change if how == "self" else _sspr_change
    for password, code in [*SLAPD_CASES, (f"{s.uid.lower()}x!", "mims:login")]:
        with pytest.raises(PolicyViolation) as info:
            change(slapd, s, password)
        assert info.value.ppolicy_error == PP_INSUFFICIENT_QUALITY, password
        assert info.value.diagnostic.startswith(code + " "), info.value.diagnostic
        assert info.value.check_code == code.removeprefix("mims:")
        assert password not in str(info.value)
    change(slapd, s, "Gr8-Kite-Rain")
    assert conn_as(slapd, s.dn, "Gr8-Kite-Rain").whoami()


def test_sspr_is_no_longer_a_password_administrator(slapd, make) -> None:  # type: ignore[no-untyped-def]
    """A 3-character password written by the portal's account is refused by slapd (it was
    accepted while cn=sspr held "manage"), and the history applies to its writes."""
    s = _student(make)
    with pytest.raises(PolicyViolation) as info:
        _sspr_change(slapd, s, "abc")
    assert info.value.ppolicy_error == PP_TOO_SHORT
    _sspr_change(slapd, s, "First-kite-river")
    _sspr_change(slapd, s, "Second-kite-river")
    for reused in ("First-kite-river", "Second-kite-river", "Settled-pass-5"):
        with pytest.raises(PolicyViolation) as info:
            _sspr_change(slapd, s, reused)
        assert info.value.ppolicy_error == PP_IN_HISTORY, reused


def test_resetters_who_issue_defaults_are_not_checked(slapd, make) -> None:  # type: ignore[no-untyped-def]
    """The form teacher (like ICT and the sync) issues generated default passwords and keeps
    "manage": slapd skips the module and sets must-change, as before."""
    teacher = make.teacher()
    s = make.student(level="P3", teacher=teacher)
    with conn_as(slapd, teacher.dn, teacher.password) as c:
        c.set_password(s.dn, "Tiger2345")  # a simple run: the module would refuse it
    out = bind_as(slapd, s.dn, "Tiger2345")
    assert out.ok and out.must_change


def test_defaults_pass_through_slapd_too(slapd, make) -> None:  # type: ignore[no-untyped-def]
    s = _student(make)
    rng = random.Random(7)
    for _ in range(3):
        _sspr_change(slapd, s, generate_default_password(9, rng))


def test_refusals_never_put_the_password_in_slapds_log(slapd, make) -> None:  # type: ignore[no-untyped-def]
    s = _student(make)
    secret = "Weiling-secret-42"
    with pytest.raises(MimsError):
        _sspr_change(slapd, s, secret)
    log = (slapd.state_dir / "slapd.log").read_text(errors="replace")
    assert "mims:name" in log and secret not in log


def bind_as(cfg: Config, dn: str, password: str) -> BindOutcome:
    with network_conn(cfg, timeout=5) as c:
        return c.bind_ppolicy(dn, password)


def test_portal_sspr_reset_gets_policy_errors_with_the_code(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    """The portal's own call (PortalDirectory.sspr_reset) still works as a non-administrator,
    clears must-change and any wait, and hands slapd's refusals on as PolicyViolation with
    the ppolicy error and the module's code."""
    from mimsdir.portal.directory import PortalDirectory

    s = _student(make)
    for _ in range(4):
        assert not bind_as(slapd, s.dn, "wrong-guess").ok
    assert bind_as(slapd, s.dn, "Settled-pass-5").locked
    root.modify(s.dn, [(ldap.MOD_REPLACE, "pwdReset", [b"TRUE"])], "must change")
    d = PortalDirectory(slapd)
    try:
        with pytest.raises(PolicyViolation) as info:
            d.sspr_reset(s.dn, "Password2024")
        assert info.value.check_code == "common"
        assert info.value.ppolicy_error == PP_INSUFFICIENT_QUALITY
        with pytest.raises(PolicyViolation) as info:
            d.sspr_reset(s.dn, "Settled-pass-5")
        assert info.value.ppolicy_error == PP_IN_HISTORY
        d.sspr_reset(s.dn, "Kite-river-29")
    finally:
        d.close()
    out = bind_as(slapd, s.dn, "Kite-river-29")
    assert out.ok and not out.must_change
    assert root.get(s.dn, ["pwdReset", "pwdFailureTime", "pwdAccountLockedTime"], "x") == {}
