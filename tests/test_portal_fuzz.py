"""Students who type anything: no input makes the portal fail (500) or echo a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.portal_helpers import TOKEN, Browserish, make_app

anything = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                 exclude_categories=("Cs",)), max_size=300) | st.sampled_from([
                       "", " ", "*", "*)(mail=*", "\x00", "a\x00b@x.sg", "%00", "é" * 300,
                       "陈伟玲@学校.sg", "\u202e", "<script>alert(1)</script>",
                       "' OR 1=1 --", "x" * 10_000])


@pytest.fixture(scope="module")
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd, address_limit="100000 per minute")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(login=anything, password=anything, answer=anything)
def test_any_input_gets_a_page_not_a_crash(app, login: str, password: str,  # type: ignore[no-untyped-def]
                                           answer: str) -> None:
    web = Browserish(app.test_client())
    for r in (web.login(login, password),
              web.post("/forgot", {"login_id": login}),
              web.get("/forgot/questions"),
              web.post("/forgot/questions", {"a0": answer, "a1": answer})):
        assert r.status_code in (200, 302, 400, 413, 429), r.status_code
        body = r.get_data(as_text=True)
        assert "Traceback" not in body
        # The typed password is never sent back (the login ID may be: it is not a secret).
        if len(password) >= 6 and password not in login:
            assert password not in TOKEN.sub("", body)
    if "<script>" in login:
        assert "<script>alert" not in web.get("/forgot/questions").get_data(as_text=True)
