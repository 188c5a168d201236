"""Subscription secrets and the signature of a delivery.

**Storage.** A secret is shown once, when its subscription is made, and stored only sealed:
the deployment suite's AEAD (AES-256-GCM or SM4-GCM) under a key derived (HKDF) from the service
key `webhook-secrets` (table `service_keys`: the service-key machinery, not per-case keys; made
on first use and wrapped under the master key by `events.service_keys.service_key`, like the
blind index's key), bound to the subscription's id as associated data. A reader of the
database (a dump, a replica, a leaked backup) holds the sealed secret and the wrapped key,
neither of which signs anything without the master key; a sealed secret copied onto another
subscription does not open. `keys rotate` re-wraps the service key with the case keys, so the
sealed secrets stay valid. The secret never reaches a log: it is held as `Secret`, whose repr
hides it.

**Signature** (API.md): `Complaintcore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>`, the secret's UTF-8 bytes as the HMAC key (stdlib `hmac`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets as stdlib_secrets
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from complaintcore.crypto.keys import KeyProvider
from complaintcore.crypto.suites import BoundCipher, suite_named
from complaintcore.events.service_keys import service_key

__all__ = [
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "WEBHOOK_SECRETS",
    "Secret",
    "SecretBox",
    "SecretKeyring",
    "SecretSource",
    "load_secret_box",
    "new_secret",
    "sign",
    "signature_header",
]

WEBHOOK_SECRETS = "webhook-secrets"  # the purpose of the service key in `service_keys`
SIGNATURE_HEADER = "Complaintcore-Signature"
SECRET_PREFIX = "whsec_"
_ASSOCIATED_DATA_LABEL = b"complaintcore webhook secret v1\x00"


@dataclass(frozen=True)
class Secret:
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret([hidden])"


def new_secret() -> Secret:
    """256 random bits, URL-safe text with a recognisable prefix."""
    return Secret(SECRET_PREFIX + stdlib_secrets.token_urlsafe(32))


class SecretBox:
    """Seals and opens subscription secrets under the `webhook-secrets` service key."""

    def __init__(self, cipher: BoundCipher) -> None:
        self._cipher = cipher

    def __repr__(self) -> str:
        return "SecretBox([key hidden])"

    def seal(self, subscription_id: str, secret: Secret) -> bytes:
        return self._cipher.encrypt(secret.value.encode(), _associated(subscription_id))

    def open(self, subscription_id: str, sealed: bytes) -> Secret:
        return Secret(self._cipher.decrypt(bytes(sealed), _associated(subscription_id)).decode())

    async def box(self) -> SecretBox:
        return self


class SecretSource(Protocol):
    """Where the store and the dispatcher get the box: a `SecretKeyring` (loaded when first
    needed) or a `SecretBox` itself."""

    async def box(self) -> SecretBox: ...


async def load_secret_box(pool: asyncpg.Pool, provider: KeyProvider, suite_name: str) -> SecretBox:
    """The box of the `webhook-secrets` service key (made on first use), on a connection outside
    any transaction: a key made in a transaction that rolls back would be used but not stored.
    The service key is 32 random bytes (as every service key); the AEAD key is derived from it
    with HKDF under the stored suite's hash, at the suite's key length (16 bytes for SM4)."""
    async with pool.acquire() as connection:
        suite_of_key, key = await service_key(connection, provider, WEBHOOK_SECRETS, suite_name)
    suite = suite_named(suite_of_key)
    derived = HKDF(
        algorithm=suite.hash_algorithm(),
        length=suite.key_bytes,
        salt=None,
        info=b"complaintcore webhook secrets v1",
    ).derive(key)
    return SecretBox(suite.bound(derived))


class SecretKeyring:
    """The secret box, loaded when first needed (a subscription made, a delivery signed): a
    deployment without webhooks makes no `webhook-secrets` key."""

    def __init__(self, pool: asyncpg.Pool, provider: KeyProvider, suite_name: str) -> None:
        self._pool = pool
        self._provider = provider
        self._suite_name = suite_name
        self._box: SecretBox | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "SecretKeyring([keys hidden])"

    async def box(self) -> SecretBox:
        if self._box is None:
            async with self._lock:
                if self._box is None:
                    self._box = await load_secret_box(self._pool, self._provider, self._suite_name)
        return self._box


def sign(secret: Secret, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<t>.<body>"` under the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.value.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: Secret, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def _associated(subscription_id: str) -> bytes:
    return _ASSOCIATED_DATA_LABEL + subscription_id.encode()
