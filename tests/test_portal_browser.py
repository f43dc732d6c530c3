"""The portal in a real browser (Debian's chromium via Playwright) against a real portal
(waitress) and the session's real slapd. Every page is checked with axe-core (WCAG 2.1 AA:
no serious or critical violation) and, with MIMS_SCREENSHOTS=1, saved to docs/img/."""

from __future__ import annotations

import re

import ldap
import pytest
from playwright.sync_api import Page, expect

from mimsdir.connect import network_conn
from mimsdir.ldapio import filter_eq
from tests.browser import (
    TABLET_PORTRAIT,
    assert_accessible,
    console_errors,
    new_page,
    screenshot,
    serve_wsgi,
)
from tests.portal_helpers import ANSWERS, give_answers, make_app

pytestmark = pytest.mark.browser
QUESTION_TO_ID = {
    "What is the name of your first soft toy?": "first-soft-toy",
    "Where did you go for your first holiday?": "first-holiday",
    "What is the name of your youngest cousin?": "youngest-cousin",
}


@pytest.fixture(scope="module")
def base_url(slapd):  # type: ignore[no-untyped-def]
    with serve_wsgi(make_app(slapd)) as url:
        yield url


def named(full: str, given: str) -> dict[str, list[bytes]]:
    """Real-looking names, so the screenshots in docs/img read like a school's pages."""
    return {"cn": [full.encode()], "givenName": [given.encode()],
            "sn": [full.removeprefix(given).strip().encode() or given.encode()]}


def check(page: Page, name: str) -> None:
    """Accessible, no console error (a CSP refusal shows there), and a picture."""
    assert_accessible(page, name)
    assert console_errors(page) == []
    screenshot(page, name)


def sign_in(page: Page, base_url: str, login: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Login ID (your school email)").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def device_bind(slapd, mail: str, password: str):  # type: ignore[no-untyped-def]
    """What an SSOE device does: find the student by mail as cn=device, bind as them."""
    pw = (slapd.secrets_dir / "device.pw").read_text().strip()
    with network_conn(slapd) as dev:
        dev.bind(f"cn=device,ou=services,{slapd.ldap.base_dn}", pw)
        (dn, _), = dev.search(f"ou=students,{slapd.ldap.base_dn}", ldap.SCOPE_ONELEVEL,
                              filter_eq("mail", mail), ["uid"], "device lookup")
    with network_conn(slapd) as c:
        return c.bind_ppolicy(dn, password)


def answer_questions(page: Page, right: bool = True) -> None:
    for i in range(2):
        field = page.locator(f"#a{i}")
        label = page.locator(f"label[for=a{i}]").inner_text()
        field.fill(ANSWERS[QUESTION_TO_ID[label]] if right else "not it")
    page.get_by_role("button", name="Check my answers").click()


def test_login_page_laptop_and_tablet(page: Page, browser, base_url) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check(page, "login")
    with new_page(browser, viewport=TABLET_PORTRAIT) as tablet:
        tablet.goto(base_url + "/login")
        assert_accessible(tablet, "login (tablet)")
        screenshot(tablet, "login-tablet")
        # Nothing wider than the screen on a tablet in portrait.
        assert tablet.evaluate("document.documentElement.scrollWidth") <= TABLET_PORTRAIT[0]


def test_forgot_password_then_device_sign_in(page: Page, slapd, make, root, base_url) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P5", password="Old-forgotten-1")
    give_answers(root, s.dn)
    page.goto(base_url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    check(page, "forgot")
    page.get_by_label("Login ID (your school email)").fill(s.mail)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Answer your questions")).to_be_visible()
    check(page, "forgot-questions")
    answer_questions(page)
    expect(page.get_by_role("heading", name="Make a new password")).to_be_visible()
    check(page, "forgot-new-password")
    page.get_by_label("New password", exact=True).fill("Sunny-Day-42")
    page.get_by_label("New password again").fill("Sunny-Day-42")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    check(page, "forgot-done")
    out = device_bind(slapd, s.mail, "Sunny-Day-42")
    assert out.ok and not out.must_change
    assert not device_bind(slapd, s.mail, "Old-forgotten-1").ok


def test_ict_reset_then_forced_change(page: Page, slapd, make, root, base_url) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3", **named("Wei Ling Tan", "Wei Ling"))
    root.set_password(s.dn, "Mango4821")  # the ICT reset (`mimsdir student reset-password`)
    sign_in(page, base_url, s.mail, "Mango4821")
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    check(page, "forced-change")
    page.get_by_label("The password on your slip").fill("Mango4821")
    page.get_by_label("New password", exact=True).fill("abc")
    page.get_by_label("New password again").fill("abc")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_role("alert")).to_contain_text("too short")
    check(page, "forced-change-error")
    page.get_by_label("The password on your slip").fill("Mango4821")
    page.get_by_label("New password", exact=True).fill("Rainbow-Fish-7")
    page.get_by_label("New password again").fill("Rainbow-Fish-7")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_role("heading", name=re.compile("Hello"))).to_be_visible()
    check(page, "home")
    assert device_bind(slapd, s.mail, "Rainbow-Fish-7").ok


def test_p4_replaces_card_answers(page: Page, slapd, make, root, base_url) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P4", mimsQnaMustChange=[b"TRUE"], **named("Jun Jie Tan", "Jun Jie"))
    give_answers(root, s.dn, origin="card")
    sign_in(page, base_url, s.mail, s.password)
    expect(page.get_by_role("heading", name="Set your own questions")).to_be_visible()
    check(page, "questions")
    picks = [("first-soft-toy", "Ollie Owl"), ("bedtime-story", "Tiny Moon"),
             ("baby-nickname", "Little Star")]
    page.get_by_label("Your password").fill(s.password)
    for i, (qid, ans) in enumerate(picks):
        page.locator(f"#q{i}").select_option(qid)
        page.locator(f"#a{i}").fill(ans)
    page.get_by_role("button", name="Save my questions").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    e = root.get(s.dn, ["mimsChallengeOrigin", "mimsQnaMustChange"], "check")
    assert e == {"mimsChallengeOrigin": [b"student"]}


def test_back_off_then_teacher_clears_it(page: Page, browser, slapd, make, root, base_url) -> None:  # type: ignore[no-untyped-def]
    teacher = make.teacher("5B", name="Mrs Siti Rahimah")
    s = make.student(level="P5", class_name="5B", teacher=teacher,
                     **named("Muhammad Irfan bin Ismail", "Muhammad Irfan"))
    make.student(level="P5", class_name="5B", teacher=teacher, **named("Chloé Pereira", "Chloé"))
    make.student(level="P5", class_name="5B", teacher=teacher,
                 **named("Arjun s/o Krishnan", "Arjun"))
    give_answers(root, s.dn)
    page.goto(base_url + "/forgot")
    page.get_by_label("Login ID (your school email)").fill(s.mail)
    page.get_by_role("button", name="Next").click()
    answer_questions(page, right=False)
    expect(page.get_by_role("alert")).to_contain_text("Please wait 1 minute")
    check(page, "sspr-backoff")
    page.goto(base_url + "/forgot/questions")
    expect(page.get_by_role("heading", name="Please wait")).to_be_visible()
    # Served with status 429 (chromium notes that in the console): accessible all the same.
    assert_accessible(page, "sspr-please-wait")
    screenshot(page, "sspr-please-wait")

    with new_page(browser) as t:
        sign_in(t, base_url, teacher.mail, teacher.password)
        expect(t.get_by_role("heading", name="My class")).to_be_visible()
        expect(t.get_by_text("Too many wrong answers")).to_be_visible()
        row = t.get_by_role("row", name=re.compile("Muhammad Irfan"))
        expect(row.get_by_text("Questions not set")).to_have_count(0)  # he has answers
        expect(t.get_by_role("row", name=re.compile("Chloé")).get_by_text(
            "Questions not set")).to_be_visible()
        check(t, "teacher")
        t.get_by_role("button", name="Unlock Muhammad Irfan bin Ismail").click()
        expect(t.get_by_role("status")).to_contain_text("Unlocked")

    page.goto(base_url + "/forgot/questions")
    expect(page.get_by_role("heading", name="Answer your questions")).to_be_visible()
    answer_questions(page)
    expect(page.get_by_role("heading", name="Make a new password")).to_be_visible()


def test_teacher_resets_own_student_and_is_refused_another(page: Page, slapd, make, root,  # type: ignore[no-untyped-def]
                                                          base_url) -> None:
    teacher = make.teacher("4C", name="Mr Jason Lim")
    other = make.teacher("4D")
    mine = make.student(level="P4", class_name="4C", teacher=teacher,
                        **named("Priya d/o Ramasamy", "Priya"))
    theirs = make.student(level="P4", class_name="4D", teacher=other)
    sign_in(page, base_url, teacher.mail, teacher.password)
    expect(page.get_by_text(mine.mail)).to_be_visible()
    expect(page.get_by_text(theirs.mail)).to_have_count(0)
    page.get_by_role("button", name="Reset the password of Priya d/o Ramasamy").click()
    expect(page.get_by_role("heading", name=re.compile("New password for"))).to_be_visible()
    expect(page.get_by_role("button", name="Print the slip")).to_be_visible()
    check(page, "teacher-reset")
    password = page.locator("#pw").inner_text()
    out = device_bind(slapd, mine.mail, password)
    assert out.ok and out.must_change
    # Tampering with the form (another class's uid) is refused, and nothing changes there.
    page.get_by_role("link", name="Back to my class").click()
    before = root.get(theirs.dn, ["userPassword"], "hash")
    page.locator("form[action$='/teacher/reset'] input[name=uid]").first.evaluate(
        f"el => el.value = '{theirs.uid}'")
    page.get_by_role("button", name="Reset the password of Priya d/o Ramasamy").click()
    expect(page.get_by_role("status")).to_contain_text("not in your class")
    assert root.get(theirs.dn, ["userPassword"], "hash") == before


def test_language_switch_on_every_page(page: Page, base_url) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/login")
    for code, name, lang in (("zh", "中文", "zh-Hans"), ("ms", "Bahasa Melayu", "ms"),
                             ("ta", "தமிழ்", "ta")):
        page.get_by_role("link", name=name).click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert page.get_by_role("heading").first.inner_text() != "Sign in"
        check(page, f"login-{code}")
        page.locator("main a[href$='/forgot']").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_accessible(page, f"forgot-{code}")
        page.goto(base_url + "/login")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_not_found_page(page: Page, base_url) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert_accessible(page, "404")


def test_p2_home_password_change_and_card_note(page: Page, slapd, make, base_url) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P2", password="Panda-4827", **named("Xin Yi Lim", "Xin Yi"))
    sign_in(page, base_url, s.mail, "Panda-4827")
    expect(page.get_by_role("heading", name="Hello, Xin Yi Lim!")).to_be_visible()
    expect(page.get_by_role("link", name="Change my questions")).to_have_count(0)
    page.goto(base_url + "/questions")
    expect(page.get_by_text("on the card in your student handbook")).to_be_visible()
    check(page, "questions-card")
    page.goto(base_url + "/home")
    page.get_by_role("link", name="Change my password").click()
    check(page, "change-password")
    page.get_by_label("Your current password").fill("Panda-4827")
    page.get_by_label("New password", exact=True).fill("Otter-Swim-33")
    page.get_by_label("New password again").fill("Otter-Swim-33")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    assert device_bind(slapd, s.mail, "Otter-Swim-33").ok
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("signed out")
    check(page, "signed-out")
