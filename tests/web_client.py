"""A small HTTP(S) client for tests against a real server (waitress, or nginx in front of it):
it chooses its own source address on loopback (127.0.0.2, 127.0.0.3, ... are different
clients to the server), keeps the session cookie and the page's CSRF token, like a browser.

http.client, not the Flask test client: the point is the real server's view of the peer.
"""

from __future__ import annotations

import http.client
import re
import ssl
import urllib.parse
from dataclasses import dataclass, field

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str


@dataclass
class WebClient:
    """One client: ``base`` is ``http://host:port`` or ``https://host:port``; ``source`` the
    loopback address it connects from; ``ca`` the PEM file of the CA to trust over https."""

    base: str
    source: str = "127.0.0.1"
    ca: str | None = None
    timeout: float = 10.0
    cookies: dict[str, str] = field(default_factory=dict)
    token: str = ""

    @property
    def origin(self) -> str:
        return self.base.rstrip("/")

    def _conn(self) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self.base)
        host, port = url.hostname or "127.0.0.1", url.port
        if url.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               source_address=(self.source, 0), context=ctx)
        return http.client.HTTPConnection(host, port, timeout=self.timeout,
                                          source_address=(self.source, 0))

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            reply = Reply(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()
        for value in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        m = TOKEN.search(reply.body)
        if m:
            self.token = m.group(1)
        return reply

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None,
             *, origin: str | None = "self") -> Reply:
        """A form post with the page's token, sending ``Origin`` as a browser does (``"self"``:
        this client's own base; None: no Origin header at all)."""
        if not self.token:
            self.get(path)
        sent = dict(headers or {})
        if origin is not None:
            sent.setdefault("Origin", self.origin if origin == "self" else origin)
        form = urllib.parse.urlencode({"csrf_token": self.token, **data})
        return self.request("POST", path, body=form, headers=sent)

    def login(self, login_id: str, password: str,
              headers: dict[str, str] | None = None) -> Reply:
        self.get("/login", headers=headers)
        return self.post("/login", {"login_id": login_id, "password": password}, headers)
