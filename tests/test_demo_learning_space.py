"""The demo learning space's own rules (demo/learning_space/app.py), without a portal: which
logout tokens its back-channel endpoint accepts (OpenID Connect Back-Channel Logout 1.0
§2.6), which of its sessions one ends, and the "Signed in as" line."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from demo.learning_space.app import (
    LOGOUT_EVENT,
    LocalSession,
    LocalSessions,
    Settings,
    check_logout_token,
    who_line,
)

ISSUER = "http://127.0.0.1:8080"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, not published
SETTINGS = Settings(issuer=ISSUER, base_url="http://127.0.0.1:8081", client_id="app-ls")


class Portal:
    """What check_logout_token needs of Authlib's client: the published keys."""

    def fetch_jwk_set(self, force: bool = False) -> dict[str, Any]:
        return KeySet([KEY]).as_dict(private=False)


def logout_token(key: RSAKey = KEY, typ: str = "logout+jwt", **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": "app-ls", "iat": now, "exp": now + 120,
                              "jti": f"j{time.monotonic_ns()}", "sub": "uuid-1", "sid": "s-1",
                              "events": {LOGOUT_EVENT: {}}}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": "RS256", "kid": "k1", "typ": typ}, claims, key)


def test_a_good_logout_token_is_accepted() -> None:
    claims = check_logout_token(Portal(), SETTINGS, logout_token())
    assert claims is not None and claims["sid"] == "s-1"
    assert check_logout_token(Portal(), SETTINGS, logout_token(sid=None)) is not None


@pytest.mark.parametrize("token", [
    pytest.param(lambda: logout_token(aud="app-other"), id="another app's"),
    pytest.param(lambda: logout_token(iss="http://127.0.0.1:9999"), id="another issuer"),
    pytest.param(lambda: logout_token(nonce="n"), id="with a nonce (an ID token)"),
    pytest.param(lambda: logout_token(events=None), id="no event"),
    pytest.param(lambda: logout_token(events={"other": {}}), id="another event"),
    pytest.param(lambda: logout_token(sub=None, sid=None), id="neither sub nor sid"),
    pytest.param(lambda: logout_token(jti=None), id="no jti"),
    pytest.param(lambda: logout_token(exp=int(time.time()) - 10), id="expired"),
    pytest.param(lambda: logout_token(typ="JWT"), id="an ID token's typ"),
    pytest.param(lambda: logout_token(key=OTHER), id="signed by another key"),
    pytest.param(lambda: _unsigned(), id="alg none"),
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "not.a.jwt", id="garbage"),
])
def test_bad_logout_tokens_are_refused(token) -> None:  # type: ignore[no-untyped-def]
    assert check_logout_token(Portal(), SETTINGS, token()) is None


def _unsigned() -> str:
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    good = jwt.decode(logout_token(), KEY).claims
    return b64({"alg": "none", "typ": "logout+jwt"}) + "." + b64(good) + "."


def test_which_sessions_a_logout_ends() -> None:
    local = LocalSessions()

    def start(sub: str, sid: str | None) -> str:
        return local.start(LocalSession(sub=sub, sid=sid, claims={}, id_token="t", tokens={}))

    a1, a2, b = start("uuid-a", "sid-1"), start("uuid-a", "sid-2"), start("uuid-b", "sid-3")
    assert local.end_matching("uuid-a", "sid-1") == 1  # that portal session only
    assert local.get(a1) is None and local.get(a2) is not None and local.get(b) is not None
    assert local.end_matching("uuid-a", None) == 1  # no sid: every session of that person
    assert local.get(a2) is None and local.get(b) is not None and len(local) == 1
    assert local.first_use("jti-1") and not local.first_use("jti-1")  # replay refused


def test_who_line() -> None:
    assert who_line({"name": "Wei Ling Tan", "level": "P2", "class": "2A",
                     "role": "student"}) == "Wei Ling Tan (P2, 2A)"
    assert who_line({"name": "Jason Lim", "role": "teacher"}) == "Jason Lim (teacher)"
    assert who_line({"sub": "uuid-1"}) == "uuid-1"
