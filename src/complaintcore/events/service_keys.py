"""The service's own keys beside the cases' (table `service_keys`, migration 0011): the blind
index's HMAC key and the request fingerprints' (`application.idempotency`).

Why stored and not derived from the master key: an index derived from the master key would change
with every rotation, and every case's index would have to be recomputed from its decrypted
identity number. Kept wrapped under the master key like a data key, it survives a rotation
(`rewrap_service_keys`, which `keys rotate` runs with the case keys), and the indexes stay valid.

The first process that needs the key makes it (`service_key`): INSERT ... ON CONFLICT DO NOTHING,
then the stored row is read back, so processes racing on a new database all end with the one key
that won. The key is never logged; the wrapped row is the only key material stored.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg

from complaintcore.crypto.keys import KeyProvider, rewrap
from complaintcore.events.case_keys import retired_master_key_named

__all__ = ["BLIND_INDEX", "REQUEST_FINGERPRINT", "rewrap_service_keys", "service_key"]

BLIND_INDEX = "blind-index"
REQUEST_FINGERPRINT = "request-fingerprint"
_KEY_BYTES = 32

_INSERT = """
INSERT INTO service_keys (purpose, suite, key_id, wrapped) VALUES ($1, $2, $3, $4)
ON CONFLICT (purpose) DO NOTHING
"""
_SELECT = "SELECT suite, wrapped FROM service_keys WHERE purpose = $1"
_LOCK_NOT_UNDER = (
    "SELECT purpose, wrapped FROM service_keys WHERE key_id <> $1 ORDER BY purpose FOR UPDATE"
)
_STORE = (
    "UPDATE service_keys SET key_id = $2, wrapped = $3, rewrapped_at = now() WHERE purpose = $1"
)


async def service_key(
    connection: asyncpg.Connection, provider: KeyProvider, purpose: str, suite_name: str
) -> tuple[str, bytes]:
    """The service's key for `purpose`, unwrapped by `provider`, with the suite it was made for
    (made, wrapped and stored with `suite_name` if there is none yet). The stored suite, not the
    setting, is the one to use: an index keeps its hash when the deployment's suite changes."""
    row = await connection.fetchrow(_SELECT, purpose)
    if row is None:
        made = await asyncio.to_thread(provider.wrap, os.urandom(_KEY_BYTES))
        with retired_master_key_named():
            await connection.execute(_INSERT, purpose, suite_name, provider.key_id, made)
        row = await connection.fetchrow(_SELECT, purpose)
    return row["suite"], await asyncio.to_thread(provider.unwrap, row["wrapped"])


async def rewrap_service_keys(
    pool: asyncpg.Pool, old_provider: KeyProvider, new_provider: KeyProvider
) -> int:
    """Re-wrap every service key not under `new_provider`'s key, in one transaction (there are a
    few); how many. Run again, it finds none: a rotation interrupted here resumes."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(_LOCK_NOT_UNDER, new_provider.key_id)
        for row in rows:
            rewrapped = await asyncio.to_thread(rewrap, old_provider, new_provider, row["wrapped"])
            await connection.execute(_STORE, row["purpose"], new_provider.key_id, rewrapped)
    return len(rows)
