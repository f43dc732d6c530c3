"""The registered application's rules, without a directory: redirect URIs, who may sign in,
the client secret, the LDAP form (round trip) and SAML metadata."""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mimsdir.apps.model import (
    LEVELS,
    ROLES,
    SCOPES,
    App,
    app_from_entry,
    app_to_attrs,
    hash_secret,
    is_client_id,
    new_client_id,
    new_client_secret,
    validate_app,
    validate_redirect_uri,
)
from mimsdir.apps.saml_metadata import parse_sp_metadata
from mimsdir.apps.secret import verify_secret
from mimsdir.directory.slapdconf import Dns

DATA = Path(__file__).parent / "data" / "saml"
DNS = Dns("dc=mims,dc=example")
SECRET = new_client_secret()
HASH = hash_secret(SECRET)


def oidc(**kw: object) -> App:
    fields: dict[str, object] = {"client_id": "app-test", "name": "Maths quest",
                                 "protocol": "oidc",
                                 "redirect_uris": ("https://maths.example/cb",),
                                 "secret_hash": HASH}
    fields.update(kw)
    return App(**fields)  # type: ignore[arg-type]


# -- redirect URIs --------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "https://maths.example/cb",
    "https://maths.example:8443/oidc/callback?tenant=moe",
    "http://127.0.0.1:53117/cb",          # RFC 8252 native app, loopback
    "http://127.8.9.10/cb",
    "http://[::1]:8000/cb",
    "http://localhost:3000/auth/callback",
    "HTTPS://Maths.Example/cb",
])
def test_redirect_uri_accepted(uri: str) -> None:
    assert validate_redirect_uri(uri) == uri


@pytest.mark.parametrize(("uri", "problem"), [
    ("", "empty"),
    ("http://maths.example/cb", "uses http"),
    ("http://127.0.0.1.evil.example/cb", "uses http"),
    ("http://localhost.evil.example/cb", "uses http"),
    ("https://maths.example/cb#frag", "fragment"),
    ("https://maths.example/cb#", "fragment"),
    ("https://*.maths.example/cb", "wildcard"),
    ("https://maths.example/*", "wildcard"),
    ("/cb", "absolute"),
    ("maths.example/cb", "absolute"),
    ("https:///cb", "absolute"),
    ("https:maths.example/cb", "absolute"),
    ("javascript://maths.example/%0aalert(1)", "scheme"),
    ("com.example.app:/cb", "absolute"),
    ("ftp://maths.example/cb", "scheme"),
    ("https://user:pw@maths.example/cb", "user name or password"),
    ("https://maths.example:99999/cb", "port"),
    ("https://maths.example/c b", "spaces"),
    (" https://maths.example/cb", "spaces"),
    ("https://maths.example/cb\n", "spaces"),
    ("https://mäths.example/cb", "ASCII"),
    ("https://maths.example\\@evil.example/cb", "backslash"),
    ("https://maths.example/" + "a" * 2000, "longer"),
])
def test_redirect_uri_refused_naming_the_problem(uri: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_redirect_uri(uri)


# -- who may sign in --------------------------------------------------------------------------

@pytest.mark.parametrize(("restrictions", "person", "allowed"), [
    ({}, ("student", "P2", "S1"), True),
    ({}, ("teacher", None, "S1"), True),
    ({}, ("staff", None, None), True),
    ({}, ("parent", None, "S1"), False),          # not a role of the directory
    ({}, ("", None, None), False),
    ({"allowed_roles": ("student",)}, ("student", "P4", "S1"), True),
    ({"allowed_roles": ("student",)}, ("teacher", None, "S1"), False),
    ({"allowed_roles": ("teacher", "staff")}, ("Teacher", None, "S1"), True),
    ({"allowed_levels": ("P4", "P5")}, ("student", "P4", "S1"), True),
    ({"allowed_levels": ("P4", "P5")}, ("student", "p5", "S1"), True),
    ({"allowed_levels": ("P4", "P5")}, ("student", "P3", "S1"), False),
    ({"allowed_levels": ("P4", "P5")}, ("student", None, "S1"), False),
    # levels are a student's: a teacher is limited by roles, not by levels
    ({"allowed_levels": ("P4",)}, ("teacher", None, "S1"), True),
    ({"allowed_levels": ("P4",), "allowed_roles": ("student",)}, ("teacher", None, "S1"), False),
    ({"allowed_schools": ("NPS",)}, ("student", "P4", "nps"), True),
    ({"allowed_schools": ("NPS",)}, ("student", "P4", "OTHER"), False),
    ({"allowed_schools": ("NPS",)}, ("teacher", None, None), False),
    ({"allowed_schools": ("NPS",)}, ("teacher", None, "NPS"), True),
    ({"allowed_schools": ("A", "B"), "allowed_levels": ("P6",), "allowed_roles": ("student",)},
     ("student", "P6", "B"), True),
    ({"allowed_schools": ("A", "B"), "allowed_levels": ("P6",), "allowed_roles": ("student",)},
     ("student", "P5", "B"), False),
])
def test_allows(restrictions: dict[str, tuple[str, ...]], person: tuple[str, str | None,
                                                                        str | None],
                allowed: bool) -> None:
    assert oidc(**restrictions).allows(*person) is allowed


# -- the secret -----------------------------------------------------------------------------

def test_secret_is_random_urlsafe_and_stored_only_as_argon2id() -> None:
    assert len(SECRET) == 43 and new_client_secret() != SECRET
    assert all(ch.isalnum() or ch in "-_" for ch in SECRET)
    assert HASH.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert SECRET not in HASH
    assert SECRET not in repr(oidc())


def test_check_secret() -> None:
    app = oidc()
    assert app.check_secret(SECRET)
    assert not app.check_secret(SECRET + "x")
    assert not app.check_secret(SECRET.upper())   # compared exactly, never normalised
    assert not app.check_secret("")
    assert not app.check_secret(None)  # type: ignore[arg-type]
    # a public client or a SAML app has no secret, whatever is stored
    assert not oidc(public=True).check_secret(SECRET)
    assert not oidc(protocol="saml").check_secret(SECRET)
    assert not oidc(secret_hash=None).check_secret(SECRET)
    assert not oidc(secret_hash="$argon2id$garbage").check_secret(SECRET)
    tampered = HASH.replace("m=19456", "m=4194304")
    assert not oidc(secret_hash=tampered).check_secret(SECRET)


def _median_seconds(fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.timing
def test_verification_takes_the_same_time_right_wrong_or_no_secret() -> None:
    """A wrong secret, and an app with no usable hash, cost the same argon2 work as the
    right one: the time of a token request says nothing about which it was."""
    verify_secret(None, "warm-up")  # the dummy hash is made once, on first use
    right = _median_seconds(lambda: verify_secret(HASH, SECRET))
    for label, fn in (("wrong", lambda: verify_secret(HASH, "wrong")),
                      ("public", lambda: oidc(public=True).check_secret(SECRET)),
                      ("no hash", lambda: verify_secret(None, SECRET)),
                      ("malformed", lambda: verify_secret("$argon2id$x", SECRET))):
        assert 0.5 * right < _median_seconds(fn) < 2 * right, label


# -- validation -----------------------------------------------------------------------------

def saml(**kw: object) -> App:
    fields: dict[str, object] = {"client_id": "app-saml", "name": "Library", "protocol": "saml",
                                 "redirect_uris": ("https://library.example/acs",),
                                 "scopes": (), "saml_entity_id": "https://library.example/sp",
                                 "saml_metadata": "<md:EntityDescriptor/>"}
    fields.update(kw)
    return App(**fields)  # type: ignore[arg-type]


def test_valid_apps_pass() -> None:
    assert validate_app(oidc()) == oidc()
    validate_app(oidc(public=True, secret_hash=None, scopes=("openid",),
                      allowed_levels=("P4",), allowed_roles=("student",),
                      allowed_schools=("NPS",), pairwise=True, consent=True,
                      post_logout_redirect_uris=("https://maths.example/bye",),
                      backchannel_logout_uri="https://maths.example/bcl",
                      description="P4 maths"))
    validate_app(saml())
    assert is_client_id(new_client_id()) and new_client_id().startswith("app-")


@pytest.mark.parametrize(("app", "problem"), [
    (oidc(client_id="app x"), "client id"),
    (oidc(client_id="a" * 65), "client id"),
    (oidc(name=""), "name"),
    (oidc(name=" padded"), "name"),
    (oidc(protocol="cas"), "protocol"),
    (oidc(redirect_uris=()), "at least one redirect URI"),
    (oidc(redirect_uris=("http://maths.example/cb",)), "redirect URI .* uses http"),
    (oidc(redirect_uris=("https://a.example/cb", "https://a.example/cb")), "listed twice"),
    (oidc(post_logout_redirect_uris=("https://a.example/#x",)), "post-logout URI"),
    (oidc(backchannel_logout_uri="http://a.example/bcl"), "back-channel"),
    (oidc(scopes=("email",)), "openid"),
    (oidc(scopes=("openid", "admin")), "scope"),
    (oidc(public=True), "public client has no secret"),
    (oidc(secret_hash=None), "argon2id hash"),
    (oidc(secret_hash=SECRET), "argon2id hash"),     # never the secret itself
    (oidc(allowed_levels=("P7",)), "level"),
    (oidc(allowed_roles=("parent",)), "role"),
    (oidc(allowed_schools=("NPS", "nps")), "listed twice"),
    (oidc(saml_entity_id="https://x"), "SAML"),
    (saml(saml_entity_id=None), "entity ID"),
    (saml(saml_metadata=None), "metadata"),
    (saml(redirect_uris=()), "AssertionConsumerService"),
    (saml(redirect_uris=("http://library.example/acs",)), "uses http"),
    (saml(secret_hash=HASH), "OpenID Connect only"),
    (saml(scopes=("openid",)), "OpenID Connect only"),
])
def test_invalid_apps_refused(app: App, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_app(app)


# -- LDAP form ------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
_many = st.lists(_text, max_size=3, unique=True).map(tuple)
_opt = st.none() | _text

apps = st.builds(
    App,
    client_id=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    name=_text,
    protocol=st.sampled_from(["oidc", "saml"]),
    redirect_uris=_many,
    post_logout_redirect_uris=_many,
    backchannel_logout_uri=_opt,
    public=st.booleans(),
    secret_hash=_opt,
    scopes=st.lists(st.sampled_from(SCOPES), unique=True).map(tuple),
    consent=st.booleans(),
    pairwise=st.booleans(),
    allowed_levels=st.lists(st.sampled_from(LEVELS), unique=True).map(tuple),
    allowed_schools=_many,
    allowed_roles=st.lists(st.sampled_from(ROLES), unique=True).map(tuple),
    saml_entity_id=_opt,
    saml_metadata=_opt,
    description=_opt,
)


@settings(max_examples=300)
@given(apps)
def test_ldap_form_round_trips(app: App) -> None:
    attrs = app_to_attrs(app)
    assert all(values for values in attrs.values())      # slapd refuses empty value lists
    assert app_from_entry(DNS.app(app.client_id), attrs) == app


def test_ldap_form_reads_attribute_names_in_any_case() -> None:
    app = oidc(allowed_levels=("P4",))
    attrs = {k.lower(): v for k, v in app_to_attrs(app).items()}
    assert app_from_entry(DNS.app(app.client_id), attrs) == app


def test_secret_in_the_ldap_form_is_the_hash() -> None:
    attrs = app_to_attrs(oidc())
    assert attrs["mimsAppSecret"] == [HASH.encode()]
    assert SECRET.encode() not in b"".join(v for vs in attrs.values() for v in vs)


def test_unknown_protocol_is_never_read_as_oidc() -> None:
    attrs = app_to_attrs(oidc())
    attrs["mimsAppProtocol"] = [b"cas"]
    with pytest.raises(ValueError, match="not oidc or saml"):
        app_from_entry(DNS.app("app-test"), attrs)


# -- SAML metadata --------------------------------------------------------------------------

def test_sp_metadata() -> None:
    data = (DATA / "sp-metadata.xml").read_bytes()
    md = parse_sp_metadata(data)
    assert md.entity_id == "https://library.example.edu.sg/saml/sp"
    assert md.acs_urls == ("https://library.example.edu.sg/saml/acs",
                           "https://library.example.edu.sg/saml/artifact")
    assert md.xml == data.decode()


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol2;"/>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"""
MD_OPEN = b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'


@pytest.mark.parametrize(("data", "problem"), [
    ((DATA / "idp-metadata.xml").read_bytes(), "no SPSSODescriptor"),
    (BOMB, "DTD"),
    (XXE, "DTD"),
    (b"<html><body>Not found</body></html>", "not SAML 2.0 metadata"),
    (b"entityID=https://x", "not well-formed XML"),
    (b"", "not well-formed XML"),
    ("<?xml version='1.0' encoding='latin-1'?><x>é</x>".encode("latin-1"), "UTF-8"),
    (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>',
     "EntitiesDescriptor"),
    (MD_OPEN + b"><md:SPSSODescriptor><md:AssertionConsumerService Location='https://a/acs'/>"
     b"</md:SPSSODescriptor></md:EntityDescriptor>", "no entityID"),
    (MD_OPEN + b" entityID='https://a/sp'><md:SPSSODescriptor/></md:EntityDescriptor>",
     "no AssertionConsumerService"),
    (MD_OPEN + b" entityID='" + b"x" * 1025 + b"'><md:SPSSODescriptor/></md:EntityDescriptor>",
     "longer than 1024"),
    (b" " * (256 * 1024 + 1), "larger than"),
])
def test_bad_metadata_refused_in_one_line(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse_sp_metadata(data)
    assert "\n" not in str(info.value)


def test_dataclass_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        oidc().name = "x"  # type: ignore[misc]
