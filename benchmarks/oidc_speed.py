#!/usr/bin/env python3
"""The OpenID Connect provider's speed against floors measured in the same run, on a
throwaway directory:

- full application sign-ins (GET /oauth/authorize -> the sign-in page -> POST /login -> back
  to /oauth/authorize -> the code -> POST /oauth/token -> GET /oauth/userinfo), each in a new
  browser (cookie jar), from several client threads, for a confidential client (its secret
  is an argon2id hash: the token request checks it) and a public one (PKCE only)
  vs  bare LDAP binds as the same students at the same argon2 cost (slapd's check is the
  floor of any sign-in);
- token signing by the provider's Signer (an access token and an ID-token-sized JWT, RS256,
  its RSA 3072 key)  vs  raw RSA signatures with `cryptography` at the same key size
  (PKCS#1 v1.5 and PSS, SHA-256), one thread each.

Clients are threads on this machine, so clients, portal and slapd share the same cores.
Usage: .venv/bin/python benchmarks/oidc_speed.py [--seconds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import ldap
import requests
import waitress
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import import_key

from mimsdir.apps.keys import store_for
from mimsdir.apps.model import App, new_client_id
from mimsdir.apps.registry import Registry
from mimsdir.apps.secret import hash_secret, new_client_secret
from mimsdir.config import load_config
from mimsdir.directory import server
from mimsdir.directory.slapdconf import Dns
from mimsdir.ldapio import Conn
from mimsdir.portal import create_app
from mimsdir.portal.oidc.tokens import Signer

PASSWORD = "Bench-Pass-123"
CALLBACK = "https://bench-app.example/callback"
SCOPE = "openid email profile mims offline_access"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rate(seconds: float, clients: int, one: Callable[[int], object]) -> float:
    """Calls per second of ``one(i)`` from ``clients`` threads (thread i) for ``seconds``."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            one(i)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


class SignIn:
    """One application sign-in, as a browser and the application's server make it."""

    def __init__(self, portal: str, client_id: str, secret: str | None) -> None:
        self.portal, self.client_id, self.secret = portal, client_id, secret

    def __call__(self, mail: str) -> None:
        web = requests.Session()  # a new browser: no portal session yet
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        r = web.get(f"{self.portal}/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": CALLBACK,
            "scope": SCOPE, "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
            "code_challenge_method": "S256"}), timeout=30)  # follows to the sign-in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        nxt = re.search(r'name="next" value="([^"]*)"', r.text)
        assert token and nxt and "/login" in r.url, (r.status_code, r.url)
        r = web.post(f"{self.portal}/login", allow_redirects=False, timeout=30,
                     headers={"Origin": self.portal},
                     data={"csrf_token": token.group(1), "login_id": mail,
                           "password": PASSWORD, "next": nxt.group(1).replace("&amp;", "&")})
        assert r.status_code == 302, r.status_code
        location = f"{self.portal}/"
        for _ in range(4):  # / -> /oauth/authorize -> the application, with the code
            r = web.get(location, allow_redirects=False, timeout=30)
            location = urljoin(location, r.headers["Location"])
            if location.startswith(CALLBACK):
                break
        code = parse_qs(urlsplit(location).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "code_verifier": verifier}
        if self.secret is None:
            form["client_id"] = self.client_id
        auth = (self.client_id, self.secret) if self.secret is not None else None
        tokens = requests.post(f"{self.portal}/oauth/token", data=form, auth=auth, timeout=30)
        assert tokens.status_code == 200, tokens.text
        info = requests.get(f"{self.portal}/oauth/userinfo", timeout=30, headers={
            "Authorization": f"Bearer {tokens.json()['access_token']}"})
        assert info.status_code == 200 and info.json()["email"] == mail, info.text
        web.close()


def per_second(seconds: float, one: Callable[[], object]) -> float:
    n, stop = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < stop:
        one()
        n += 1
    return n / (time.perf_counter() - t0)


def interleaved(seconds: float, runs: dict[str, Callable[[], object]],
                rounds: int = 6) -> dict[str, float]:
    """Per second of each, one thread, measured in turn in short rounds (the median): a
    machine busy with something else for a moment slows all of them alike."""
    got: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, one in runs.items():
            got[name].append(per_second(seconds / rounds, one))
    return {name: sorted(v)[len(v) // 2] for name, v in got.items()}


def main() -> None:
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mims-oidc-bench-"))
    port = free_port()
    portal = f"http://127.0.0.1:{port}"
    (tmp / "config.yaml").write_text(yaml.safe_dump({
        "ldap": {"uri": f"ldap://127.0.0.1:{free_port()}"},
        "directory": {"state_dir": str(tmp / "state")},
        "portal": {"address_limit": "1000000 per minute", "device_limit": "1000000 per minute",
                   "account_limit": "1000000 per minute", "public_url": portal},
    }))
    cfg = load_config(tmp / "config.yaml")
    server.up(cfg)
    dns = Dns(cfg.ldap.base_dn)
    n, s = args.clients, args.seconds
    people = [(dns.student(f"BENCHO{i}"), f"bencho{i}@students.bench.sg") for i in range(n)]
    try:
        with server.root_conn(cfg) as root:
            for i, (dn, mail) in enumerate(people):
                root.add(dn, {"objectClass": [b"inetOrgPerson", b"mimsStudent"],
                              "uid": [f"BENCHO{i}".encode()], "cn": [b"Bench"],
                              "sn": [b"Bench"], "mail": [mail.encode()],
                              "mimsSchoolCode": [b"B"], "mimsLevel": [b"P2"],
                              "mimsClass": [b"2A"], "mimsAccountStatus": [b"active"]}, "bench")
                root.set_password(dn, PASSWORD)
                root.modify(dn, [(ldap.MOD_REPLACE, "pwdReset", [])], "bench")
            secret = new_client_secret()
            confidential, public = new_client_id(), new_client_id()
            registry = Registry(root, dns)
            registry.add(App(client_id=confidential, name="Bench app", protocol="oidc",
                             redirect_uris=(CALLBACK,), secret_hash=hash_secret(secret)))
            registry.add(App(client_id=public, name="Bench public app", protocol="oidc",
                             redirect_uris=(CALLBACK,), public=True))
        srv = waitress.create_server(create_app(cfg), host="127.0.0.1", port=port,
                                     threads=cfg.portal.threads)
        threading.Thread(target=srv.run, daemon=True).start()
        time.sleep(0.3)

        def bind(i: int) -> None:
            with Conn(cfg.ldap.uri) as c:
                assert c.bind_ppolicy(people[i][0], PASSWORD).ok

        floor_bind = rate(s, n, bind)
        conf = SignIn(portal, confidential, secret)
        signins = rate(s, n, lambda i: conf(people[i][1]))
        pub = SignIn(portal, public, None)
        signins_public = rate(s, n, lambda i: pub(people[i][1]))
        # The portal's waitress stays (a daemon thread, idle) until the process ends: closing
        # its sockets from this thread races its loop (EBADF).

        keys = store_for(cfg)
        signer = Signer(keys, portal)
        jwk = keys.signing_key("RS256")
        rsa_key = import_key(jwk).raw_value
        bits = rsa_key.key_size
        now = int(time.time())
        id_claims = {"iss": portal, "sub": "2f1e4c0a-81db-1041-804e-91f62a7c3e8f",
                     "aud": confidential, "iat": now, "exp": now + 300, "auth_time": now,
                     "nonce": secrets.token_urlsafe(20), "sid": secrets.token_urlsafe(16),
                     "amr": ["pwd"], "at_hash": "savBDLf_nZ9nFfJFK6iOTg",
                     "email": people[0][1], "email_verified": True, "name": "Wei Ling Tan",
                     "given_name": "Wei Ling", "family_name": "Tan", "role": "student",
                     "school_code": "DEMOPS", "level": "P2", "class": "2A"}
        message = os.urandom(700)  # about a signing input's size (header.claims)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                          salt_length=padding.PSS.DIGEST_LENGTH)
        signing = interleaved(s, {
            "access": lambda: signer.access_token(
                client_id=confidential, sub=id_claims["sub"], scope=SCOPE,
                family="fam-bench", sid="sid-bench", auth_time=now, lifetime=300),
            "id": lambda: signer.sign(id_claims),
            "pkcs1": lambda: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()),
            "pss": lambda: rsa_key.sign(message, pss, hashes.SHA256()),
        })
    finally:
        server.down(cfg)
    a = cfg.directory.argon2
    print(f"OpenID Connect provider, this machine ({os.cpu_count()} CPUs), {n} client "
          f"threads, {s:.0f} s each; slapd argon2 m={a.m} t={a.t} p={a.p}:")
    print(f"  application sign-ins, confidential client: {signins:6.1f}/s  vs bare LDAP binds "
          f"{floor_bind:6.1f}/s ({signins / floor_bind:.2f} of the floor)")
    print(f"  application sign-ins, public client:       {signins_public:6.1f}/s  "
          f"({signins_public / floor_bind:.2f} of the floor)")
    sg = signing
    print(f"token signing, one thread, RS256 RSA {bits} (median of 6 interleaved rounds):")
    print(f"  Signer, access token:  {sg['access']:7.0f}/s  vs raw PKCS#1 v1.5 SHA-256 "
          f"{sg['pkcs1']:7.0f}/s ({sg['access'] / sg['pkcs1']:.2f} of the floor)")
    print(f"  Signer, ID token size: {sg['id']:7.0f}/s  ({sg['id'] / sg['pkcs1']:.2f} of the "
          f"floor; raw PSS SHA-256 {sg['pss']:7.0f}/s)")


if __name__ == "__main__":
    main()
