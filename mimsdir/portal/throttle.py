"""The portal's own budgets, before anything reaches slapd: one per client across every form,
and one per login ID for failures, with familiar browsers counted apart (smart lockout).

Why these shapes (docs/security.md section 4):
- One budget per client across all forms: a script that exhausted ``/login`` cannot move on
  to ``/forgot``.
- A *client* is a familiar browser (one that carries a device cookie from an earlier
  successful sign-in) or else its address. A whole school may share one address; a student
  scripting from it exhausts the address's budget, but every browser that has signed in
  before keeps its own budget and signs in as usual.
- Attempts per login ID (sign-ins, answers), counted before they are checked: an unfamiliar
  browser's attempts never block the login ID on the browsers it was used on before. The
  key is the login ID as typed (hashed), so an unknown ID is throttled exactly like a real
  one.
- Counters live in ``portal.rate_limit_storage`` (``limits``' moving windows): memory:// for
  one instance, a shared redis:// or memcached:// for several.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

DEVICE_COOKIE = "mims_device"
DEVICE_DAYS = 180
DEVICE_ACCOUNTS = 8  # login IDs remembered per browser (a shared class computer)


@dataclass(frozen=True)
class Device:
    """A browser's device cookie: a random id and the login IDs (hashed) that signed in on
    it. Nothing personal: the hashes are keyed with the portal's secret."""

    id: str
    accounts: tuple[str, ...] = field(default_factory=tuple)

    def knows(self, account: str) -> bool:
        return account in self.accounts

    def with_account(self, account: str) -> Device:
        kept = tuple(a for a in self.accounts if a != account)
        return Device(self.id, (account, *kept)[:DEVICE_ACCOUNTS])


class Throttle:
    def __init__(self, secret: bytes, storage_uri: str, client_limit: str, device_limit: str,
                 account_limit: str) -> None:
        self._secret = secret
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._client = parse_many(client_limit)
        self._device = parse_many(device_limit)
        self._account = parse_many(account_limit)
        self._cookies = URLSafeTimedSerializer(secret, salt="mims-device")

    # -- device cookies ----------------------------------------------------------------------
    def account(self, login_id: str) -> str:
        return hmac.new(self._secret, b"acct\0" + login_id.strip().lower().encode(),
                        hashlib.sha256).hexdigest()[:24]

    def read_device(self, cookie: str | None) -> Device | None:
        if not cookie:
            return None
        try:
            data = self._cookies.loads(cookie, max_age=DEVICE_DAYS * 86400)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("d"), str):
            return None
        accounts = data.get("a")
        return Device(data["d"], tuple(a for a in accounts if isinstance(a, str))
                      if isinstance(accounts, list) else ())

    def new_device(self) -> Device:
        return Device(secrets.token_urlsafe(16))

    def write_device(self, device: Device) -> str:
        return self._cookies.dumps({"d": device.id, "a": list(device.accounts)})

    # -- budgets -----------------------------------------------------------------------------
    def _all_hit(self, items: list[RateLimitItem], *ids: str) -> bool:
        # Test every window first: a refused post must not use up the other windows.
        if not all(self._limiter.test(item, *ids) for item in items):
            return False
        return all([self._limiter.hit(item, *ids) for item in items])

    def form_post(self, address: str, device: Device | None) -> bool:
        """One form post by this client (False: over budget)."""
        if device is not None:
            return self._all_hit(self._device, "device", device.id)
        return self._all_hit(self._client, "address", address)

    def _account_ids(self, login_id: str, device: Device | None) -> tuple[str, str]:
        acct = self.account(login_id)
        familiar = device is not None and device.knows(acct)
        return acct, (f"device:{device.id}" if familiar and device else "unfamiliar")

    def account_wait(self, login_id: str, device: Device | None) -> int:
        """Seconds until this client may try this login ID again (0: now)."""
        ids = self._account_ids(login_id, device)
        wait = 0
        for item in self._account:
            if not self._limiter.test(item, "account", *ids):
                reset, _remaining = self._limiter.get_window_stats(item, "account", *ids)
                wait = max(wait, int(reset - time.time()) + 1)
        return wait

    def account_attempt(self, login_id: str, device: Device | None) -> bool:
        """Count one attempt on this login ID *before* it is checked (False: over budget).
        Counting first is what bounds attempts sent at the same moment: each takes its
        place in the window atomically, and the ones past the budget are never checked."""
        return self._all_hit(self._account, "account", *self._account_ids(login_id, device))
