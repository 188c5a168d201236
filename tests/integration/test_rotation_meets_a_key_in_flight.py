"""`keys rotate` run while a process still holding the old master key is storing a receipt: the
receipt's transaction has created the case's data key under the old key and not committed yet
when the rotation's passes find nothing more. Found by a review pass: the rotation reported every
key moved ("every data key is under NEW now", exit 0), and once the receipt committed its key
stayed under the old master key. The rotation now waits for such a transaction and re-wraps its
key."""

import asyncio
from pathlib import Path

import asyncpg

from complaintcore.cli.keys import RewrapBar, rotate
from complaintcore.crypto.keys import FileKeyProvider, create_master_key_file
from complaintcore.crypto.suites import suite_named
from complaintcore.events.case_keys import CaseKeys

SUITE = "aes-256-gcm"


def provider(tmp_path: Path, name: str) -> FileKeyProvider:
    path = tmp_path / f"{name}.key"
    create_master_key_file(path, SUITE)
    return FileKeyProvider(path)


async def test_a_key_created_in_flight_under_the_old_key_is_not_reported_done(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    old, new = provider(tmp_path, "old"), provider(tmp_path, "new")
    old_keys = CaseKeys(old, suite_named(SUITE))
    async with pool.acquire() as connection, connection.transaction():
        await old_keys.store_new(connection, old_keys.new_data_keys(["c-1", "c-2", "c-3"]))

    receipt = await pool.acquire()  # a serve process still on the old key, mid-receipt
    try:
        transaction = receipt.transaction()
        await transaction.start()
        await old_keys.create(receipt, "c-in-flight")

        with RewrapBar() as bar:
            rotation = asyncio.create_task(rotate(pool, old, new, 500, bar))
            await _waiting_for_a_lock_on_case_keys(pool)
            await transaction.commit()  # the receipt is acknowledged (2xx)
            rotated = await asyncio.wait_for(rotation, timeout=30)
    finally:
        await pool.release(receipt)

    still_old = await pool.fetch("SELECT case_id FROM case_keys WHERE key_id = $1", old.key_id)
    assert [row["case_id"] for row in still_old] == []
    assert rotated.left_behind == frozenset()
    assert rotated.case_keys == 4


async def _waiting_for_a_lock_on_case_keys(pool: asyncpg.Pool) -> None:
    for _ in range(300):  # 15 s at most
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE relation = 'case_keys'::regclass AND NOT granted"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the rotation never waited for the receipt's transaction")
