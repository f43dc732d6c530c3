"""``mimsdir qna cards|reset`` and the answer upgrade on verify, against the session's slapd."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import ldap
import pytest

from mimsdir.challenge import ChallengeHasher, decode_challenge, encode_challenge
from mimsdir.errors import DirectoryUnavailable
from mimsdir.ldapio import Conn, first, values
from mimsdir.pdfs import FontMissing
from mimsdir.staff import cards as cards_mod
from mimsdir.staff.qna import verify_and_upgrade
from tests.staff_helpers import card_answers, card_chunks, config_path, make_class, run

HASHER = ChallengeHasher(19456, 2, 1)  # the test config's qna parameters (the minimum)


def stored(root: Conn, dn: str) -> dict[str, str]:
    attrs = root.get(dn, ["mimsChallenge"], "reading answers") or {}
    return dict(decode_challenge(v) for v in values(attrs, "mimsChallenge"))


def check_cards(root: Conn, pdf: Path, people: list,  # type: ignore[type-arg]
                others: int = 0) -> dict[str, dict[str, str]]:
    """Each card names one of ``people`` (or is one of ``others`` cards not checked); its
    printed answers verify against that student's stored hashes. Returns login ID -> answers."""
    by_mail = {p.mail: p for p in people}
    seen: dict[str, dict[str, str]] = {}
    skipped = 0
    for chunk in card_chunks(pdf):
        mails = [m for m in by_mail if m in chunk]
        if not mails:
            skipped += 1
            continue
        (mail,) = mails
        answers = card_answers(chunk)
        hashes = stored(root, by_mail[mail].dn)
        assert len(answers) == 3 and set(answers) == set(hashes)
        for qid, answer in answers.items():
            assert HASHER.verify(hashes[qid], answer)
        seen[mail] = answers
    assert set(seen) == set(by_mail) and skipped == others
    return seen


def test_cards_for_lower_primary_then_reissue_one(slapd, make, root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p2 = make_class(make, 3, "P2", "2A", mimsQnaMustChange=[b"TRUE"])
    p3 = make_class(make, 2, "P3", "3B")
    p4 = make.student(level="P4", class_name="4A")
    off = make.student(level="P2", class_name="2A", status="disabled")
    pdf = tmp_path / "cards.pdf"
    res = run(config_path(slapd), "qna", "cards", "--school", make.school, "-o", str(pdf))
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(pdf).st_mode) == 0o600
    assert not (tmp_path / ".cards.pdf.pending").exists()
    printed = check_cards(root, pdf, p2 + p3)
    for answers in printed.values():  # the answers are on the card, never on the screen
        assert not any(a in res.output for a in answers.values())
    for p in p2 + p3:
        attrs = root.get(p.dn, ["mimsChallengeOrigin", "mimsQnaMustChange"], "r")
        assert attrs == {"mimsChallengeOrigin": [b"card"]}
    assert stored(root, p4.dn) == {} and stored(root, off.dn) == {}

    # a lost card: re-issue for one student; the old card stops working
    old = printed[p2[0].mail]
    again = tmp_path / "lost.pdf"
    res = run(config_path(slapd), "qna", "cards", p2[0].uid, "-o", str(again))
    assert res.exit_code == 0, res.output
    new = check_cards(root, again, [p2[0]])[p2[0].mail]
    hashes = stored(root, p2[0].dn)
    assert new != old
    assert not any(HASHER.verify(hashes[q], a) for q, a in old.items() if q in hashes)
    check_cards(root, pdf, p2[1:] + p3, others=1)  # classmates' cards still good

    # --class and --level narrow the scope; a P4 named by ID is refused (row error)
    res = run(config_path(slapd), "qna", "cards", "--school", make.school, "--level", "P3",
              "-o", str(tmp_path / "p3.pdf"))
    assert res.exit_code == 0 and "2 card(s)" in res.stdout
    res = run(config_path(slapd), "qna", "cards", p4.uid, "-o", str(tmp_path / "p4.pdf"))
    assert res.exit_code == 1 and "cards are for P2-P3" in res.stderr
    assert not (tmp_path / "p4.pdf").exists()
    res = run(config_path(slapd), "qna", "cards", "--school", make.school, "--level", "P4",
              "-o", str(tmp_path / "p4.pdf"))
    assert res.exit_code == 2


def test_cards_never_deliver_unstored_answers(slapd, make, root, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    kids = make_class(make, 3, "P2", "2A")
    cfg = config_path(slapd)
    # fonts missing: fails before the directory is touched
    def no_fonts(*a: object, **k: object) -> bytes:
        raise FontMissing("font NotoSans-Regular.ttf not found: install fonts-noto-core")

    monkeypatch.setattr(cards_mod, "render_cards", no_fonts)
    res = run(cfg, "qna", "cards", "--school", make.school, "-o", str(tmp_path / "a.pdf"))
    assert res.exit_code == 2 and "fonts-noto-core" in res.stderr
    assert all(stored(root, k.dn) == {} for k in kids)
    monkeypatch.undo()

    # the directory goes away after the first student: only that card is delivered, exit 4
    real_modify = Conn.modify
    calls = {"n": 0}

    def flaky(self: Conn, dn: str, modlist: list, doing: str) -> None:  # type: ignore[type-arg]
        if "card answers" in doing:
            calls["n"] += 1
            if calls["n"] > 1:
                raise DirectoryUnavailable(f"{doing}: directory unreachable (test)")
        real_modify(self, dn, modlist, doing)

    monkeypatch.setattr(Conn, "modify", flaky)
    pdf = tmp_path / "b.pdf"
    res = run(cfg, "qna", "cards", "--school", make.school, "-o", str(pdf))
    monkeypatch.undo()
    assert res.exit_code == 4, res.output
    with_answers = [k for k in kids if stored(root, k.dn)]
    assert len(with_answers) == 1
    check_cards(root, pdf, with_answers)
    assert not (tmp_path / ".b.pdf.pending").exists()


def test_qna_reset_makes_students_register_again(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    answer = encode_challenge("first-holiday", HASHER.hash("bali")).encode()
    s = make.student(level="P5", class_name="5A", mimsChallenge=[answer],
                     mimsChallengeOrigin=[b"student"])
    young = make.student(level="P2", class_name="2A")
    cfg = config_path(slapd)
    res = run(cfg, "qna", "reset", s.uid, young.mail, "S-NOBODY")
    assert res.exit_code == 1 and "S-NOBODY" in res.stderr
    assert f"qna cards {young.uid}" in res.stdout
    attrs = root.get(s.dn, ["mimsChallenge", "mimsChallengeOrigin", "mimsQnaMustChange"], "r")
    assert attrs == {"mimsQnaMustChange": [b"TRUE"]}
    res = run(cfg, "student", "find", "--school", make.school, "--qna-pending", "--json")
    assert {s.uid, young.uid} <= set(res.stdout.split('"')) and res.exit_code == 0


def test_verify_and_upgrade_rehashes_weaker_hashes(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    weak = ChallengeHasher(19456, 2, 1)
    strong = ChallengeHasher(19456, 3, 1)
    s = make.student(level="P4", mimsChallenge=[
        encode_challenge("first-holiday", weak.hash("Sentosa")).encode(),
        encode_challenge("family-game", weak.hash("uno")).encode()])
    assert not verify_and_upgrade(root, s.dn, "first-holiday", "Bintan", strong)
    assert ",t=2," in stored(root, s.dn)["first-holiday"]
    assert verify_and_upgrade(root, s.dn, "first-holiday", " sentosa! ", strong)
    hashes = stored(root, s.dn)
    assert ",t=3," in hashes["first-holiday"] and not strong.needs_upgrade(
        hashes["first-holiday"])
    assert strong.verify(hashes["first-holiday"], "Sentosa")
    assert ",t=2," in hashes["family-game"]  # only the verified answer is touched
    assert verify_and_upgrade(root, s.dn, "first-holiday", "Sentosa", strong)
    assert not verify_and_upgrade(root, s.dn, "no-such-question", "Sentosa", strong)
    assert first(root.get(s.dn, ["mimsChallenge"], "r") or {}, "mimsChallenge")


def test_qna_cards_usage(slapd, make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_path(slapd)
    assert run(cfg, "qna", "cards", "-o", str(tmp_path / "x.pdf")).exit_code == 2
    assert run(cfg, "qna", "cards", "--school", make.school).exit_code == 2
    res = run(cfg, "qna", "cards", "--school", make.school, "-o", str(tmp_path / "x.pdf"))
    assert res.exit_code == 0 and "no active P2-P3 students" in res.stdout
    assert not (tmp_path / "x.pdf").exists()
    assert ldap  # the module is used by fixtures through conftest
