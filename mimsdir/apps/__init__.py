"""Registered applications (issue 9): the OpenID Connect clients and SAML service providers
that may sign people in through the portal, and the identity provider's signing keys.

- ``model``: ``App`` and its rules (pure); ``secret``: client secrets (argon2id, pure);
  ``saml_metadata``: an SP's metadata, read safely (pure)
- ``registry``: the apps in the directory under ``ou=apps`` (through ``Conn``)
- ``keys``: the OIDC signing keys and the SAML IdP's certificate, in ``<secrets_dir>``
"""
