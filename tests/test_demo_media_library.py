"""The demo media library's own rules (demo/media_library/app.py), against the real portal
on the session's slapd: both Flask apps in-process, the browser played by their test
clients carrying each message from one to the other.

Its ACS takes the portal's answer to the request it sent, once, and nothing else (not a
copy, not an answer to another request, not an IdP-initiated one, not a changed one); its
single logout sends the portal a signed LogoutRequest the portal obeys, and it obeys only
the portal's signed, fresh LogoutRequest, once."""

from __future__ import annotations

import base64
import itertools
import re
import time
import warnings
import zlib
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient

from demo.media_library import Settings, create_app, credentials, sp_metadata
from demo.media_library.app import who_line
from mimsdir.apps.model import App, new_client_id
from mimsdir.apps.registry import Registry
from mimsdir.apps.saml_metadata import parse_sp_metadata
from tests.portal_helpers import Browserish, give_answers, make_app, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from saml2.pack import http_redirect_message
    from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

PORTAL = "http://127.0.0.1:8080"  # the test portal's public_url (not served: test clients)
_ports = itertools.count(18082)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return credentials(tmp_path_factory.mktemp("media-library"))


@pytest.fixture
def portal(slapd):  # type: ignore[no-untyped-def]
    return make_app(slapd)


class Library:
    """The media library, registered in the directory as `make demo` registers it, and its
    test client (one browser's cookies)."""

    def __init__(self, make: Any, portal: Any, keys: tuple[Path, Path],
                 **app_fields: Any) -> None:
        self.base = f"http://127.0.0.1:{next(_ports)}"
        self.settings = Settings(
            base_url=self.base, key_file=str(keys[0]), cert_file=str(keys[1]),
            idp_metadata=portal.test_client().get("/saml/metadata").get_data(as_text=True),
            portal=PORTAL)
        self.app = create_app(self.settings)
        self.c: FlaskClient = self.app.test_client()
        md = parse_sp_metadata(sp_metadata(self.settings).encode())
        assert md.entity_id == self.settings.entity_id and md.acs_urls == (self.settings.acs,)
        registered = App(client_id=new_client_id(), name="Demo media library",
                         protocol="saml", redirect_uris=md.acs_urls, scopes=(),
                         saml_entity_id=md.entity_id, saml_metadata=md.xml, **app_fields)
        Registry(make.root, make.dns).add(registered)
        make.created.append(make.dns.app(registered.client_id))  # removed after the test
        self.client_id = registered.client_id

    def sessions(self) -> int:
        return len(self.app.extensions["media_library"])

    def path(self, url: str) -> str:
        assert url.startswith(self.base + "/"), url
        return url[len(self.base):]


@pytest.fixture
def library(make, portal, keys) -> Iterator[Library]:  # type: ignore[no-untyped-def]
    yield Library(make, portal, keys)


def portal_path(url: str) -> str:
    """The portal's address (or the test client's own) as a path for its test client."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" in (PORTAL, "http://localhost", "://"), url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def follow(web: Browserish, r: Any) -> Any:
    """The portal's redirects, to the page that stops the way."""
    for _ in range(8):
        if r.status_code not in (302, 303):
            return r
        r = web.get(portal_path(r.headers["Location"]))
    return r


def posted(r: Any) -> dict[str, str]:
    """The fields of the portal's page that posts to the SP (HTTP-POST binding)."""
    body = r.get_data(as_text=True)
    assert re.search(r'<form id="saml-post" method="post" action="[^"]+/saml/acs"', body), \
        body[:1500]
    return {unescape(k): unescape(v) for k, v in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)}


def go_url(r: Any) -> str:
    """Where the portal's "please wait" page sends the browser (HTTP-Redirect binding)."""
    m = re.search(r'<a id="saml-go" class="button" href="([^"]+)"', r.get_data(as_text=True))
    assert m, r.get_data(as_text=True)[:1500]
    return unescape(m.group(1))


def resigned(portal: Any, url: str, change: Any = lambda x: x,
             sigalg: str = SIG_RSA_SHA256) -> str:
    """The portal's HTTP-Redirect message at ``url``, its XML changed and signed again with
    the portal's own key: what only a wrong portal could send, to reach the checks behind
    the signature."""
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    kind = "SAMLRequest" if "SAMLRequest" in q else "SAMLResponse"
    xml = zlib.decompress(base64.b64decode(q[kind]), -15).decode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        info = http_redirect_message(change(xml), parts.path, relay_state=q["RelayState"],
                                     typ=kind, sigalg=sigalg, sign=True,
                                     backend=portal.extensions["mims_saml"].server()
                                     .sec.sec_backend)
    return str(dict(info["headers"])["Location"])


def child(make: Any, portal: Any) -> tuple[Any, Browserish]:
    s = make.student(level="P4", class_name="4C")
    give_answers(make.root, s.dn)
    web = Browserish(portal.test_client())
    assert web.login(s.mail, s.password).status_code == 302
    return s, web


def start(library: Library, web: Browserish) -> dict[str, str]:
    """"Sign in with MIMS": the signed AuthnRequest to the portal, the portal's answer."""
    r = library.c.post("/login")
    assert r.status_code == 303 and r.headers["Location"].startswith(PORTAL + "/saml/sso?")
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert set(q) == {"SAMLRequest", "RelayState", "SigAlg", "Signature"}
    return posted(follow(web, web.get(portal_path(r.headers["Location"]))))


def signed_in(library: Library, web: Browserish) -> str:
    r = library.c.post("/saml/acs", data=start(library, web))
    assert r.status_code == 303, text(r)
    return text(library.c.get("/"))


def reencoded(fields: dict[str, str], change: Any) -> dict[str, str]:
    xml = base64.b64decode(fields["SAMLResponse"]).decode()
    return {**fields, "SAMLResponse": base64.b64encode(change(xml).encode()).decode()}


def no_signature(xml: str, count: int) -> str:
    """The XML without its ``count`` signatures (the Response's and the Assertion's)."""
    bare, n = re.subn(r"<(\w+):Signature\b.*?</\1:Signature>", "", xml, count=count,
                      flags=re.S)
    assert n == count, xml
    return bare


def test_signs_in_and_out_through_the_portal(library, make, portal) -> None:  # type: ignore[no-untyped-def]
    s, web = child(make, portal)
    page = signed_in(library, web)
    assert f"Signed in as Student {s.uid} (P4, 4C)" in page
    assert s.mail in page and "mimsLevel P4" in page and "eduPersonAffiliation student" in page
    assert library.sessions() == 1
    # Sign out: a signed LogoutRequest the portal obeys (the portal's session ends) ...
    r = library.c.post("/logout")
    assert r.status_code == 303 and r.headers["Location"].startswith(PORTAL + "/saml/slo?")
    assert "Signature=" in r.headers["Location"] and library.sessions() == 0
    r = web.get(portal_path(r.headers["Location"]))
    assert web.get("/home").status_code == 302
    # ... and answers with a signed LogoutResponse, taken once; not unsigned, not signed
    # by another key, not answering another request.
    back = library.path(go_url(r))
    q = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    for forged in (
        "/saml/slo?" + urlencode({k: v for k, v in q.items() if k != "Signature"}),
        "/saml/slo?" + urlencode({**q, "SAMLResponse": q["SAMLResponse"][:-8] + "AAAAAAA="}),
        resigned(portal, back, lambda x: re.sub(r'InResponseTo="[^"]+"',
                                                'InResponseTo="id-not-ours"', x)),
        resigned(portal, back, sigalg=SIG_RSA_SHA1),
    ):
        r = library.c.get(forged)
        assert r.status_code == 400 and "was not accepted" in text(r), forged
    r = library.c.get(back)
    assert r.status_code == 303, text(r)
    assert "You are signed out of Media library and of the MIMS portal" in text(
        library.c.get("/"))
    assert library.c.get(back).status_code == 400


def test_the_acs_takes_only_the_answer_to_its_own_request(library, make, portal) -> None:  # type: ignore[no-untyped-def]
    s, web = child(make, portal)
    first, second = start(library, web), start(library, web)
    refused = {
        "an answer to another request": {**second, "RelayState": first["RelayState"]},
        "no RelayState": {"SAMLResponse": first["SAMLResponse"]},
        "a changed NameID": reencoded(first, lambda x: x.replace(s.mail, "x" + s.mail)),
        "a changed level": reencoded(first, lambda x: x.replace(">P4<", ">P6<")),
        "no signatures": reencoded(first, lambda x: no_signature(x, 2)),
        "only the assertion signed": reencoded(first, lambda x: no_signature(x, 1)),
        "not SAML": {**first, "SAMLResponse": "bm90IFNBTUw="},
    }
    for what, fields in refused.items():
        r = library.c.post("/saml/acs", data=fields)
        assert r.status_code == 400 and "That did not work" in text(r), what
        assert library.sessions() == 0, what
    # The genuine one, once (the changed ones above left its request waiting).
    assert library.c.post("/saml/acs", data=first).status_code == 303
    assert library.sessions() == 1
    r = library.c.post("/saml/acs", data=first)
    assert r.status_code == 400 and "answered already" in text(r)
    assert library.sessions() == 1


def test_a_child_the_library_is_not_for(make, portal, keys) -> None:  # type: ignore[no-untyped-def]
    """The portal answers RequestDenied (registered for P6 only): the page says so."""
    library = Library(make, portal, keys, allowed_levels=("P6",))
    _s, web = child(make, portal)
    r = library.c.post("/saml/acs", data=start(library, web))
    assert r.status_code == 400 and library.sessions() == 0
    assert "The portal did not sign you in" in text(r) and "RequestDenied" in text(r)


def test_idp_initiated_responses_are_refused(library, make, portal) -> None:  # type: ignore[no-untyped-def]
    """Unsolicited (no InResponseTo): refused, even carrying the RelayState of a request
    that waits."""
    _s, web = child(make, portal)
    waiting = start(library, web)
    unsolicited = posted(web.get(f"/saml/init/{library.client_id}?"
                                 + urlencode({"RelayState": waiting["RelayState"]})))
    assert 'InResponseTo="' not in base64.b64decode(unsolicited["SAMLResponse"]).decode()
    for fields in (unsolicited, {"SAMLResponse": unsolicited["SAMLResponse"]}):
        r = library.c.post("/saml/acs", data=fields)
        assert r.status_code == 400 and library.sessions() == 0, text(r)


def test_the_portals_logout_request_is_obeyed_once_and_only_signed(library, make, portal) -> None:  # type: ignore[no-untyped-def]
    _s, web = child(make, portal)
    signed_in(library, web)
    # The child signs out on the portal: the portal tells the media library.
    web.get("/home")
    r = web.post("/logout", {})
    url = go_url(follow(web, r))
    assert url.startswith(library.settings.slo + "?SAMLRequest=")
    path = library.path(url)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    for forged in (
        {k: v for k, v in q.items() if k not in ("Signature", "SigAlg")},  # unsigned
        {**q, "RelayState": "elsewhere"},  # the signed query changed
        {**q, "SigAlg": SIG_RSA_SHA1},
    ):
        r = library.c.get("/saml/slo?" + urlencode(forged))
        assert r.status_code == 400 and "was not accepted" in text(r), forged.keys()
        assert library.sessions() == 1
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60))
    for forged_url in (  # signed by the portal's key, but not as this SP takes them
        resigned(portal, path, sigalg=SIG_RSA_SHA1),
        resigned(portal, path, lambda x: re.sub(r' Destination="[^"]+"', "", x)),
        resigned(portal, path, lambda x: re.sub(r'IssueInstant="[^"]+"',
                                                f'IssueInstant="{old}"', x)),
        resigned(portal, path, lambda x: re.sub(r'NotOnOrAfter="[^"]+"',
                                                f'NotOnOrAfter="{old}"', x)),
    ):
        r = library.c.get(forged_url)
        assert r.status_code == 400 and "was not accepted" in text(r), text(r)
        assert library.sessions() == 1
    r = library.c.get(path)
    assert library.sessions() == 0
    assert r.status_code == 303 and r.headers["Location"].startswith(PORTAL + "/saml/slo?")
    assert "SAMLResponse=" in r.headers["Location"] and "Signature=" in r.headers["Location"]
    # The portal takes the answer and ends its round at its sign-in page.
    r = follow(web, web.get(portal_path(r.headers["Location"])))
    assert r.status_code == 200 and "signed out" in text(r).lower()
    assert "signed out from another application" in text(library.c.get("/"))
    # The same LogoutRequest again: refused.
    assert library.c.get(path).status_code == 400


def test_a_logout_request_for_someone_else_ends_nothing_of_this_child(library, make,  # type: ignore[no-untyped-def]
                                                                    portal) -> None:
    _s, web = child(make, portal)
    signed_in(library, web)
    # Another child at this library, and at another library (its own browser, cookies).
    _s2, web2 = child(make, portal)
    other_library = Library(make, portal, (Path(library.settings.key_file),
                                           Path(library.settings.cert_file)))
    browser2 = library.app.test_client()
    library_c, library.c = library.c, browser2
    signed_in(library, web2)
    library.c = library_c
    signed_in(other_library, web2)
    assert library.sessions() == 2
    # The second child signs out on the portal: the portal tells both libraries.
    web2.get("/home")
    r = web2.post("/logout", {})
    urls = []
    for _ in range(2):
        url = go_url(follow(web2, r))
        urls.append(url)
        mine = url.startswith(library.settings.slo)
        # The other library's message is not for this one's address.
        if not mine:
            before = library.sessions()
            assert library.c.get("/saml/slo?" + urlsplit(url).query).status_code == 400
            assert library.sessions() == before
        target = library if mine else other_library
        r = target.c.get(target.path(url))
        assert r.status_code == 303, text(r)
        r = web2.get(portal_path(r.headers["Location"]))
    assert sorted(u.split("?")[0] for u in urls) == sorted(
        [library.settings.slo, other_library.settings.slo])
    # The first child is still signed in here; the second is not, at either library.
    assert library.sessions() == 1 and other_library.sessions() == 0
    assert "Signed in as" in text(library.c.get("/"))
    assert "signed out from another" in text(browser2.get("/"))


def test_who_line() -> None:
    student = [("displayName", "", "Wei Ling Tan"), ("mimsLevel", "", "P2"),
               ("mimsClass", "", "2A"), ("eduPersonAffiliation", "", "student")]
    assert who_line(student, "w@x") == "Wei Ling Tan (P2, 2A)"
    teacher = [("displayName", "", "Jason Lim"), ("mimsClass", "", "4A"),
               ("eduPersonAffiliation", "", "faculty")]
    assert who_line(teacher, "j@x") == "Jason Lim (faculty)"
    assert who_line([], "j@x") == "j@x"


def test_its_metadata(keys) -> None:  # type: ignore[no-untyped-def]
    s = Settings(base_url="http://127.0.0.1:8082", key_file=str(keys[0]),
                 cert_file=str(keys[1]))
    xml = sp_metadata(s)
    assert xml == sp_metadata(s)  # make demo compares it with the registered one
    assert 'entityID="http://127.0.0.1:8082/saml/metadata"' in xml
    assert 'AuthnRequestsSigned="true"' in xml and 'WantAssertionsSigned="true"' in xml
    assert re.search(r'AssertionConsumerService Binding="[^"]+HTTP-POST" '
                     r'Location="http://127.0.0.1:8082/saml/acs"', xml)
    assert re.search(r'SingleLogoutService Binding="[^"]+HTTP-Redirect" '
                     r'Location="http://127.0.0.1:8082/saml/slo"', xml)
    assert "sha1" not in xml.lower() and "Extensions" not in xml
    assert (keys[0].stat().st_mode & 0o777, keys[1].stat().st_mode & 0o777) == (0o600, 0o600)


class FakeCli:
    """``mimsdir app list/show/add/remove --json`` as the demo's registration uses them, on
    a dict (the real CLI is tested in test_cli_app.py; `make demo` with it in test_demo.py)."""

    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._n = itertools.count(1)

    def __call__(self, *args: str, check: bool = True) -> Any:
        import json
        import subprocess

        self.calls.append(" ".join(args[:2]))

        def done(out: Any, code: int = 0) -> Any:
            return subprocess.CompletedProcess(args, code, json.dumps(out), "")

        match args:
            case ("app", "list", "--json"):
                return done([{k: v for k, v in a.items() if k != "saml_metadata"}
                             for a in self.apps.values()])
            case ("app", "show", cid, "--json"):
                return done(self.apps[cid]) if cid in self.apps else done(None, 1)
            case ("app", "remove", cid):
                del self.apps[cid]
                return done(None)
            case ("app", "add", name, "--saml", "--metadata", path, "--description", desc,
                  "--json"):
                md = parse_sp_metadata(Path(path).read_bytes())
                if any(a["saml_entity_id"] == md.entity_id for a in self.apps.values()):
                    raise RuntimeError("exit 3: entity ID registered already")
                cid = f"app-{next(self._n)}"
                self.apps[cid] = {"client_id": cid, "name": name, "protocol": "saml",
                                  "redirect_uris": list(md.acs_urls), "description": desc,
                                  "saml_entity_id": md.entity_id, "saml_metadata": md.xml}
                return done({"client_id": cid, "client_secret": None})
        raise AssertionError(args)


def test_registration_is_reused_and_replaced(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import types

    import demo.media_library as ml
    from demo.common import MARK, Context

    monkeypatch.setattr(ml, "fetch_idp_metadata",
                        lambda portal: b"<EntityDescriptor>IDPSSODescriptor</...>")
    cli = FakeCli()
    cfg = types.SimpleNamespace(portal=types.SimpleNamespace(public_url=PORTAL))

    class Ctx(Context):
        def mimsdir(self, *args: str, check: bool = True) -> Any:
            return cli(*args, check=check)

    ctx = Ctx(tmp_path / "config.yaml", cfg, tmp_path / "var")  # type: ignore[arg-type]
    first = ml.register(ctx, "127.0.0.1:8082")
    assert first["action"] == "registered" and list(cli.apps) == [first["client_id"]]
    folder = tmp_path / "var" / "demo-apps"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        "media-library-key.pem": 0o600, "media-library-cert.pem": 0o600,
        "media-library-idp.xml": 0o600, "media-library-sp.xml": 0o600}
    assert MARK in cli.apps[first["client_id"]]["description"]
    # The same address and certificate: the same registration, nothing added.
    cli.calls.clear()
    again = ml.register(ctx, "127.0.0.1:8082")
    assert again == {**first, "action": "reused"} and "app add" not in cli.calls
    # Another address: registered anew, the old one (a stale copy) removed.
    moved = ml.register(ctx, "127.0.0.1:9082")
    assert moved["action"] == "registered" and list(cli.apps) == [moved["client_id"]]
    assert cli.apps[moved["client_id"]]["redirect_uris"] == ["http://127.0.0.1:9082/saml/acs"]
    # A new certificate (the key files lost), the same entity ID: the old one goes first.
    for p in folder.glob("media-library-*.pem"):
        p.unlink()
    renewed = ml.register(ctx, "127.0.0.1:9082")
    assert renewed["action"] == "registered" and list(cli.apps) == [renewed["client_id"]]
    # Someone else's registration of that entity ID is not removed: make demo says so.
    cli.apps[renewed["client_id"]]["description"] = "the school's own"
    for p in folder.glob("media-library-*.pem"):
        p.unlink()
    with pytest.raises(RuntimeError, match="not by make demo"):
        ml.register(ctx, "127.0.0.1:9082")
    assert list(cli.apps) == [renewed["client_id"]]
