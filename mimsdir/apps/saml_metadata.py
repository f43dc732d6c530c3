"""A SAML service provider's metadata: what the registry needs from it (the entityID and the
AssertionConsumerService URLs), read safely. The XML itself is stored whole: the portal's SAML
IdP (pysaml2) reads the SP's keys and bindings from it.

Parsed with defusedxml and no DTD at all: metadata comes from a vendor's web page, and an XML
entity bomb or an external entity must not reach the CLI or the portal.
"""

from __future__ import annotations

from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = ["MAX_METADATA_BYTES", "SpMetadata", "parse_sp_metadata"]

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
#: SAML 2.0 core §8.3.6: an entity identifier is at most 1024 characters.
MAX_ENTITY_ID = 1024
#: An SP's metadata is a few kilobytes; an entry is not a file store.
MAX_METADATA_BYTES = 256 * 1024


@dataclass(frozen=True)
class SpMetadata:
    entity_id: str
    acs_urls: tuple[str, ...]
    xml: str


def parse_sp_metadata(data: bytes) -> SpMetadata:
    """The SP's entityID and AssertionConsumerService locations (in document order, each
    once), and the XML as text. Raises ValueError with a one-line reason: not XML, not UTF-8,
    too large, not one EntityDescriptor, no SPSSODescriptor (an IdP's metadata, say), no
    entityID or no AssertionConsumerService. The ACS URLs are not judged here: the registry
    checks them like redirect URIs."""
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(f"larger than {MAX_METADATA_BYTES // 1024} KiB: not an SP's metadata")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise ValueError("a DTD or an entity declaration: refused (SAML metadata has none)"
                         ) from None
    except SafeET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        raise ValueError("an EntitiesDescriptor (several entities): register one SP's own "
                         "metadata (its EntityDescriptor)")
    if root.tag != f"{{{MD}}}EntityDescriptor":
        raise ValueError("not SAML 2.0 metadata (no md:EntityDescriptor at the top)")
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    if sp is None:
        raise ValueError("no SPSSODescriptor: this is not a service provider's metadata")
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id:
        raise ValueError("the EntityDescriptor has no entityID")
    if len(entity_id) > MAX_ENTITY_ID:
        raise ValueError(f"the entityID is longer than {MAX_ENTITY_ID} characters")
    if any(ord(ch) < 0x20 for ch in entity_id):
        raise ValueError("the entityID contains control characters")
    acs: list[str] = []
    for service in sp.findall(f"{{{MD}}}AssertionConsumerService"):
        location = (service.get("Location") or "").strip()
        if location and location not in acs:
            acs.append(location)
    if not acs:
        raise ValueError("the SPSSODescriptor has no AssertionConsumerService Location")
    return SpMetadata(entity_id=entity_id, acs_urls=tuple(acs), xml=text)
