"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a child's portal
sessions end (sign-out, a reset, a teacher's unlock), every application that signed them in
and registered a back-channel URI is told, server to server, with a signed logout token.

Why not wait for the applications: each gets a few seconds at most, all at once; one that
is down must not keep a child from being signed out of the rest.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait

from mimsdir.portal.oidc.provider import provider

log = logging.getLogger("mimsdir.portal")
TIMEOUT = 3.0


def _post(uri: str, logout_token: str) -> None:
    """``uri`` was registered by ICT and checked then (https, or http on loopback only)."""
    if urllib.parse.urlsplit(uri).scheme not in ("https", "http"):
        return
    body = urllib.parse.urlencode({"logout_token": logout_token}).encode()
    req = urllib.request.Request(uri, data=body, method="POST", headers={  # noqa: S310
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
            resp.read(1024)
    except (urllib.error.URLError, OSError) as exc:
        log.warning("back-channel logout to %s failed: %s", uri, exc)


def notify_applications(subject_dn: str) -> int:
    """Tell each application of this person's grants; returns how many were told."""
    p = provider()
    families = p.store().families_of(subject_dn)
    if not families:
        return 0
    person = p._directory().person(subject_dn)  # active or not: a disabled child too
    if person is None:
        return 0
    sends: dict[tuple[str, str | None], tuple[str, str]] = {}
    for fam in families:
        client = p.client(str(fam.data.get("client") or ""))
        if client is None or not client.app.backchannel_logout_uri:
            continue
        sid = fam.data.get("sid")
        key = (client.client_id, sid if isinstance(sid, str) else None)
        if key not in sends:
            token = p.signer.logout_token(client_id=client.client_id,
                                          sub=p.sub(person, client), sid=key[1])
            sends[key] = (client.app.backchannel_logout_uri, token)
    if not sends:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, len(sends))) as pool:
        futures = [pool.submit(_post, uri, tok) for uri, tok in sends.values()]
        wait(futures, timeout=TIMEOUT + 1)
    return len(sends)
