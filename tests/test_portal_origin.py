"""CSRF, second wall: a form post's Origin (else Referer) must be the portal's own
(mimsdir/portal/origin.py). Each request below carries a valid token and session cookie, so
only the origin rule can refuse it. Over the real proxy: tests/test_proxy_nginx.py."""

from __future__ import annotations

import pytest

from mimsdir.portal.origin import origin_of
from tests.portal_helpers import Browserish, make_app, text

LOGIN = {"login_id": "nobody@students.test.sg", "password": "wrong"}


@pytest.fixture(scope="module")
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd, address_limit="1000 per minute")


def post(app, base: str, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    web = Browserish(app.test_client())
    web.get("/login", base_url=base)
    r = web.post("/login", LOGIN, base_url=base, headers=headers)
    if r.status_code == 400:
        assert "expired" in text(r)
    return r.status_code  # type: ignore[no-any-return]


@pytest.mark.parametrize(("base", "headers", "status"), [
    # over HTTPS (behind the proxy)
    ("https://portal.school.sg", {"Origin": "https://portal.school.sg"}, 200),
    ("https://portal.school.sg", {"Origin": "https://PORTAL.school.sg:443"}, 200),
    ("https://portal.school.sg", {"Referer": "https://portal.school.sg/login"}, 200),
    ("https://portal.school.sg", {}, 400),  # neither: a current browser always sends one
    ("https://portal.school.sg", {"Origin": "https://evil.example"}, 400),
    ("https://portal.school.sg", {"Origin": "null"}, 400),  # what no-referrer pages send
    ("https://portal.school.sg", {"Origin": "http://portal.school.sg"}, 400),
    ("https://portal.school.sg", {"Origin": "https://portal.school.sg:8443"}, 400),
    ("https://portal.school.sg", {"Origin": "https://portal.school.sg.evil.example"}, 400),
    ("https://portal.school.sg", {"Referer": "https://evil.example/portal.school.sg"}, 400),
    # an Origin wins over a Referer: a foreign Origin is refused whatever the Referer says
    ("https://portal.school.sg", {"Origin": "https://evil.example",
                                  "Referer": "https://portal.school.sg/login"}, 400),
    # over plain HTTP (the demo): a foreign origin is refused, none at all is allowed
    ("http://localhost", {"Origin": "http://localhost"}, 200),
    ("http://localhost", {}, 200),
    ("http://localhost", {"Origin": "http://evil.example"}, 400),
    ("http://localhost", {"Referer": "http://evil.example/"}, 400),
])
def test_a_post_from_another_origin_is_refused(app, base, headers, status) -> None:  # type: ignore[no-untyped-def]
    assert post(app, base, headers) == status


def test_the_token_is_still_required(app) -> None:  # type: ignore[no-untyped-def]
    web = Browserish(app.test_client())
    web.get("/login", base_url="https://portal.school.sg")
    r = web.c.post("/login", data=LOGIN, base_url="https://portal.school.sg",
                   headers={"Origin": "https://portal.school.sg"})
    assert r.status_code == 400


def test_exempt_views_stay_exempt(slapd) -> None:  # type: ignore[no-untyped-def]
    """A view Flask-WTF exempts (a future machine-to-machine endpoint) is not origin-checked
    either: the rule rides on the token check, it does not add a new gate of its own."""
    from mimsdir.portal.security import csrf

    app = make_app(slapd)
    app.add_url_rule("/hook", "hook", csrf.exempt(lambda: "ok"), methods=["POST"])
    r = app.test_client().post("/hook", base_url="https://portal.school.sg",
                               headers={"Origin": "https://evil.example"})
    assert r.status_code == 200


def test_origin_of() -> None:
    assert origin_of("https://A.example/x?y") == ("https", "a.example", 443)
    assert origin_of("http://a.example:8080") == ("http", "a.example", 8080)
    for bad in ("null", "", "ftp://a.example", "https://", "https://a:99999", "javascript:x"):
        assert origin_of(bad) is None
