"""The demo media library (``app.py``): a SAML 2.0 service provider on
http://127.0.0.1:8082 (``MEDIA_LIBRARY_LISTEN``), registered by ``make demo`` once.

``make demo`` makes its key and certificate once (``$VAR/demo-apps/media-library-key.pem``
and ``-cert.pem``, 0600), fetches the portal's IdP metadata
(``media-library-idp.xml``), writes the SP's own metadata (``media-library-sp.xml``) and
registers it, as ICT staff would::

    mimsdir app add "Demo media library" --saml --metadata media-library-sp.xml

A later ``make demo`` reuses the registration while the directory has this entity ID with
exactly this metadata (same address, same certificate); otherwise the old one is removed
(an entity ID is registered once) and it is registered anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo.common import MARK, Context, DemoApp, State
from demo.media_library.app import Settings, create_app, sp_metadata

NAME = "Demo media library"
KEY = "media-library"

__all__ = ["DEMO", "NAME", "Settings", "create_app", "credentials", "sp_metadata"]


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically, ``mode`` from the start (a key is never readable by others)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.chmod(mode)
    tmp.replace(path)


def credentials(folder: Path, name: str = NAME) -> tuple[Path, Path]:
    """The SP's RSA 3072 key and self-signed certificate (10 years), made once into
    ``folder`` (0700), both files 0600; (key, cert)."""
    key_path, cert_path = folder / f"{KEY}-key.pem", folder / f"{KEY}-cert.pem"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    _write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def fetch_idp_metadata(portal: str) -> bytes:
    url = f"{portal}/saml/metadata"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (the config's URL)
            data: bytes = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"cannot read the portal's SAML metadata at {url} ({exc}): is "
                           f"the portal running? (scripts/portal.sh start)") from None
    if b"IDPSSODescriptor" not in data:
        raise RuntimeError(f"{url} is not the portal's IdP metadata")
    return data


def _matches(registered: dict[str, Any] | None, s: Settings, xml: str) -> bool:
    return (registered is not None and registered.get("protocol") == "saml"
            and registered.get("saml_entity_id") == s.entity_id
            and registered.get("redirect_uris") == [s.acs]
            and registered.get("saml_metadata") == xml)


def register(ctx: Context, listen: str) -> State:
    """The media library's registration: the directory's if it has this entity ID with this
    very metadata; otherwise a new one (the old one and any stale copy removed)."""
    folder = (ctx.var / "demo-apps").resolve()
    key, cert = credentials(folder)
    portal = ctx.cfg.portal.public_url
    idp_xml = fetch_idp_metadata(portal)
    idp_path = folder / f"{KEY}-idp.xml"
    if not idp_path.exists() or idp_path.read_bytes() != idp_xml:
        _write(idp_path, idp_xml)
    want = Settings(base_url=f"http://{listen}", key_file=str(key), cert_file=str(cert),
                    portal=portal)
    xml = sp_metadata(want)
    sp_path = folder / f"{KEY}-sp.xml"
    if not sp_path.exists() or sp_path.read_text(encoding="utf-8") != xml:
        _write(sp_path, xml.encode())
    apps = json.loads(ctx.mimsdir("app", "list", "--json").stdout)
    holding = [a for a in apps if a.get("saml_entity_id") == want.entity_id]
    if len(holding) == 1 and _matches(ctx.app_json(holding[0]["client_id"]), want, xml):
        client_id, action = str(holding[0]["client_id"]), "reused"
    else:
        for a in holding:  # an entity ID is registered once: the old one goes first
            if MARK not in (a.get("description") or ""):
                raise RuntimeError(
                    f"{want.entity_id} is registered already as {a['name']!r} "
                    f"({a['client_id']}), not by make demo: remove it, or move the media "
                    f"library with MEDIA_LIBRARY_LISTEN=host:port")
            ctx.mimsdir("app", "remove", str(a["client_id"]))
        out = json.loads(ctx.mimsdir(
            "app", "add", NAME, "--saml", "--metadata", str(sp_path),
            "--description", f"the demo's SAML service provider ({MARK})", "--json").stdout)
        client_id, action = str(out["client_id"]), "registered"
    ctx.remove_stale(NAME, keep=client_id)
    return {"client_id": client_id, "entity_id": want.entity_id, "url": want.base_url,
            "listen": listen, "portal": portal, "key_file": str(key), "cert_file": str(cert),
            "idp_metadata_file": str(idp_path),
            "idp_metadata_sha256": hashlib.sha256(idp_xml).hexdigest(), "action": action}


def from_state(state: State) -> Any:
    idp_xml = Path(state["idp_metadata_file"]).read_text(encoding="utf-8")
    return create_app(Settings(base_url=state["url"], key_file=state["key_file"],
                               cert_file=state["cert_file"], idp_metadata=idp_xml,
                               portal=state["portal"]))


def how_to_try(state: State) -> Sequence[str]:
    return [f"Then open {state['url']}/ (the media library, a SAML service provider) and press",
            "\"Sign in with MIMS\": no password is asked, and it shows the P2 student and what",
            "the portal's signed assertion said. \"Sign out\" in either application signs you",
            "out of both and of the portal (SAML single logout, OpenID Connect back-channel)."]


DEMO = DemoApp(key=KEY, title="the media library (SAML)",
               listen_env="MEDIA_LIBRARY_LISTEN", default_listen="127.0.0.1:8082",
               register=register, create_app=from_state, how_to_try=how_to_try)
