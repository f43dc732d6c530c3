"""The POSIX rules, pure (mimsdir/posix.py and the config keys): the Linux user name, the home
directory of an email-shaped name, group names that can never be a device's own, number
partitioning by server id. No server. The planner's part: tests/test_sync_plan_posix.py."""

from __future__ import annotations

import pytest

from mimsdir.config import PosixConfig, ReplicationConfig
from mimsdir.errors import ConfigError
from mimsdir.posix import (
    ID_STRIDE,
    MAX_ID,
    home_directory,
    number,
    school_group,
    server_id_of_csn,
    shell_problem,
    template_problem,
    user_name,
)


def test_the_linux_user_name_is_the_email_lower_case() -> None:
    assert user_name(" Wei_Ling_Tan@Students.Demo.EDU.sg ") == "wei_ling_tan@students.demo.edu.sg"


@pytest.mark.parametrize(("uid", "school", "home"), [
    ("S2614023J", "DEMOPS", "/home/demops/s2614023j"),
    # Roster ids may hold '.', '_' and '-': kept; a leading dot never makes a hidden name,
    # '.' or '..' never a path step.
    ("ab.c-d_e", "X1", "/home/x1/ab.c-d_e"),
    ("..", "X1", "/home/x1/_."),
    (".hidden", "X1", "/home/x1/_hidden"),
    # Staff ids come from ICT's LDIF: anything outside [a-z0-9._-] becomes '_'.
    ("T/../../etc", None, "/home/staff/t_.._.._etc"),
    ("", "X1", "/home/x1/_"),
])
def test_home_directory_is_never_built_from_the_email(uid: str, school: str | None,
                                                     home: str) -> None:
    assert home_directory("/home/{school}/{uid}", uid, school) == home
    assert "@" not in home


@pytest.mark.parametrize(("template", "problem"), [
    ("/home/{school}/{uid}", None),
    ("/srv/home/{uid}", None),
    ("home/{uid}", "absolute"),
    ("/home/{uid}/", "absolute"),
    ("/home/{school}", "must contain {uid}"),
    ("/home/{mail}", "unknown placeholder"),
    ("/home/{uid!r}", "unknown placeholder"),
    ("/home/{uid:>10}", "unknown placeholder"),
    ("/home/{uid", "not a template"),
    ("/home/my files/{uid}", "printable ASCII"),
    ("/home:/{uid}", "printable ASCII"),
    ("/home/élèves/{uid}", "printable ASCII"),
    ("/home/../{uid}", "'..'"),
    ("/home//{uid}", "empty"),
])
def test_home_templates_are_validated(template: str, problem: str | None) -> None:
    got = template_problem(template)
    assert (got is None) if problem is None else (got is not None and problem in got), got


def test_shell_is_validated() -> None:
    assert shell_problem("/bin/bash") is None
    for bad in ("bash", "/bin/ba sh", "/bin:/x", "/bin/"):
        assert shell_problem(bad)


def test_config_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match=r"posix\.home_template: must contain"):
        PosixConfig(home_template="/home/{school}").validate("posix")
    with pytest.raises(ConfigError, match=r"posix\.staff_home_template"):
        PosixConfig(staff_home_template="relative/{uid}").validate("posix")
    with pytest.raises(ConfigError, match=r"posix\.shell"):
        PosixConfig(shell="bash").validate("posix")  # noqa: S604 (a login shell)
    with pytest.raises(ConfigError, match=r"posix\.uid_min: between 65536"):
        PosixConfig(uid_min=1000).validate("posix")
    with pytest.raises(ConfigError, match=r"posix\.gid_min"):
        PosixConfig(gid_min=2**31).validate("posix")
    PosixConfig().validate("posix")


def test_school_groups_cannot_take_a_devices_own_group_names() -> None:
    """A school coded SUDO must not make its students members of %sudo on a device (sudo
    matches a group by the name getgrgid returns)."""
    for code in ("SUDO", "ADM", "WHEEL", "ROOT", "STAFF", "USERS"):
        name = school_group(code)
        assert name.startswith("school-") and name == f"school-{code.lower()}"
    assert school_group("MIMS") != "mims-staff"


def test_numbers_are_partitioned_by_server_id() -> None:
    ours = {number(1000000, i, 1) for i in range(500)}
    theirs = {number(1000000, i, 2) for i in range(500)}
    standalone = {number(1000000, i, 0) for i in range(500)}
    assert not ours & theirs and not ours & standalone and not theirs & standalone
    assert all((n - 1000000) % ID_STRIDE == 1 for n in ours)
    assert number(1000000, 0, 0) == 1000000 and number(1000000, 2, 5) == 1000133
    with pytest.raises(ValueError, match="server id"):
        number(1000000, 0, ID_STRIDE)
    with pytest.raises(ValueError, match="no numbers left"):
        number(MAX_ID - 10, 1, 0)


def test_replication_server_ids_fit_the_partition() -> None:
    ReplicationConfig(server_id=ID_STRIDE - 1).validate("directory.replication")
    with pytest.raises(ConfigError, match=f"between 1 and {ID_STRIDE - 1}"):
        ReplicationConfig(server_id=ID_STRIDE).validate("directory.replication")


def test_server_id_of_csn() -> None:
    assert server_id_of_csn("20261128020000.123456Z#000000#002#000000") == 2
    assert server_id_of_csn("20261128020000.123456Z#000003#03f#000000") == 63
    assert server_id_of_csn("20261128020000.123456Z#000000#000#000000") == 0
    with pytest.raises(ValueError):
        server_id_of_csn("20261128020000Z")
