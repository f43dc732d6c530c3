"""The OpenID Connect provider end to end on the session's slapd: authorization code with
PKCE, ID token, userinfo, refresh rotation, and the portal's rules at the door."""

from __future__ import annotations

import time

import ldap
import pytest

from tests.oidc_helpers import REDIRECT, query, register, verify
from tests.portal_helpers import Browserish, give_answers, make_app, text


@pytest.fixture
def app(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


def student(make, level: str = "P4", **attrs):  # type: ignore[no-untyped-def]
    """A student who may go straight on (P4-P6 have their own questions already)."""
    s = make.student(level=level, **attrs)
    if level in ("P4", "P5", "P6"):
        give_answers(make.root, s.dn)
    return s


def sign_in_to(web: Browserish, rp, person, **extra: str):  # type: ignore[no-untyped-def]
    """Application -> portal sign-in -> back to the application: the redirect with the code."""
    r = web.get(rp.authorize_path(**extra))
    if r.status_code == 302 and "/login" in r.headers["Location"]:
        login_page = web.get(r.headers["Location"].replace("http://localhost", ""))
        nxt = login_page.get_data(as_text=True).split('name="next" value="')[1].split('"')[0]
        r = web.post("/login", {"login_id": person.mail, "password": person.password,
                                "next": nxt.replace("&amp;", "&")})
        assert r.status_code == 302, text(r)
        r = web.get("/")  # back to the application's request, or to a gate first
        if "/oauth/authorize" in r.headers["Location"]:
            r = web.get(r.headers["Location"].replace("http://localhost", ""))
    return r


def exchange(web: Browserish, rp, code: str, **extra: str):  # type: ignore[no-untyped-def]
    return web.c.post("/oauth/token", data=rp.token_form(code, **extra),
                      headers=rp.auth_header())


def test_code_flow_id_token_userinfo_and_refresh(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4", class_name="4A", givenName=[b"Wei Ling"], sn=[b"Tan"])
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    r = sign_in_to(web, rp, s)
    assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT)
    got = query(r.headers["Location"])
    assert got["state"] == rp.state and got["iss"] == "http://127.0.0.1:8080"
    tokens = exchange(web, rp, got["code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    body = tokens.get_json()
    assert body["token_type"].lower() == "bearer" and body["refresh_token"]
    jwks = web.c.get("/oauth/jwks").get_json()
    idt = verify(body["id_token"], jwks, iss="http://127.0.0.1:8080", aud=rp.client_id,
                 nonce=rp.nonce, email=s.mail, level="P4", role="student")
    assert idt["sub"] != s.mail and idt["sub"] != s.uid and idt["sid"]
    entry_uuid = make.root.get(s.dn, ["entryUUID"], "t")["entryUUID"][0].decode()
    assert idt["sub"] == entry_uuid
    at = verify(body["access_token"], jwks, client_id=rp.client_id, aud=rp.client_id)
    assert at["exp"] - at["iat"] == 300
    info = web.c.get("/oauth/userinfo",
                     headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.get_json()["sub"] == idt["sub"]
    assert info.get_json()["class"] == "4A"
    # Refresh: rotated, and the old one, used again, revokes the family.
    r2 = web.c.post("/oauth/token", data={"grant_type": "refresh_token",
                                          "refresh_token": body["refresh_token"]},
                    headers=rp.auth_header())
    assert r2.status_code == 200, r2.get_data(as_text=True)
    new = r2.get_json()
    assert new["refresh_token"] != body["refresh_token"]
    reuse = web.c.post("/oauth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": body["refresh_token"]},
                       headers=rp.auth_header())
    assert reuse.status_code == 400
    after = web.c.post("/oauth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": new["refresh_token"]},
                       headers=rp.auth_header())
    assert after.status_code == 400  # the whole family went with the reuse
    info = web.c.get("/oauth/userinfo",
                     headers={"Authorization": f"Bearer {new['access_token']}"})
    assert info.status_code == 401


def test_second_application_needs_no_password(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P5")
    first, second = register(make.root, slapd), register(make.root, slapd, public=True)
    web = Browserish(app.test_client())
    assert sign_in_to(web, first, s).headers["Location"].startswith(REDIRECT)
    r = web.get(second.authorize_path())
    assert r.status_code == 302 and "code=" in r.headers["Location"]  # no sign-in page
    code = query(r.headers["Location"])["code"]
    assert exchange(web, second, code).status_code == 200


def test_forced_change_comes_before_any_code(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = make.student(level="P3")
    make.root.set_password(s.dn, "Reset-by-ict-55")  # an ICT reset: must change first
    s.password = "Reset-by-ict-55"
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    r = sign_in_to(web, rp, s)
    assert r.headers["Location"].endswith("/password")
    # prompt=none while the change is pending: an error to the application, no code.
    r = web.get(rp.authorize_path(prompt="none"))
    assert query(r.headers["Location"])["error"] == "interaction_required"
    web.get("/password")
    r = web.post("/password", {"current": "Reset-by-ict-55", "new": "Own-choice-77",
                               "again": "Own-choice-77"})
    r = web.get("/")
    assert "/oauth/authorize" in r.headers["Location"]
    r = web.get(r.headers["Location"].replace("http://localhost", ""))
    assert r.headers["Location"].startswith(REDIRECT) and "code=" in r.headers["Location"]


def test_who_may_use_it_and_disabled_children(app, make, slapd, root) -> None:  # type: ignore[no-untyped-def]
    upper_only = register(make.root, slapd, allowed_levels=("P5", "P6"))
    p3 = make.student(level="P3")
    web = Browserish(app.test_client())
    r = sign_in_to(web, upper_only, p3)
    assert query(r.headers["Location"])["error"] == "access_denied"
    s = student(make, "P5")
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    code = query(sign_in_to(web, rp, s).headers["Location"])["code"]
    tokens = exchange(web, rp, code).get_json()
    root.modify(s.dn, [(ldap.MOD_REPLACE, "mimsAccountStatus", [b"disabled"])], "noon")
    r = web.c.post("/oauth/token", data={"grant_type": "refresh_token",
                                         "refresh_token": tokens["refresh_token"]},
                   headers=rp.auth_header())
    assert r.status_code == 400  # disabled at noon, no refresh at 12:05
    info = web.c.get("/oauth/userinfo",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401


def test_negative_cases(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    sign_in_to(web, rp, s)
    # An unregistered redirect URI: a page, never a redirect.
    bad = rp.authorize_path().replace("learning.example.sg", "evil.example")
    r = web.get(bad)
    assert r.status_code == 400 and "Location" not in r.headers
    # An unknown client: a page too.
    r = web.get(rp.authorize_path().replace(rp.client_id, "app-nobody"))
    assert r.status_code == 400 and "Location" not in r.headers
    # No PKCE: an error to the (registered) redirect URI.
    r = web.get(rp.authorize_path(code_challenge="", code_challenge_method=""))
    assert query(r.headers["Location"])["error"] == "invalid_request"
    # plain PKCE is not accepted.
    r = web.get(rp.authorize_path(code_challenge_method="plain"))
    assert query(r.headers["Location"])["error"] == "invalid_request"
    # A wrong verifier; then the right one works once, and a second use revokes the first.
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    assert exchange(web, rp, code, code_verifier="x" * 50).status_code == 400
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    first = exchange(web, rp, code)
    assert first.status_code == 200
    assert exchange(web, rp, code).status_code == 400
    stolen = first.get_json()["access_token"]
    assert web.c.get("/oauth/userinfo",
                     headers={"Authorization": f"Bearer {stolen}"}).status_code == 401
    # The wrong client secret.
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    rp_wrong = type(rp)(rp.client_id, "not-the-secret", verifier=rp.verifier)
    assert exchange(web, rp_wrong, code).status_code == 401
    # An expired code.
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    from mimsdir.portal.oidc.store import grant_key

    make.root.modify(f"cn={grant_key('code', code)},ou=sessions,{make.dns.base}",
                     [(ldap.MOD_REPLACE, "mimsSessionExpires", [b"20200101000000Z"])], "t")
    assert exchange(web, rp, code).status_code == 400
    # prompt=none without a session.
    r = Browserish(app.test_client()).get(rp.authorize_path(prompt="none"))
    assert query(r.headers["Location"])["error"] == "login_required"


def test_max_age_and_prompt_login_ask_again(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    sign_in_to(web, rp, s)
    r = web.get(rp.authorize_path(prompt="login"))
    assert "/login" in r.headers["Location"]
    time.sleep(1.1)
    r = web.get(rp.authorize_path(max_age="0"))
    assert "/login" in r.headers["Location"]
    r = web.get(rp.authorize_path(max_age="3600"))
    assert "code=" in r.headers["Location"]


def test_no_alg_none_and_discovery(app) -> None:  # type: ignore[no-untyped-def]
    web = Browserish(app.test_client())
    meta = web.c.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    import base64
    import json

    def b64(d: dict) -> str:  # type: ignore[type-arg]
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    forged = b64({"alg": "none", "typ": "at+jwt"}) + "." + b64(
        {"iss": meta["issuer"], "sub": "x", "exp": 9999999999, "client_id": "a"}) + "."
    r = web.c.get("/oauth/userinfo", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_revocation_and_introspection(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "P4")
    rp = register(make.root, slapd)
    resource = register(make.root, slapd, name="Media library API")
    public = register(make.root, slapd, public=True)
    web = Browserish(app.test_client())
    code = query(sign_in_to(web, rp, s).headers["Location"])["code"]
    tokens = exchange(web, rp, code).get_json()
    look = web.c.post("/oauth/introspect", data={"token": tokens["access_token"]},
                      headers=resource.auth_header())
    assert look.status_code == 200 and look.get_json()["active"] is True
    assert look.get_json()["client_id"] == rp.client_id
    # A public client may not introspect.
    assert web.c.post("/oauth/introspect", data={"token": tokens["access_token"],
                                                  "client_id": public.client_id}
                      ).status_code == 401
    # Revoking the refresh token ends the grant: the access token too.
    r = web.c.post("/oauth/revoke", data={"token": tokens["refresh_token"],
                                           "token_type_hint": "refresh_token"},
                   headers=rp.auth_header())
    assert r.status_code == 200
    look = web.c.post("/oauth/introspect", data={"token": tokens["access_token"]},
                      headers=resource.auth_header())
    assert look.get_json() == {"active": False}
    # Another client cannot revoke (or learn about) someone else's token.
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    tokens = exchange(web, rp, code).get_json()
    web.c.post("/oauth/revoke", data={"token": tokens["refresh_token"]},
               headers=resource.auth_header())
    assert web.c.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).status_code == 200


def test_rp_initiated_and_back_channel_logout(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs

    received: list[str] = []

    class Catch(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers["Content-Length"])
            received.append(parse_qs(self.rfile.read(n).decode())["logout_token"][0])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        s = student(make, "P4")
        back = f"http://127.0.0.1:{httpd.server_port}/backchannel"
        first = register(make.root, slapd, backchannel_logout_uri=back,
                         post_logout_redirect_uris=("https://learning.example.sg/bye",))
        second = register(make.root, slapd)
        web = Browserish(app.test_client())
        code = query(sign_in_to(web, first, s).headers["Location"])["code"]
        tokens = exchange(web, first, code).get_json()
        code2 = query(web.get(second.authorize_path()).headers["Location"])["code"]
        tokens2 = exchange(web, second, code2).get_json()
        jwks = web.c.get("/oauth/jwks").get_json()
        idt = verify(tokens["id_token"], jwks)
        # A logout link without a hint from this person asks first (no drive-by sign-out).
        r = web.get("/oauth/logout")
        assert r.status_code == 200 and "Sign out?" in text(r)
        assert web.get("/home").status_code == 200
        r = web.get("/oauth/logout?" + __import__("urllib.parse").parse.urlencode({
            "id_token_hint": tokens["id_token"], "state": "bye-1",
            "post_logout_redirect_uri": "https://learning.example.sg/bye"}))
        assert r.status_code == 302
        assert r.headers["Location"] == "https://learning.example.sg/bye?state=bye-1"
        assert web.get("/home").status_code == 302  # signed out of the portal
        # Both applications' grants are gone; the first was told, with a signed token.
        for t in (tokens, tokens2):
            assert web.c.post("/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": t["refresh_token"]},
                headers=(first if t is tokens else second).auth_header()).status_code == 400
        assert len(received) == 1
        logout = verify(received[0], jwks, aud=first.client_id, sub=idt["sub"],
                        sid=idt["sid"])
        assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
        assert "nonce" not in logout
        # An unregistered post-logout address is never followed.
        web2 = Browserish(app.test_client())
        sign_in_to(web2, first, s)
        r = web2.get("/oauth/logout?post_logout_redirect_uri=https://evil.example/")
        assert "Location" not in r.headers
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_es256_id_tokens_for_clients_that_ask(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    import json
    from base64 import urlsafe_b64decode

    s = student(make, "P4")
    rp = register(make.root, slapd, id_token_alg="ES256")
    web = Browserish(app.test_client())
    code = query(sign_in_to(web, rp, s).headers["Location"])["code"]
    body = exchange(web, rp, code).get_json()
    head = json.loads(urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert head["alg"] == "ES256"
    jwks = web.c.get("/oauth/jwks").get_json()
    assert head["kid"] in {k["kid"] for k in jwks["keys"] if k["kty"] == "EC"}
    verify(body["id_token"], jwks, aud=rp.client_id, nonce=rp.nonce)


def test_key_rotation_keeps_old_tokens_valid_during_the_grace(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    import json
    from base64 import urlsafe_b64decode

    from mimsdir.apps.keys import store_for

    def kid(token: str) -> str:
        return json.loads(urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]

    s = student(make, "P4")
    rp = register(make.root, slapd)
    web = Browserish(app.test_client())
    code = query(sign_in_to(web, rp, s).headers["Location"])["code"]
    before = exchange(web, rp, code).get_json()
    store_for(app.config["MIMS"]).rotate()  # `mimsdir app keys rotate`
    code = query(web.get(rp.authorize_path()).headers["Location"])["code"]
    after = exchange(web, rp, code).get_json()
    assert kid(after["id_token"]) != kid(before["id_token"])
    jwks = web.c.get("/oauth/jwks").get_json()
    assert {kid(before["id_token"]), kid(after["id_token"])} <= {k["kid"] for k in jwks["keys"]}
    for t in (before, after):  # the running portal took the new key without a restart
        assert web.c.get("/oauth/userinfo", headers={
            "Authorization": f"Bearer {t['access_token']}"}).status_code == 200


def test_a_teacher_signs_in_to_an_application(app, make, slapd) -> None:  # type: ignore[no-untyped-def]
    """Teachers are people of the applications too (role teacher): the portal's account
    reads a teacher's entryUUID, the subject (schema/acl.in)."""
    teacher = make.teacher("4A")
    rp = register(make.root, slapd, allowed_roles=("teacher",))
    web = Browserish(app.test_client())
    got = query(sign_in_to(web, rp, teacher).headers["Location"])
    assert "code" in got, got
    body = exchange(web, rp, got["code"]).get_json()
    idt = verify(body["id_token"], web.c.get("/oauth/jwks").get_json(), role="teacher",
                 email=teacher.mail, school_code=make.school, **{"class": "4A"})
    uuid = make.root.get(teacher.dn, ["entryUUID"], "t")["entryUUID"][0].decode()
    assert idt["sub"] == uuid
