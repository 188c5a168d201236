"""Start-up's check of the master key against the database (`check_against_database`) midway
through `keys rotate`: the data keys are then under two key ids and no single file will do, so
the refusal names the unfinished rotation and says to run it again, whichever file it was given;
a database under one other key still gets the plain refusal naming both ids."""

import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from complaintcore.application.master_key import (
    check_against_database,
    database_key_ids,
    unfinished_rotation_target,
)
from complaintcore.crypto.keys import FileKeyProvider, MasterKeyRejected, create_master_key_file
from complaintcore.crypto.suites import suite_named
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.service_keys import BLIND_INDEX, rewrap_service_keys, service_key
from complaintcore.infra.embedded_db import with_database
from testsupport import admin_execute

SUITE = "aes-256-gcm"

MasterKeys = Callable[[str], FileKeyProvider]


@pytest.fixture
def master_keys(tmp_path: Path) -> MasterKeys:
    def master_key(name: str) -> FileKeyProvider:
        path = tmp_path / f"{name}.key"
        create_master_key_file(path, SUITE)
        return FileKeyProvider(path)

    return master_key


class Interrupted(Exception):
    pass


def stop_after_first_batch(done: int, total: int) -> None:
    raise Interrupted(f"{done} of {total}")


async def make_case_keys(
    pool: asyncpg.Pool, provider: FileKeyProvider, prefix: str, n: int
) -> None:
    keys = CaseKeys(provider, suite_named(SUITE))
    async with pool.acquire() as connection, connection.transaction():
        await keys.store_new(connection, keys.new_data_keys([f"{prefix}-{i:03}" for i in range(n)]))


async def make_service_key(pool: asyncpg.Pool, provider: FileKeyProvider) -> None:
    async with pool.acquire() as connection:
        await service_key(connection, provider, BLIND_INDEX, SUITE)


async def rotate_partly(pool: asyncpg.Pool, old: FileKeyProvider, new: FileKeyProvider) -> None:
    """As `keys rotate` killed after its first batch: the service key and 5 case keys moved."""
    await rewrap_service_keys(pool, old, new)
    with pytest.raises(Interrupted):
        await CaseKeys(old, suite_named(SUITE)).rewrap_all(
            pool, new, batch=5, progress=stop_after_first_batch
        )


async def refusal(pool: asyncpg.Pool, provider: FileKeyProvider) -> str:
    async with pool.acquire() as connection:
        with pytest.raises(MasterKeyRejected) as refused:
            await check_against_database(connection, provider)
    message = str(refused.value)
    assert "\n" not in message
    return message


async def accepted(pool: asyncpg.Pool, provider: FileKeyProvider) -> None:
    async with pool.acquire() as connection:
        await check_against_database(connection, provider)


async def test_a_half_done_rotation_is_named_whichever_file_starts(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    old, new, unrelated = master_keys("old"), master_keys("new"), master_keys("unrelated")
    await make_service_key(pool, old)
    await make_case_keys(pool, old, "case", 12)
    await rotate_partly(pool, old, new)

    for provider in (old, new, unrelated):
        message = await refusal(pool, provider)
        assert message.startswith(f"a rotation to key {new.key_id} is unfinished: ")
        assert "run `complaintcore keys rotate` again" in message
        assert f"COMPLAINTCORE_MASTER_KEY_FILE: the file of key {old.key_id}" in message
        assert f"--new-key-file: the file of key {new.key_id}" in message
        assert f"{provider.path} holds key {provider.key_id}" in message
        assert "start with the file that holds that key" not in message


async def test_a_rotation_stopped_right_after_the_service_keys_is_named_too(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    old, new = master_keys("old"), master_keys("new")
    await make_service_key(pool, old)
    await make_case_keys(pool, old, "case", 3)
    await rewrap_service_keys(pool, old, new)

    assert f"a rotation to key {new.key_id} is unfinished" in await refusal(pool, old)


async def test_a_finished_rotation_serves_the_new_key_and_refuses_the_old_plainly(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    old, new = master_keys("old"), master_keys("new")
    await make_service_key(pool, old)
    await make_case_keys(pool, old, "case", 7)
    await rotate_partly(pool, old, new)
    await CaseKeys(old, suite_named(SUITE)).rewrap_all(pool, new, batch=5)

    await accepted(pool, new)
    message = await refusal(pool, old)
    assert "unfinished" not in message
    assert f"holds key {old.key_id}, but the database's data keys are wrapped under" in message
    assert new.key_id in message
    async with pool.acquire() as connection:
        assert await unfinished_rotation_target(connection) is None


async def test_keys_made_under_the_old_key_after_a_rotation_ask_for_it_again(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    """A process still holding the old key made a case key after the rotation ended."""
    old, new = master_keys("old"), master_keys("new")
    await make_case_keys(pool, old, "case", 4)
    await CaseKeys(old, suite_named(SUITE)).rewrap_all(pool, new)
    await make_case_keys(pool, old, "late", 1)

    assert f"a rotation to key {new.key_id} is unfinished" in await refusal(pool, new)


async def test_the_latest_rotation_is_the_one_named(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    first, second, third = master_keys("first"), master_keys("second"), master_keys("third")
    await make_case_keys(pool, first, "case", 11)
    await CaseKeys(first, suite_named(SUITE)).rewrap_all(pool, second, batch=5)
    await rotate_partly(pool, second, third)

    message = await refusal(pool, second)
    assert message.startswith(f"a rotation to key {third.key_id} is unfinished: ")
    assert f"the file of key {second.key_id};" in message


async def test_another_key_without_a_rotation_gets_the_plain_refusal(
    pool: asyncpg.Pool, master_keys: MasterKeys
) -> None:
    ours, theirs = master_keys("ours"), master_keys("theirs")
    await make_case_keys(pool, theirs, "case", 2)

    await accepted(pool, theirs)
    message = await refusal(pool, ours)
    assert "rotation" not in message
    assert message == (
        f"master key file {ours.path} holds key {ours.key_id}, but the database's data keys are "
        f"wrapped under {theirs.key_id}: start with the file that holds that key"
    )


async def test_the_key_ids_a_missing_embedded_key_file_is_checked_against(
    pool: asyncpg.Pool, server_url: str, master_keys: MasterKeys
) -> None:
    """`database_key_ids`: none on a database not migrated yet (a first start), else the ids of
    the case keys and the service keys."""
    name = f"complaintcore_unmigrated_{uuid.uuid4().hex[:8]}"
    await admin_execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        connection = await asyncpg.connect(with_database(server_url, name))
        try:
            assert await database_key_ids(connection) == set()
        finally:
            await connection.close()
    finally:
        await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    cases, service = master_keys("cases"), master_keys("service")
    async with pool.acquire() as connection:
        assert await database_key_ids(connection) == set()
        await make_case_keys(pool, cases, "case", 1)
        await make_service_key(pool, service)
        assert await database_key_ids(connection) == {cases.key_id, service.key_id}
