"""An independent relying party in Python: Authlib's OAuth 2.0 client (``OAuth2Session``,
over requests) against the real portal served by waitress, a confidential client
(``client_secret_basic``) and a public one (no secret, PKCE only). The ID token is checked as
an application checks it: joserfc with the published JWKS, then Authlib's ``CodeIDToken``
rules (iss, aud, exp, iat, nonce, at_hash). The portal's code is used only to register the
applications."""

from __future__ import annotations

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc_helpers import http_sign_in, query, register, served_portal
from tests.portal_helpers import give_answers

CALLBACK = "https://authlib-rp.example/callback"
SCOPE = "openid email profile mims offline_access"


@pytest.fixture(scope="module")
def portal(slapd):  # type: ignore[no-untyped-def]
    with served_portal(slapd) as (url, _app):
        yield url


@pytest.fixture(scope="module")
def meta(portal):  # type: ignore[no-untyped-def]
    return requests.get(f"{portal}/.well-known/openid-configuration", timeout=10).json()


def check_id_token(id_token: str, meta: dict, client_id: str, nonce: str,  # type: ignore[type-arg]
                   access_token: str) -> CodeIDToken:
    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks),
                         algorithms=meta["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [meta["issuer"]]}},
                         {"nonce": nonce, "client_id": client_id, "access_token": access_token})
    claims.validate(leeway=5)
    return claims


def student(make, class_name: str = "4B"):  # type: ignore[no-untyped-def]
    s = make.student(level="P4", class_name=class_name)
    give_answers(make.root, s.dn)
    return s


def test_confidential_client(slapd, make, portal, meta) -> None:  # type: ignore[no-untyped-def]
    s = student(make)
    rp = register(make.root, slapd, redirect_uris=(CALLBACK,))
    client = OAuth2Session(rp.client_id, rp.secret, scope=SCOPE, redirect_uri=CALLBACK,
                           code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(meta["authorization_endpoint"],
                                                 code_verifier=verifier, nonce=nonce)
    back = http_sign_in(requests.Session(), portal, url, CALLBACK, s.mail, s.password)
    assert query(back)["iss"] == meta["issuer"]  # RFC 9207: who sent the code
    token = client.fetch_token(meta["token_endpoint"], authorization_response=back,
                               state=state, code_verifier=verifier)
    claims = check_id_token(token["id_token"], meta, rp.client_id, nonce, token["access_token"])
    assert claims["email"] == s.mail and claims["class"] == "4B"
    info = client.get(meta["userinfo_endpoint"], timeout=10)
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    # Refresh: a new refresh token every time (rotation).
    first_refresh = token["refresh_token"]
    new = client.refresh_token(meta["token_endpoint"])
    assert new["refresh_token"] != first_refresh and new["access_token"] != token["access_token"]
    assert client.get(meta["userinfo_endpoint"], timeout=10).status_code == 200
    # Revoking the refresh token ends the grant: the access token stops at its next use.
    r = client.revoke_token(meta["revocation_endpoint"], new["refresh_token"],
                            token_type_hint="refresh_token")
    assert r.status_code == 200
    assert client.get(meta["userinfo_endpoint"], timeout=10).status_code == 401
    with pytest.raises(OAuthError) as refused:
        client.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_public_client_with_pkce(slapd, make, portal, meta) -> None:  # type: ignore[no-untyped-def]
    s = student(make, "4C")
    rp = register(make.root, slapd, public=True, redirect_uris=(CALLBACK,))
    assert rp.secret is None
    browser = requests.Session()

    def authorize(verifier: str) -> tuple[OAuth2Session, str, str, str]:
        client = OAuth2Session(rp.client_id, scope=SCOPE, redirect_uri=CALLBACK,
                               code_challenge_method="S256", token_endpoint_auth_method="none")
        nonce = generate_token(20)
        url, state = client.create_authorization_url(meta["authorization_endpoint"],
                                                     code_verifier=verifier, nonce=nonce)
        assert "code_challenge=" in url
        back = http_sign_in(browser, portal, url, CALLBACK, s.mail, s.password)
        return client, back, state, nonce

    # A code sent to a public client is worth nothing without the verifier it was asked with.
    right = generate_token(48)
    client, back, state, _nonce = authorize(right)
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(meta["token_endpoint"], authorization_response=back, state=state,
                           code_verifier=generate_token(48))
    assert refused.value.error == "invalid_grant"
    # The same browser again: no password (its portal session), and the right verifier works.
    client, back, state, nonce = authorize(right)
    token = client.fetch_token(meta["token_endpoint"], authorization_response=back,
                               state=state, code_verifier=right)
    claims = check_id_token(token["id_token"], meta, rp.client_id, nonce, token["access_token"])
    assert claims["aud"] == rp.client_id and claims["class"] == "4C"
    assert client.get(meta["userinfo_endpoint"], timeout=10).json()["email"] == s.mail
    new = client.refresh_token(meta["token_endpoint"])
    assert new["refresh_token"] != token["refresh_token"]
