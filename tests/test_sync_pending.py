"""The pending-credential flag, deterministically (issue 8, item 9): a sync that dies after a
new student's password is written, before (or just after) the slip carrying it is on disk,
leaves ``mimsCredentialPending: TRUE``; the next run re-issues a password on a new slip and
clears the flag. No random kill times: the run is stopped at a chosen point by an exception
that no clean-up code in the sync catches (it is not an ``Exception``)."""

from __future__ import annotations

import uuid

import pytest

import mimsdir.pdfs
import mimsdir.secret_docs
from mimsdir.connect import network_conn
from tests.sync_helpers import delete_school, run_sync, school_entries, school_rows, write_roster
from tests.test_sync_e2e import slip_passwords


class Killed(BaseException):
    """The process dying: not an Exception, so no ``except Exception`` clean-up runs."""


@pytest.fixture
def school(slapd):  # type: ignore[no-untyped-def]
    code = "P" + uuid.uuid4().hex[:7].upper()
    yield code
    delete_school(slapd, code)


def binds(slapd, dn: str, password: str) -> bool:  # type: ignore[no-untyped-def]
    with network_conn(slapd) as c:
        return c.bind_ppolicy(dn, password).ok


@pytest.mark.parametrize("where", ["before-slip", "after-slip"])
def test_run_killed_after_the_password_leaves_the_flag_and_a_rerun_converges(
        slapd, school, tmp_path, monkeypatch, where: str) -> None:  # type: ignore[no-untyped-def]
    rows = [{**r, "class": "4A"} for r in school_rows(school, 3)]
    roster = write_roster(tmp_path / "r.csv", rows)
    slips = tmp_path / "slips"
    real_write = mimsdir.secret_docs.write_secret_file

    def render_then_die(*_a, **_kw):  # type: ignore[no-untyped-def]
        raise Killed("killed after the passwords were set, before any slip")

    def write_then_die(path, data) -> None:  # type: ignore[no-untyped-def]
        real_write(path, data)
        raise Killed("killed after the slip was fsynced, before the flag was cleared")

    if where == "before-slip":
        monkeypatch.setattr(mimsdir.pdfs, "render_slips", render_then_die)
    else:
        monkeypatch.setattr(mimsdir.secret_docs, "write_secret_file", write_then_die)
    with pytest.raises(Killed):
        run_sync(slapd, roster, tmp=tmp_path)
    monkeypatch.undo()

    entries = school_entries(slapd, school)
    assert sorted(entries) == sorted(r["student_id"] for r in rows)
    for uid, e in entries.items():
        # The password was written (so the run died after that step)...
        assert e["userPassword"][0].startswith("{ARGON2}"), uid
        # ...and no slip is known to carry it: the flag says so.
        assert e.get("mimsCredentialPending") == ["TRUE"], uid
    first_slips = sorted(slips.rglob("*.pdf"))
    assert len(first_slips) == (0 if where == "before-slip" else 1)
    lost = slip_passwords(slips)  # the slip written just before the kill, if any

    # The next night's run re-issues every pending credential on a new slip.
    r = run_sync(slapd, roster, tmp=tmp_path)
    assert r.code == 0, r.result.output
    assert r.report["planned"]["reissue"] == 3 and r.report["planned"]["create"] == 0
    assert r.report["applied"]["reissue"] == 3 and r.report["credentials_issued"] == 3
    new_slips = sorted(set(slips.rglob("*.pdf")) - set(first_slips))
    assert len(new_slips) == 1 and [str(p) for p in new_slips] == r.report["slips"]
    passwords = slip_passwords(slips)  # the later slip wins
    entries = school_entries(slapd, school)
    for uid, e in entries.items():
        assert "mimsCredentialPending" not in e, uid
        assert e["pwdReset"] == ["TRUE"], uid
        mail, dn = e["mail"][0], e["entryDN"][0]
        assert binds(slapd, dn, passwords[mail]), f"{uid}: the new slip's password fails"
        if mail in lost:  # the slip of the killed run is worth nothing now
            assert lost[mail] != passwords[mail]
            assert not binds(slapd, dn, lost[mail]), f"{uid}: the killed run's slip works"

    # Converged: a third run has nothing to do.
    again = run_sync(slapd, roster, "--dry-run", tmp=tmp_path)
    assert again.code == 0
    assert again.report["planned"] == {**{k: 0 for k in again.report["planned"]},
                                       "unchanged": 3}
