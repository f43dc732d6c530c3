"""Importing an RSA 3072 private key checks it, about 0.1 s of CPU, 70 signatures' worth;
doing that for every token signed (the Signer) and every token verified or JWKS served (the
key store's public JWKS) held application sign-ins to a handful per second
(benchmarks/oidc_speed.py). The Signer imports each signing key once; the published keys
are the public members, copied, never a private key imported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, RSAKey

from mimsdir.apps.keys import KeyStore
from mimsdir.portal.oidc import tokens
from mimsdir.portal.oidc.tokens import ACCESS_TYPE, Signer

ISSUER = "https://portal.school.example.sg"


def access(signer: Signer) -> str:
    return signer.access_token(client_id="app-x", sub="uuid-1", scope="openid", family="fam-1",
                               sid="s-1", auth_time=int(time.time()), lifetime=300)


def test_each_signing_key_is_imported_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyStore(tmp_path / "oidc-keys")
    signer = Signer(keys, ISSUER)
    imported: list[str] = []
    real = tokens.import_key

    def counting(jwk):  # type: ignore[no-untyped-def]
        imported.append(jwk["kid"])
        return real(jwk)

    monkeypatch.setattr(tokens, "import_key", counting)
    first = [access(signer) for _ in range(5)] + [signer.sign({"iss": ISSUER, "exp": 1})]
    assert len(imported) == 1
    kid, key = signer.private_key("RS256")
    assert kid == imported[0] == keys.signing_key("RS256")["kid"] and key is not None
    keys.rotate()
    after = access(signer)
    assert len(imported) == 2 and imported[1] != imported[0]  # the new active key, once
    for token in (first[0], after):  # the previous key is still published: both verify
        claims = signer.verify(token, typ=ACCESS_TYPE)
        assert claims is not None and claims["sub"] == "uuid-1"
    assert signer.private_key("ES256")[0] != kid and len(imported) == 3


def test_publishing_and_verifying_import_no_private_key(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyStore(tmp_path / "oidc-keys")
    signer = Signer(keys, ISSUER)
    token = access(signer)
    keys.rotate()  # the previous set is published too
    stored = [r["jwk"] for r in keys._read()]
    expected = [(RSAKey if j["kty"] == "RSA" else ECKey).import_key(j).as_dict(private=False)
                for j in stored]
    real = RSAKey.import_key.__func__  # type: ignore[attr-defined]

    def public_only(cls, value, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert not (isinstance(value, dict) and "d" in value), "a private key was imported"
        return real(cls, value, *args, **kwargs)

    monkeypatch.setattr(RSAKey, "import_key", classmethod(public_only))
    published = keys.public_jwks()["keys"]
    assert sorted(published, key=lambda k: k["kid"]) == sorted(expected,
                                                                key=lambda k: k["kid"])
    assert not any({"d", "p", "q", "dp", "dq", "qi"} & set(k) for k in published)
    assert signer.verify(token, typ=ACCESS_TYPE) is not None
