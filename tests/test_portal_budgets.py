"""The portal's budgets (issue 8, item 3): one per client across every form, failures per
login ID with familiar browsers counted apart, the same for login IDs that do not exist."""

from __future__ import annotations

from tests.portal_helpers import WRONG, Browserish, give_answers, make_app, text
from tests.test_portal_flows import answer, start_sspr


def test_one_budget_across_the_forms(slapd) -> None:  # type: ignore[no-untyped-def]
    app = make_app(slapd, address_limit="3 per minute")
    web = Browserish(app.test_client())
    codes = [web.login("someone@x.sg", "x").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    # /login is used up: so is /forgot (and every other form) for this client.
    web.get("/forgot")
    assert web.post("/forgot", {"login_id": "someone@x.sg"}).status_code == 429
    assert web.login("someone@x.sg", "x").status_code == 429
    # Another address has its own budget.
    other = app.test_client()
    assert other.get("/login", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200


def test_familiar_browser_keeps_signing_in_when_the_school_address_is_used_up(slapd, make) -> None:  # type: ignore[no-untyped-def]
    app = make_app(slapd, address_limit="4 per minute")
    s = make.student(level="P4")
    child = Browserish(app.test_client())
    assert child.login(s.mail, s.password).status_code == 302  # this browser is now familiar
    script = Browserish(app.test_client())  # a classmate's script at the same address
    while script.login("x@y.sg", "guess").status_code != 429:
        pass
    assert script.login(s.mail, s.password).status_code == 429
    assert child.login(s.mail, s.password).status_code == 302


def test_failures_per_login_id_and_familiar_browsers(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    from mimsdir.staff.credentials import unlock_modlist

    # Attempts are counted before they are checked: the child's first sign-in (then an
    # unfamiliar browser) is one of the four.
    app = make_app(slapd, account_limit="4 per 15 minutes")
    s = make.student(level="P4")
    child = Browserish(app.test_client())
    assert child.login(s.mail, s.password).status_code == 302
    classmate = Browserish(app.test_client())
    for _ in range(3):
        assert WRONG in text(classmate.login(s.mail, "guess-1234"))
    # slapd's own delay after those failures is another rule (test_ppolicy): here, the
    # portal's budget alone.
    root.modify(s.dn, unlock_modlist(), "t")
    # The classmate's browser (and any unfamiliar one) is now held off for this login ID,
    # even with the right password; nothing more reaches slapd from it.
    assert "Too many tries for this login ID" in text(classmate.login(s.mail, s.password))
    stranger = Browserish(app.test_client())
    assert "Too many tries" in text(stranger.login(s.mail, s.password))
    # The child's own browser, familiar for this login ID, is not.
    assert child.login(s.mail, s.password).status_code == 302
    # Another login ID from the classmate's browser is not held off either.
    other = make.student(level="P4")
    assert classmate.login(other.mail, other.password).status_code == 302


def test_unknown_login_ids_are_throttled_the_same(slapd) -> None:  # type: ignore[no-untyped-def]
    app = make_app(slapd, account_limit="3 per 15 minutes")
    web = Browserish(app.test_client())
    pages = [text(web.login("no.such.child@students.test.sg", "guess")) for _ in range(4)]
    assert all(WRONG in p for p in pages[:3]) and "Too many tries" in pages[3]


def test_wrong_answers_count_against_the_login_id(slapd, make, root) -> None:  # type: ignore[no-untyped-def]
    app = make_app(slapd, account_limit="1 per 15 minutes", backoff_minutes=(0,))
    s = make.student(level="P5")
    give_answers(root, s.dn)
    web = Browserish(app.test_client())
    assert "do not match" in text(answer(web, start_sspr(web, s.mail), right=False))
    assert "Too many tries" in text(web.login(s.mail, s.password))


def test_attempts_sent_at_once_are_bounded_by_the_budget(slapd, make, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """16 wrong passwords at the same moment: only the budget's worth reach slapd."""
    import threading

    from mimsdir.portal.directory import PortalDirectory

    app = make_app(slapd, account_limit="4 per 15 minutes")
    s = make.student(level="P4")
    binds: list[str] = []
    real = PortalDirectory.sign_in

    def counted(self, dn, password):  # type: ignore[no-untyped-def]
        binds.append(dn)
        return real(self, dn, password)

    monkeypatch.setattr(PortalDirectory, "sign_in", counted)
    clients = [Browserish(app.test_client()) for _ in range(16)]
    for c in clients:
        c.get("/login")
    barrier = threading.Barrier(16)

    def guess(c: Browserish) -> None:
        barrier.wait(10)
        c.post("/login", {"login_id": s.mail, "password": "Guess-9876"})

    threads = [threading.Thread(target=guess, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len([dn for dn in binds if dn == s.dn]) == 4
