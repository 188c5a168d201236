"""Where each case's data key is kept: the `case_keys` table (migration 0009), beside the events.

Why beside the events and not in them: `events` is append-only and hash-chained, so anything
written there stays for good; a case's personal fields are erased by destroying its data key
(crypto-shredding, DOMAIN.md "Personal data"), so the key must live where a row can be deleted.
The table holds only wrapped keys (`crypto.keys`): the master key never reaches the database.

Why every write takes the caller's connection, in its transaction: a key is created in the
transaction that appends the case's receipt, and destroyed in the one that appends
`PersonalDataErased`, so there is never a key without its event or the reverse (issue 13). Both
refuse a connection outside a transaction rather than commit half of that on their own.

**Reading.** `key_for` and `keys_for` unwrap through the provider (a KMS round trip, for a KMS
provider) and keep the result in the process's `DataKeyCache`. A row that is not there reads as
None: the case was erased or never encrypted (the stream's `PersonalDataErased` event tells which).
A row that does not unwrap raises, and is never reported as None: under another master key what
the provider raises (`MasterKeyRejected`: a service with the wrong master key must fail, not
show every case as erased); an altered row `CaseKeyUnusable`, naming the case.

**Caching with care.** `create` caches nothing and `destroy` forgets: a created key belongs to a
transaction that may still roll back, and an erased one must go at once from the erasing process
(other processes drop it within the cache's age bound; the event, not the cache, is the authority
on erasure, see `crypto.key_cache`).

**Provider calls** are synchronous (`crypto.keys.KeyProvider`) and run through
`asyncio.to_thread`, one call per batch of keys, so a remote KMS never blocks the event loop; a
provider that holds its key in process (`unwraps_in_process`, the key file) is called directly,
a thread hop costing more than the few microseconds of its work.

**Rotation** (`rewrap_all`): the data keys stay as they are, only their wrapping changes, so not
one event is touched. Rows are re-wrapped in batches, each batch its own transaction, walking each
old key id's rows in case order through the (key_id, case_id) index; a run interrupted anywhere
leaves whole batches done, and the next run picks up exactly the rows still under an old key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg

from complaintcore.crypto.key_cache import DataKeyCache
from complaintcore.crypto.keys import KeyProvider, MasterKeyRejected, MasterKeyRetired, rewrap
from complaintcore.crypto.suites import CipherSuite, CiphertextRejected, UnknownSuite, suite_named
from complaintcore.events.stream_cipher import CaseKeyUnusable, StreamCipher

__all__ = [
    "RETIRED_MASTER_KEY",
    "UNREAD",
    "CaseKeyExists",
    "CaseKeys",
    "RewrapProgress",
    "retired_master_key_named",
]

T = TypeVar("T")
R = TypeVar("R")

RETIRED_MASTER_KEY = "CCK01"
"""The SQLSTATE of migration 0024's refusal: a new case or service key wrapped under another master
key than the one the service keys are under (a process still on the key a rotation moved away
from)."""

UNREAD: Any = object()
"""A case's wrapped key not read yet (None is a row that is not there)."""

# Called after each re-wrapped batch commits: (rows re-wrapped so far by this run, rows to
# re-wrap as counted when the run began, or the former when cases were added meanwhile).
RewrapProgress = Callable[[int, int], object]

_INSERT = """
INSERT INTO case_keys (case_id, suite, key_id, wrapped) VALUES ($1, $2, $3, $4)
ON CONFLICT (case_id) DO NOTHING
RETURNING case_id
"""

# Many at once (the bulk import's batch): the count of rows inserted tells whether any existed.
_INSERT_MANY = """
INSERT INTO case_keys (case_id, suite, key_id, wrapped)
SELECT u.case_id, $2, $3, u.wrapped FROM unnest($1::text[], $4::bytea[]) AS u(case_id, wrapped)
ON CONFLICT (case_id) DO NOTHING
"""

_SELECT_ONE = "SELECT wrapped FROM case_keys WHERE case_id = $1"
_KEY_ID_OF = "SELECT key_id FROM case_keys WHERE case_id = $1"

_SELECT_MANY = "SELECT case_id, wrapped FROM case_keys WHERE case_id = ANY($1::text[])"

_DELETE = "DELETE FROM case_keys WHERE case_id = $1 RETURNING case_id"

# The distinct key ids by a loose index scan: one index probe per key id (there are a few), where
# SELECT DISTINCT would read every row of a table with one row per case.
_KEY_IDS = """
WITH RECURSIVE ids (key_id) AS (
    (SELECT key_id FROM case_keys ORDER BY key_id LIMIT 1)
    UNION ALL
    SELECT (SELECT k.key_id FROM case_keys AS k
            WHERE k.key_id > ids.key_id ORDER BY k.key_id LIMIT 1)
    FROM ids WHERE ids.key_id IS NOT NULL
)
SELECT key_id FROM ids WHERE key_id IS NOT NULL
"""

_COUNT_NOT_UNDER = "SELECT count(*) FROM case_keys WHERE key_id <> $1"

# FOR UPDATE: a concurrent rotation waits here, then (READ COMMITTED re-checks a locked row)
# drops the rows the first one moved to the new key, so no row is re-wrapped twice; a row erased
# meanwhile drops out the same way.
_LOCK_BATCH = """
SELECT case_id, wrapped FROM case_keys
WHERE key_id = $1 AND case_id > $2
ORDER BY key_id, case_id
LIMIT $3
FOR UPDATE
"""

_STORE_BATCH = """
UPDATE case_keys AS k SET key_id = $1, wrapped = u.wrapped, rewrapped_at = now()
FROM unnest($2::text[], $3::bytea[]) AS u(case_id, wrapped)
WHERE k.case_id = u.case_id
"""


class CaseKeyExists(Exception):
    """`create` refused: the case has a data key already. A second key would leave every field
    sealed under the first unreadable."""


class CaseKeys:
    """The data keys of cases: created wrapped, read unwrapped (cached), destroyed, re-wrapped."""

    def __init__(
        self, provider: KeyProvider, suite: CipherSuite, cache: DataKeyCache | None = None
    ) -> None:
        """`provider` wraps new keys and unwraps stored ones; `suite` is the one new data keys
        are made for (and recorded with); `cache` None unwraps on every read."""
        self.provider = provider
        self.suite = suite
        self._cache = cache

    def __repr__(self) -> str:  # the provider's and cache's reprs show no key material
        return f"CaseKeys({self.provider!r}, {self.suite.name}, {self._cache!r})"

    async def create(self, connection: asyncpg.Connection, case_id: str) -> bytes:
        """A new data key for `case_id`, stored wrapped in the caller's transaction, returned
        unwrapped for sealing the receipt's fields. `CaseKeyExists` if the case has one.

        ON CONFLICT rather than a unique violation, so a refusal leaves the caller's transaction
        usable. Nothing is cached: the transaction may still roll back.
        """
        _require_transaction(connection, "create")
        if not case_id:
            raise ValueError("a case key needs a case id")
        data_key = self.suite.new_data_key()
        wrapped = await self._off_the_loop(self.provider.wrap, data_key)
        with retired_master_key_named():
            inserted = await connection.fetchval(
                _INSERT, case_id, self.suite.name, self.provider.key_id, wrapped
            )
        if inserted is None:
            raise CaseKeyExists(f"case {case_id} has a data key already")
        self._forget(case_id)  # a key cached from a rolled-back create must not outlive it
        return data_key

    async def key_for(
        self, connection: asyncpg.Connection, case_id: str, wrapped: Any = UNREAD
    ) -> bytes | None:
        """The case's data key, or None when it has no row (erased, or never encrypted).
        `wrapped`: its row's wrapped key (None: no row) when the caller read it already.
        A row found missing is the truth over a key cached before another process erased the
        case: the key is forgotten here too."""
        if wrapped is UNREAD:
            cached = self._cached(case_id)
            if cached is not None:
                return cached
            wrapped = await connection.fetchval(_SELECT_ONE, case_id)
        if wrapped is None:
            self._forget(case_id)
            return None
        cached = self._cached(case_id)
        if cached is not None:
            return cached
        try:
            data_key = await self._unwrap(wrapped)
        except CiphertextRejected:
            raise CaseKeyUnusable(case_id, "does not unwrap under the master key") from None
        except MasterKeyRejected:
            if await connection.fetchval(_KEY_ID_OF, case_id) == self.provider.key_id:
                raise _altered_header(case_id) from None
            raise  # wrapped under another master key: a rotation
        self._remember(case_id, data_key)
        return data_key

    async def _unwrap(self, wrapped: bytes) -> bytes:
        """In this thread for a provider holding its key in process (microseconds), else in a
        worker thread (a KMS round trip must not block the event loop)."""
        return await self._off_the_loop(self.provider.unwrap, wrapped)

    async def _off_the_loop(self, call: Callable[[T], R], argument: T) -> R:
        """`call(argument)`: a provider call, off the event loop unless it runs in process."""
        if getattr(self.provider, "unwraps_in_process", False):
            return call(argument)
        return await asyncio.to_thread(call, argument)

    async def keys_for(
        self, connection: asyncpg.Connection, case_ids: Iterable[str]
    ) -> dict[str, bytes]:
        """The data keys of those of `case_ids` that have one, read in one round trip (none
        when all are cached) and unwrapped in one thread call: for rebuilds and batch reads."""
        wanted = list(dict.fromkeys(case_ids))
        found = {case_id: key for case_id in wanted if (key := self._cached(case_id)) is not None}
        missing = [case_id for case_id in wanted if case_id not in found]
        if not missing:
            return found
        rows = await connection.fetch(_SELECT_MANY, missing)
        try:
            data_keys = await self._off_the_loop(self._unwrap_all, [row["wrapped"] for row in rows])
        except (CiphertextRejected, MasterKeyRejected):
            for row in rows:  # which one, and why: `key_for` names its case
                await self.key_for(connection, row["case_id"], row["wrapped"])
            raise
        for row, data_key in zip(rows, data_keys, strict=True):
            found[row["case_id"]] = data_key
            self._remember(row["case_id"], data_key)
        return found

    async def destroy(self, connection: asyncpg.Connection, case_id: str) -> bool:
        """Delete the case's key in the caller's transaction (the erasure itself) and forget it
        here; True if there was one. After commit no process can unwrap it again."""
        _require_transaction(connection, "destroy")
        self._forget(case_id)
        deleted = await connection.fetchval(_DELETE, case_id)
        # and again: a read on another connection may have cached it meanwhile (until the
        # commit others still see the row; what they cache then ages out of the cache)
        self._forget(case_id)
        return deleted is not None

    def new_data_keys(self, case_ids: Sequence[str]) -> dict[str, bytes]:
        """Fresh data keys for new cases, not stored yet (`store_new` stores them, in the
        transaction that writes the cases' events): for sealing a batch before it is written."""
        if len(set(case_ids)) != len(case_ids) or not all(case_ids):
            raise ValueError("each case gets one key: give each case id once, none empty")
        return {case_id: self.suite.new_data_key() for case_id in case_ids}

    async def store_new(self, connection: asyncpg.Connection, data_keys: dict[str, bytes]) -> None:
        """Store `new_data_keys`' keys wrapped, in one statement and one thread call, in the
        caller's transaction; `CaseKeyExists` if any of the cases has a key already."""
        _require_transaction(connection, "create")
        case_ids = list(data_keys)
        wrapped = await self._off_the_loop(self._wrap_all, list(data_keys.values()))
        with retired_master_key_named():
            status = await connection.execute(
                _INSERT_MANY, case_ids, self.suite.name, self.provider.key_id, wrapped
            )
        if int(status.rsplit(" ", 1)[-1]) != len(case_ids):
            raise CaseKeyExists("one of the cases has a data key already")
        for case_id in case_ids:
            self._forget(case_id)

    async def new_cipher(self, connection: asyncpg.Connection, case_id: str) -> StreamCipher:
        """The cipher of a case given its data key now (`create`, in the caller's transaction):
        at receipt, or at the first event sealed on a stream written before encryption."""
        return StreamCipher(case_id, self.suite, await self.create(connection, case_id))

    async def cipher_for(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        suite_name: str,
        wrapped: Any = UNREAD,
    ) -> StreamCipher:
        """The cipher of a case whose events are sealed under `suite_name` (without a key once
        the case's personal data is erased); `wrapped` as for `key_for`."""
        return _stream_cipher(case_id, suite_name, await self.key_for(connection, case_id, wrapped))

    def erased_cipher(self, case_id: str, suite_name: str) -> StreamCipher:
        """The cipher of a case whose stream records its erasure: without a key, whatever this
        process still has cached from before another process erased it (forgotten now)."""
        self._forget(case_id)
        return _stream_cipher(case_id, suite_name, None)

    def cached_cipher(self, case_id: str, suite_name: str) -> StreamCipher | None:
        """The case's cipher if its key is cached here (None: ask `cipher_for`)."""
        data_key = self._cached(case_id)
        return _stream_cipher(case_id, suite_name, data_key) if data_key else None

    async def ciphers_for(
        self, connection: asyncpg.Connection, suites: dict[str, str]
    ) -> dict[str, StreamCipher]:
        """The ciphers of many cases (`suites`: each case's suite name), keys read at once (the
        bench copies histories with them)."""
        keys = await self.keys_for(connection, suites)
        return {
            case_id: _stream_cipher(case_id, suite_name, keys.get(case_id))
            for case_id, suite_name in suites.items()
        }

    async def recorded_key_ids(self, connection: asyncpg.Connection) -> set[str]:
        return await recorded_key_ids(connection)

    async def rewrap_all(
        self,
        pool: asyncpg.Pool,
        new_provider: KeyProvider,
        batch: int = 500,
        progress: RewrapProgress | None = None,
    ) -> int:
        """Re-wrap every data key not under `new_provider`'s key (unwrapped by this instance's
        provider), `batch` rows a transaction; returns how many this run re-wrapped.

        Resumable: only rows whose key id is not the new one are read, so a run interrupted
        anywhere (`progress` is called after each commit, and may raise) is finished by running
        again. Passes repeat until one finds nothing, so keys created under the old master key
        while the run goes on are re-wrapped too. Never touches `events`.
        """
        if batch < 1:
            raise ValueError("a batch re-wraps at least one key")
        new_key_id = new_provider.key_id
        async with pool.acquire() as connection:
            total = await connection.fetchval(_COUNT_NOT_UNDER, new_key_id)
        done = 0
        while True:
            before = done
            async with pool.acquire() as connection:
                old_key_ids = await self.recorded_key_ids(connection) - {new_key_id}
            for old_key_id in sorted(old_key_ids):
                after = ""
                while True:
                    count, after = await self._rewrap_batch(
                        pool, new_provider, old_key_id, after, batch
                    )
                    if not count:
                        break
                    done += count
                    if progress is not None:
                        progress(done, max(total, done))
            if done == before and await self._none_left(pool, new_key_id):
                return done

    @staticmethod
    async def _none_left(pool: asyncpg.Pool, new_key_id: str) -> bool:
        """Whether no key is under another master key, once every transaction writing keys
        when asked has committed: a pass sees committed rows only, and a receipt in flight in a
        process still on the old key commits its key later (found by a review pass: the
        rotation reported done, and that key stayed under the old key). The share lock waits
        for those and holds new ones back while the ids are read (an index skip scan). Case
        keys only: the service's keys are the caller's to re-wrap, and one left under the old
        key is reported by it rather than passed over here for ever."""
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("LOCK TABLE case_keys IN SHARE MODE")
            key_ids = {row["key_id"] for row in await connection.fetch(_KEY_IDS)}
            return not (key_ids - {new_key_id})

    async def _rewrap_batch(
        self, pool: asyncpg.Pool, new_provider: KeyProvider, old_key_id: str, after: str, batch: int
    ) -> tuple[int, str]:
        """One batch in its own transaction: the next rows under `old_key_id` after case `after`,
        locked, re-wrapped, stored. Returns how many and the last case id (the next cursor)."""
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(_LOCK_BATCH, old_key_id, after, batch)
            if not rows:
                return 0, after
            case_ids = [row["case_id"] for row in rows]
            rewrapped = await asyncio.to_thread(
                _rewrap_all,
                self.provider,
                new_provider,
                [(row["case_id"], row["wrapped"]) for row in rows],
            )
            await connection.execute(_STORE_BATCH, new_provider.key_id, case_ids, rewrapped)
        return len(rows), case_ids[-1]

    def _wrap_all(self, data_keys: Sequence[bytes]) -> list[bytes]:
        return [self.provider.wrap(one) for one in data_keys]

    def _unwrap_all(self, wrapped: Sequence[bytes]) -> list[bytes]:
        return [self.provider.unwrap(one) for one in wrapped]

    def _cached(self, case_id: str) -> bytes | None:
        return self._cache.get(case_id) if self._cache is not None else None

    def _remember(self, case_id: str, data_key: bytes) -> None:
        if self._cache is not None:
            self._cache.put(case_id, data_key)

    def _forget(self, case_id: str) -> None:
        if self._cache is not None:
            self._cache.forget(case_id)


def _rewrap_all(
    old_provider: KeyProvider, new_provider: KeyProvider, rows: Sequence[tuple[str, bytes]]
) -> list[bytes]:
    """Each (case id, wrapped key) re-wrapped; `CaseKeyUnusable` names a case whose row does
    not unwrap (altered), which a rotation cannot pass over without leaving it behind."""
    rewrapped = []
    for case_id, wrapped in rows:
        try:
            rewrapped.append(rewrap(old_provider, new_provider, wrapped))
        except CiphertextRejected:
            raise CaseKeyUnusable(case_id, "does not unwrap under the master key") from None
        except MasterKeyRejected:
            # its row is one of the old key's (`_LOCK_BATCH`), its bytes name another key
            raise _altered_header(case_id) from None
    return rewrapped


def _altered_header(case_id: str) -> CaseKeyUnusable:
    """A key row whose column names this master key while its wrapped bytes name another: the
    row was altered (bit rot, a hand edit, a column restored apart from the other), not wrapped
    by a rotation, which changes both together (found by a review pass: answered as a rotation,
    503 `master_key_rotated`, the audit refused, the operator told to restart)."""
    return CaseKeyUnusable(case_id, "names another master key than its row records")


@contextmanager
def retired_master_key_named() -> Iterator[None]:
    """Migration 0024's refusal as `MasterKeyRetired`, which the API answers with 503."""
    try:
        yield
    except asyncpg.PostgresError as error:
        if error.sqlstate != RETIRED_MASTER_KEY:
            raise
        raise MasterKeyRetired(
            f"{error.message}: a `keys rotate` moved the keys on since this process started; "
            "restart it with the current master key file"
        ) from None


def _require_transaction(connection: asyncpg.Connection, operation: str) -> None:
    """A key created or destroyed outside a transaction would commit apart from its event."""
    if not connection.is_in_transaction():
        raise ValueError(
            f"{operation} runs in the caller's transaction, with the events it goes with"
        )


async def recorded_key_ids(connection: asyncpg.Connection) -> set[str]:
    """The ids of the master keys the stored data keys (and the service's keys) are wrapped
    under: start-up checks the master key file against them (it needs no key to read them)."""
    rows = await connection.fetch(f"{_KEY_IDS} UNION SELECT key_id FROM service_keys")
    return {row["key_id"] for row in rows}


def _stream_cipher(case_id: str, suite_name: str, data_key: bytes | None) -> StreamCipher:
    """The cipher of a stream that names `suite_name`; `UnknownSuite` for a name no suite has,
    or one whose keys the case's is not (a suite name altered behind the store's back: the
    chain verdict names its version)."""
    suite = suite_named(suite_name)
    if data_key is not None and len(data_key) != suite.key_bytes:
        raise UnknownSuite(f"the stream names {suite.name}, whose keys the case's key is not")
    return StreamCipher(case_id, suite, data_key)
