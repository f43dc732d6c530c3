"""The SAML 2.0 identity provider, beside the OpenID Connect provider (``portal/oidc/``) and
over the same directory: pysaml2 does every XML signature and check (with Debian's
``xmlsec1``); this package decides who gets what.

- ``idp.py``: the pysaml2 ``Server`` built in code (entity id, key and certificate, one
  registered SP's metadata at a time), the IdP metadata, assertions and logout messages;
- ``state.py``: what the IdP remembers, in the directory beside the OIDC grants (request IDs
  against replay, requests waiting for a sign-in, which SPs a session reached, sign-out
  rounds);
- ``views.py``: ``/saml/metadata``, ``/saml/sso``, ``/saml/init/<client id>``, ``/saml/slo``;
- ``logout.py``: single logout, both ways.
"""
