"""The case key table on real PostgreSQL: each case's data key created wrapped, read back (cached
or not), destroyed for erasure, and re-wrapped under a new master key without touching an event."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command

from complaintcore.crypto.key_cache import DataKeyCache
from complaintcore.crypto.keys import (
    FileKeyProvider,
    MasterKeyRejected,
    create_master_key_file,
    wrapped_key_id,
)
from complaintcore.crypto.suites import SUITE_NAMES, CiphertextRejected, suite_named
from complaintcore.events.case_keys import CaseKeyExists, CaseKeys
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.migrations import alembic_config, upgrade_to_head
from store_support import event, new_stream

pytestmark = pytest.mark.parametrize("suite_name", SUITE_NAMES)

MasterKeys = Callable[[str], FileKeyProvider]

EVENTS_CHECKSUM = """
SELECT count(*) AS rows,
       md5(string_agg(e::text || ' xmin ' || e.xmin::text, '|' ORDER BY e.position)) AS checksum
FROM events AS e
"""


@pytest.fixture
def master_keys(tmp_path: Path, suite_name: str) -> MasterKeys:
    """A new master key file of the suite under test, by name, as a provider."""

    def master_key(name: str) -> FileKeyProvider:
        path = tmp_path / f"{name}.key"
        create_master_key_file(path, suite_name)
        return FileKeyProvider(path)

    return master_key


class CountingProvider:
    """A provider that counts its unwraps, to tell a cache hit from a round trip to the key."""

    def __init__(self, provider: FileKeyProvider) -> None:
        self._provider = provider
        self.unwraps = 0

    @property
    def key_id(self) -> str:
        return self._provider.key_id

    def wrap(self, data_key: bytes) -> bytes:
        return self._provider.wrap(data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        self.unwraps += 1
        return self._provider.unwrap(wrapped)


class CountingConnection:
    """A connection that counts the statements sent through it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.statements = 0

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        self.statements += 1
        return await self._connection.fetch(*args)

    async def fetchval(self, *args: Any) -> Any:
        self.statements += 1
        return await self._connection.fetchval(*args)


async def create_keys(pool: asyncpg.Pool, keys: CaseKeys, count: int) -> dict[str, bytes]:
    async with pool.acquire() as connection, connection.transaction():
        return {
            case_id: await keys.create(connection, case_id)
            for case_id in (f"case-{n:03d}" for n in range(count))
        }


async def key_ids_by_case(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT case_id, key_id FROM case_keys")
    return {row["case_id"]: row["key_id"] for row in rows}


async def rewrapped_at_by_case(pool: asyncpg.Pool) -> dict[str, Any]:
    rows = await pool.fetch("SELECT case_id, rewrapped_at FROM case_keys")
    return {row["case_id"]: row["rewrapped_at"] for row in rows}


async def test_the_migration_makes_a_deletable_table_and_its_downgrade_drops_it(
    pool: asyncpg.Pool, database_url: str, suite_name: str
) -> None:
    assert await pool.fetchval("SELECT to_regclass('case_keys') IS NOT NULL")
    triggers = await pool.fetchval(
        "SELECT array_agg(tgname::text) FROM pg_trigger WHERE tgrelid = 'case_keys'::regclass"
    )
    # erasure deletes rows: no append-only trigger on case_keys, only migration 0024's check of
    # the master key new rows are wrapped under
    assert triggers == ["case_keys_under_the_current_master_key"]
    await pool.execute(
        "INSERT INTO case_keys (case_id, suite, key_id, wrapped) VALUES ('c', $1, 'k', '\\x01')",
        suite_name,
    )
    assert await pool.fetchval(
        "SELECT created_at IS NOT NULL AND rewrapped_at IS NULL FROM case_keys"
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO case_keys (case_id, suite, key_id, wrapped) VALUES ('d', 'des', 'k', '')"
        )
    assert await pool.execute("DELETE FROM case_keys WHERE case_id = 'c'") == "DELETE 1"

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0008")
    assert await pool.fetchval("SELECT to_regclass('case_keys') IS NULL")
    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await pool.fetchval("SELECT to_regclass('case_keys_key_id') IS NOT NULL")


async def test_a_created_key_reads_back_the_same_cached_and_from_a_fresh_instance(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    provider = master_keys("master")
    keys = CaseKeys(provider, suite, DataKeyCache())
    async with pool.acquire() as connection:
        async with connection.transaction():
            created = await keys.create(connection, "case-1")
        assert len(created) == suite.key_bytes
        assert await keys.key_for(connection, "case-1") == created
        assert await CaseKeys(provider, suite, None).key_for(connection, "case-1") == created
        assert await keys.key_for(connection, "case-never") is None

    row = await pool.fetchrow("SELECT suite, key_id, wrapped FROM case_keys")
    assert (row["suite"], row["key_id"]) == (suite_name, provider.key_id)
    assert wrapped_key_id(row["wrapped"]) == provider.key_id
    assert created not in row["wrapped"], "only the wrapped key is stored"


async def test_a_key_is_unwrapped_once_then_served_from_the_cache(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    provider = CountingProvider(master_keys("master"))
    keys = CaseKeys(provider, suite_named(suite_name), DataKeyCache())
    created = await create_keys(pool, keys, 1)
    async with pool.acquire() as connection:
        for _ in range(3):
            assert await keys.key_for(connection, "case-000") == created["case-000"]
    assert provider.unwraps == 1


async def test_a_second_key_for_a_case_is_refused_and_the_first_stays(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    keys = CaseKeys(master_keys("master"), suite_named(suite_name), None)
    first = await create_keys(pool, keys, 1)
    async with pool.acquire() as connection, connection.transaction():
        with pytest.raises(CaseKeyExists):
            await keys.create(connection, "case-000")
        # refused without a unique violation: the caller's transaction goes on
        assert await keys.key_for(connection, "case-000") == first["case-000"]
    assert await pool.fetchval("SELECT count(*) FROM case_keys") == 1


async def test_create_and_destroy_refuse_to_run_outside_a_transaction(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    keys = CaseKeys(master_keys("master"), suite_named(suite_name), None)
    async with pool.acquire() as connection:
        with pytest.raises(ValueError, match="transaction"):
            await keys.create(connection, "case-1")
        with pytest.raises(ValueError, match="transaction"):
            await keys.destroy(connection, "case-1")
    assert await pool.fetchval("SELECT count(*) FROM case_keys") == 0


async def test_a_rolled_back_create_leaves_no_key_even_if_it_was_read(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    keys = CaseKeys(master_keys("master"), suite_named(suite_name), DataKeyCache())
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        lost = await keys.create(connection, "case-1")
        assert await keys.key_for(connection, "case-1") == lost
        await transaction.rollback()
        async with connection.transaction():
            again = await keys.create(connection, "case-1")
        assert again != lost
        assert await keys.key_for(connection, "case-1") == again


async def test_a_destroyed_key_is_gone_even_where_it_was_cached(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    keys = CaseKeys(master_keys("master"), suite_named(suite_name), DataKeyCache())
    created = await create_keys(pool, keys, 2)
    async with pool.acquire() as connection:
        assert await keys.key_for(connection, "case-000") == created["case-000"]  # now cached
        async with connection.transaction():
            assert await keys.destroy(connection, "case-000") is True
            assert await keys.key_for(connection, "case-000") is None
        async with connection.transaction():
            assert await keys.destroy(connection, "case-000") is False
    async with pool.acquire() as other:
        assert await keys.key_for(other, "case-000") is None
        assert await keys.keys_for(other, ["case-000", "case-001"]) == {
            "case-001": created["case-001"]
        }
    assert set(await key_ids_by_case(pool)) == {"case-001"}


async def test_a_key_destroyed_by_another_process_is_not_served_from_this_ones_cache(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    master = master_keys("master")
    here = CaseKeys(master, suite_named(suite_name), DataKeyCache())
    elsewhere = CaseKeys(master, suite_named(suite_name), DataKeyCache())
    await create_keys(pool, here, 1)
    async with pool.acquire() as connection:
        assert await here.key_for(connection, "case-000") is not None  # now cached here
        async with connection.transaction():
            assert await elsewhere.destroy(connection, "case-000") is True
        # the caller read the row (as a command does in its first round trip): it is the truth
        assert await here.key_for(connection, "case-000", None) is None
        counting = CountingConnection(connection)
        assert await here.key_for(counting, "case-000") is None
        assert counting.statements == 1  # forgotten: read again, not served from the cache
    assert here.erased_cipher("case-000", suite_name).erased


async def test_keys_for_reads_many_cases_in_one_round_trip(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    keys = CaseKeys(master_keys("master"), suite_named(suite_name), DataKeyCache())
    created = await create_keys(pool, keys, 30)
    wanted = [*created, "case-never", "case-000"]
    async with pool.acquire() as connection:
        counting = CountingConnection(connection)
        assert await keys.keys_for(counting, wanted) == created  # type: ignore[arg-type]
        assert counting.statements == 1
        assert await keys.keys_for(counting, list(created)[:5]) == dict(list(created.items())[:5])
        assert counting.statements == 1, "all cached: no round trip"
        fresh = CaseKeys(keys.provider, keys.suite, None)
        assert await fresh.keys_for(counting, wanted) == created  # type: ignore[arg-type]
        assert counting.statements == 2
        assert await keys.keys_for(counting, []) == {}


async def test_another_master_key_cannot_unwrap_and_an_altered_row_is_rejected(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    right = CaseKeys(master_keys("master"), suite, None)
    await create_keys(pool, right, 2)
    wrong = CaseKeys(master_keys("another"), suite, DataKeyCache())
    async with pool.acquire() as connection:
        with pytest.raises(MasterKeyRejected):
            await wrong.key_for(connection, "case-000")
        with pytest.raises(MasterKeyRejected):
            await wrong.keys_for(connection, ["case-000", "case-001"])

    # the last byte of case-001's wrapped key (in its tag) flipped
    await pool.execute(
        "UPDATE case_keys SET wrapped = set_byte(wrapped, length(wrapped) - 1,"
        " get_byte(wrapped, length(wrapped) - 1) # 1) WHERE case_id = 'case-001'"
    )
    async with pool.acquire() as connection:
        assert await right.key_for(connection, "case-000") is not None
        with pytest.raises(CiphertextRejected):
            await right.key_for(connection, "case-001")


async def test_recorded_key_ids_names_every_master_key_in_use(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    old, new = master_keys("old"), master_keys("new")
    keys = CaseKeys(old, suite, None)
    async with pool.acquire() as connection:
        assert await keys.recorded_key_ids(connection) == set()
    await create_keys(pool, keys, 3)
    async with pool.acquire() as connection, connection.transaction():
        await CaseKeys(new, suite, None).create(connection, "case-new")
        assert await keys.recorded_key_ids(connection) == {old.key_id, new.key_id}


async def test_rotation_moves_every_key_to_the_new_master_key_and_leaves_events_identical(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    old, new = master_keys("old"), master_keys("new")
    keys = CaseKeys(old, suite, DataKeyCache())
    created = await create_keys(pool, keys, 23)
    store = PostgresEventStore(pool)
    for n in range(4):
        await store.append(new_stream("case"), [event(n), event(n + 1)], expected_version=0)
    events_before = await pool.fetchrow(EVENTS_CHECKSUM)
    assert events_before["rows"] == 8

    reported: list[tuple[int, int]] = []
    rewrapped = await keys.rewrap_all(
        pool, new, batch=5, progress=lambda done, total: reported.append((done, total))
    )

    assert rewrapped == 23
    assert reported == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    assert set((await key_ids_by_case(pool)).values()) == {new.key_id}
    assert all(await rewrapped_at_by_case(pool))
    assert await pool.fetchrow(EVENTS_CHECKSUM) == events_before
    async with pool.acquire() as connection:
        assert await CaseKeys(new, suite, None).keys_for(connection, created) == created
        assert await keys.recorded_key_ids(connection) == {new.key_id}
        with pytest.raises(MasterKeyRejected):
            await CaseKeys(old, suite, None).key_for(connection, "case-000")
    assert await keys.rewrap_all(pool, new, batch=5) == 0, "nothing left to do"


class Interrupted(Exception):
    pass


def interrupt_after_first_batch(done: int, total: int) -> None:
    raise Interrupted(f"{done} of {total}")


async def test_an_interrupted_rotation_resumes_and_rewraps_no_row_twice(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    old, new = master_keys("old"), master_keys("new")
    keys = CaseKeys(old, suite, None)
    created = await create_keys(pool, keys, 12)
    await PostgresEventStore(pool).append(new_stream("case"), [event(1)], expected_version=0)
    events_before = await pool.fetchrow(EVENTS_CHECKSUM)

    with pytest.raises(Interrupted, match="4 of 12"):
        await keys.rewrap_all(pool, new, batch=4, progress=interrupt_after_first_batch)
    after_interruption = await rewrapped_at_by_case(pool)
    first_batch = {case_id for case_id, at in after_interruption.items() if at is not None}
    assert first_batch == {f"case-{n:03d}" for n in range(4)}, "the first batch is committed"

    assert await keys.rewrap_all(pool, new, batch=4) == 8
    after_resumption = await rewrapped_at_by_case(pool)
    assert {case: after_resumption[case] for case in first_batch} == {
        case: after_interruption[case] for case in first_batch
    }, "the first batch is not re-wrapped again"
    assert set((await key_ids_by_case(pool)).values()) == {new.key_id}
    assert await pool.fetchrow(EVENTS_CHECKSUM) == events_before
    async with pool.acquire() as connection:
        assert await CaseKeys(new, suite, None).keys_for(connection, created) == created


async def test_two_rotations_at_once_rewrap_each_row_once(
    pool: asyncpg.Pool, master_keys: MasterKeys, suite_name: str
) -> None:
    suite = suite_named(suite_name)
    old, new = master_keys("old"), master_keys("new")
    created = await create_keys(pool, CaseKeys(old, suite, None), 40)

    counts = await asyncio.gather(
        CaseKeys(old, suite, None).rewrap_all(pool, new, batch=3),
        CaseKeys(old, suite, None).rewrap_all(pool, new, batch=7),
    )

    assert sum(counts) == 40
    assert set((await key_ids_by_case(pool)).values()) == {new.key_id}
    async with pool.acquire() as connection:
        assert await CaseKeys(new, suite, None).keys_for(connection, created) == created
