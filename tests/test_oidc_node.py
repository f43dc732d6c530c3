"""An independent relying party: Node's openid-client (OpenID Certified; tests/rp-node/,
pinned by its package-lock.json, installed by `make install` with `npm ci`) against the real
portal served by waitress. Nothing of mimsdir's runs on the client side: openid-client makes
the PKCE verifier, state and nonce, and checks the callback's ``iss``, the ID token (with
the JWKS), userinfo's ``sub`` and the refresh.

Skipped only when node is not installed; under CI (CI=true) a missing node or a missing
``npm ci`` is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.oidc_helpers import http_sign_in, query, register, served_portal
from tests.portal_helpers import give_answers

RP_DIR = Path(__file__).resolve().parent / "rp-node"
CALLBACK = "https://rp-node.example/callback"  # never fetched: the callback URL is handed over


def _node() -> str:
    node = shutil.which("node")
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    if node is None:
        if ci:
            pytest.fail("node is missing: CI's image has node 20 (apt-get install nodejs)")
        pytest.skip("node is not installed (the openid-client test needs node >= 20)")
    if not (RP_DIR / "node_modules" / "openid-client" / "package.json").exists():
        pytest.fail("tests/rp-node/node_modules is missing: run `make install` "
                    "(it runs `npm ci` there when node is installed)")
    return node


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        proc.kill()
        raise AssertionError(f"node said nothing within {timeout} s: "
                             f"{proc.stderr.read() if proc.stderr else ''}")
    return box[0]


def test_openid_client_signs_in_checks_and_refreshes(slapd, make) -> None:  # type: ignore[no-untyped-def]
    node = _node()
    s = make.student(level="P5", class_name="5B", cn=[b"Nurul Huda"], givenName=[b"Nurul"],
                     sn=[b"Huda"])
    give_answers(make.root, s.dn)  # P5: her own questions are set, so no page in between
    entry_uuid = make.root.get(s.dn, ["entryUUID"], "t")["entryUUID"][0].decode()
    with served_portal(slapd) as (portal, _app):
        rp = register(make.root, slapd, redirect_uris=(CALLBACK,))
        assert rp.secret is not None
        proc = subprocess.Popen([node, "rp.mjs", portal, rp.client_id, rp.secret, CALLBACK],
                                cwd=RP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(_read_line(proc, 30))
            assert "authorization_url" in first, first
            asked = query(first["authorization_url"])
            assert first["authorization_url"].startswith(f"{portal}/oauth/authorize?")
            assert asked["code_challenge_method"] == "S256" and asked["state"]
            assert asked["nonce"] and asked["client_id"] == rp.client_id
            back = http_sign_in(requests.Session(), portal, first["authorization_url"],
                                CALLBACK, s.mail, s.password)
            out, err = proc.communicate(back + "\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = out.strip().splitlines()
    assert proc.returncode == 0 and lines, out + err
    result = json.loads(lines[-1])
    claims = result["id_token_claims"]
    assert claims["iss"] == portal and claims["aud"] == rp.client_id
    assert claims["sub"] == entry_uuid and claims["nonce"] == asked["nonce"]
    assert (claims["email"], claims["level"], claims["class"], claims["role"]) == (
        s.mail, "P5", "5B", "student")
    assert claims["name"] == "Nurul Huda" and claims["amr"] == ["pwd"] and claims["sid"]
    info = result["userinfo"]
    assert info["sub"] == entry_uuid and info["email"] == s.mail and info["class"] == "5B"
    assert result["token_type"].lower() == "bearer" and result["expires_in"] == 300
    assert set(result["scope"].split()) == {"openid", "email", "profile", "mims",
                                            "offline_access"}
    assert result["refresh_rotated"] is True and result["refreshed_access_token_differs"]
    # The rotated-out refresh token, used again, is refused (and revokes its family).
    assert result["used_refresh_token_again"] == "invalid_grant"
