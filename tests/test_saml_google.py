"""Google Workspace through the portal, as docs/apps.md sets it up: the example metadata
(docs/examples/google-sp.xml) registered with the documented command, Google's own kind of
AuthnRequest (unsigned, HTTP-Redirect, a domain-specific issuer, NameIDPolicy unspecified),
and the response Google needs: posted to its ACS, NameID = the login ID, signed with the
certificate `mimsdir app saml-cert` prints, for the audience google.com/a/<domain>."""

from __future__ import annotations

import base64
import secrets
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from mimsdir.apps.registry import Registry
from tests.portal_helpers import Browserish, give_answers, make_app
from tests.saml_helpers import form_of, make_sp
from tests.staff_helpers import config_path, run
from tests.test_saml_sso import EMAIL, follow

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "google-sp.xml"


def google_request(domain: str) -> tuple[str, str]:
    """What Google's SSO profile sends (its shape, as Google sends it)."""
    req_id = "_" + secrets.token_hex(16)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><samlp:AuthnRequest '
           f'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="{req_id}" Version="2.0" '
           f'IssueInstant="{now}" '
           f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
           f'ProviderName="google.com" IsPassive="false" '
           f'AssertionConsumerServiceURL="https://www.google.com/a/{domain}/acs">'
           f'<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
           f'google.com/a/{domain}</saml:Issuer><samlp:NameIDPolicy AllowCreate="true" '
           f'Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"/>'
           f'</samlp:AuthnRequest>')
    deflated = zlib.compress(xml.encode())[2:-4]
    relay = f"https://www.google.com/a/{domain}/ServiceLogin?service=mail&continue=https://mail.google.com/mail/"
    return req_id, "/saml/sso?" + urlencode({"SAMLRequest": base64.b64encode(deflated).decode(),
                                              "RelayState": relay})


def test_google_workspace_as_documented(slapd, make, tmp_path) -> None:  # type: ignore[no-untyped-def]
    domain = f"{make.school.lower()}.school.edu.sg"
    md = tmp_path / "google-sp.xml"
    md.write_text(EXAMPLE.read_text().replace("students.school.edu.sg", domain))
    cfg = config_path(slapd)
    res = run(cfg, "app", "add", "Google Workspace", "--saml", "--metadata", str(md),
              "--role", "student")
    assert res.exit_code == 0, res.output
    registry = Registry(make.root, make.dns)
    google = registry.by_entity_id(f"google.com/a/{domain}")
    assert google is not None
    try:
        s = make.student(level="P5")
        give_answers(make.root, s.dn)
        app = make_app(slapd)
        idp_md = app.test_client().get("/saml/metadata").data
        web = Browserish(app.test_client())
        req_id, path = google_request(domain)
        r = follow(web, web.c.get(path), s)
        form = form_of(r)
        acs = f"https://www.google.com/a/{domain}/acs"
        assert form.action == acs and form.fields["RelayState"].startswith("https://www.google")
        # Checked as Google would: a SP with Google's entity ID and ACS, trusting the IdP
        # certificate of the metadata (= `mimsdir app saml-cert`).
        assert run(cfg, "app", "saml-cert").stdout.splitlines()[1].encode() in idp_md
        as_google = make_sp(make, slapd, idp_md, tmp_path, register=False,
                            entity_id=f"google.com/a/{domain}", acs=acs)
        as_google.outstanding[req_id] = "/"
        info = as_google.accept(form).session_info()
        assert info["name_id"].text == s.mail and info["name_id"].format == EMAIL
        # A teacher is not for this profile (--role student): no assertion.
        teacher = make.teacher("5A")
        web = Browserish(app.test_client())
        _req, path = google_request(domain)
        form = form_of(follow(web, web.c.get(path), teacher))
        assert "RequestDenied" in base64.b64decode(form.fields["SAMLResponse"]).decode()
    finally:
        registry.remove(google.client_id)
