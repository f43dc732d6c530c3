"""``mimsdir requests import``: a reset-form CSV export, matched and reset as a batch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.staff_helpers import bind, config_path, run, slip_chunks, slip_password


def test_import_matches_resets_and_reports(slapd, make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = make.student(level="P3", class_name="3B", cn=[b"Tan Wei Ling"], givenName=[b"Wei Ling"],
                     sn=[b"Tan"])
    b = make.student(level="P2", class_name="2A", cn=[b"Arjun s/o Krishnan"])
    twin1 = make.student(level="P2", class_name="2A", cn=[b"Ali bin Ahmad"])
    twin2 = make.student(level="P2", class_name="2A", cn=[b"Ali bin Ahmad"])
    off = make.student(level="P2", class_name="2A", status="disabled")
    form = tmp_path / "form.csv"
    form.write_text(
        "Timestamp,Student's Email,Student Name,Class,Your Name,Email Address\r\n"
        f"2026/11/02 8:01,{a.mail.upper()},,,Mdm Tan,tan@parents.sg\r\n"
        f"2026/11/02 8:02,,  ARJUN s/o  krishnan ,2a,Mr K,\r\n"
        f"2026/11/02 8:03,,ali bin ahmad,2A,Mr A,\r\n"
        f"2026/11/02 8:04,{off.mail},,,Ms O,\r\n"
        "2026/11/02 8:05,nobody@students.test.sg,,,Ms N,\r\n"
        f"2026/11/02 8:06,,Tan Wei Ling,3B,Mdm Tan,\r\n"
        "2026/11/02 8:07,,,,Nobody,\r\n",
        encoding="utf-8")
    pdf = tmp_path / "slips.pdf"
    res = run(config_path(slapd), "requests", "import", str(form), "--school", make.school,
              "-o", str(pdf))
    assert res.exit_code == 1, res.output
    err = res.stderr
    assert f"{form}:4: ambiguous: 2 active students named 'ali bin ahmad' in class 2A" in err
    assert f"{form}:5: {off.uid}" in err and "disabled" in err
    assert f"{form}:6: no student with login ID 'nobody@students.test.sg'" in err
    assert f"{form}:8: no student email, and no student name with a class" in err
    assert f"{form}:7: same student as line 2: reset once" in res.stdout
    assert stat.S_IMODE(os.stat(pdf).st_mode) == 0o600

    chunks = list(slip_chunks(pdf))
    assert len(chunks) == 2
    assert b.mail in chunks[0] and a.mail in chunks[1]  # by class: 2A before 3B
    for person, chunk in ((b, chunks[0]), (a, chunks[1])):
        password = slip_password(chunk)
        assert password not in res.output
        out = bind(slapd, person.dn, password)
        assert out.ok and out.must_change
    for untouched in (twin1, twin2, off):
        assert not bind(slapd, untouched.dn, untouched.password).must_change


def test_import_clean_file_dry_run_and_bad_files(slapd, make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P4", class_name="4A")
    cfg = config_path(slapd)
    good = tmp_path / "good.csv"
    good.write_text(f"Student email,Requester\n{s.mail},Form teacher\n", encoding="utf-8")
    res = run(cfg, "requests", "import", str(good), "--dry-run")
    assert res.exit_code == 0 and "1 student(s) would be reset" in res.stdout
    assert bind(slapd, s.dn, s.password).ok

    res = run(cfg, "requests", "import", str(good), "-o", str(tmp_path / "s.pdf"))
    assert res.exit_code == 0, res.output
    assert len(list(slip_chunks(tmp_path / "s.pdf"))) == 1

    bad = tmp_path / "bad.csv"
    bad.write_text("Timestamp,Your name\n1,2\n", encoding="utf-8")
    res = run(cfg, "requests", "import", str(bad))
    assert res.exit_code == 2
    assert f"{bad}:1: no student email column" in res.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Student email\nok@x.sg\nb\xe9d@x.sg\n")
    res = run(cfg, "requests", "import", str(latin))
    assert res.exit_code == 2 and f"{latin}:3: not UTF-8" in res.stderr
    res = run(cfg, "requests", "import", str(tmp_path / "missing.csv"))
    assert res.exit_code == 2 and "cannot read" in res.stderr
