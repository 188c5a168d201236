"""`keys rotate` while a server still holds the old master key (a host not restarted yet). Found
by a review pass: such a server answered 500 for every case whose key it had not cached, and went
on wrapping new receipts' keys under the old key after the rotation reported every key moved, so
those cases were lost with the old key file. Now it answers 503 `master_key_rotated` for both,
stores nothing, and `/readyz` says it needs the new key; a server on the new key serves all."""

import asyncpg
import httpx

from api_support import app_client, complaint, refused
from complaintcore.cli.keys import RewrapBar, rotate
from complaintcore.crypto.keys import FileKeyProvider, MasterKeyRetired, create_master_key_file
from complaintcore.crypto.suites import suite_named
from complaintcore.events.case_keys import CaseKeys, recorded_key_ids
from complaintcore.events.service_keys import BLIND_INDEX, service_key
from complaintcore.infra.settings import get_settings
from complaintcore.webhooks.signing import WEBHOOK_SECRETS
from projection_support import tree_and_tokens
from testsupport import session_master_key_file

SUITE = "aes-256-gcm"


async def received(client: httpx.AsyncClient, staff: dict[str, str]) -> str:
    response = await client.post("/v1/complaints", json=complaint(), headers=staff)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def rotate_to(pool: asyncpg.Pool, old: FileKeyProvider, new: FileKeyProvider) -> None:
    with RewrapBar() as progress:
        rotated = await rotate(pool, old, new, 500, progress)
    assert not rotated.left_behind


async def test_a_server_left_on_the_old_key_refuses_plainly_and_makes_no_key(
    database_url: str, pool: asyncpg.Pool, tmp_path
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    staff = {"Authorization": f"Bearer {tokens['staff']}"}
    old = FileKeyProvider(session_master_key_file())
    create_master_key_file(tmp_path / "new.key", SUITE)
    new = FileKeyProvider(tmp_path / "new.key")

    async with app_client(database_url) as other_host:
        unseen = await received(other_host, staff)
    async with app_client(database_url) as host:
        seen = await received(host, staff)
        # read once: its key is cached (a receipt caches none, its transaction might roll back)
        assert (await host.get(f"/v1/complaints/{seen}", headers=staff)).status_code == 200
        await rotate_to(pool, old, new)
        cases_before = await pool.fetchval("SELECT count(*) FROM events")

        assert (await host.get(f"/v1/complaints/{seen}", headers=staff)).status_code == 200
        problem = refused(
            await host.get(f"/v1/complaints/{unseen}", headers=staff), "master_key_rotated", 503
        )
        assert problem["detail"].startswith("This server's master key was rotated out")
        refusal = await host.post("/v1/complaints", json=complaint(), headers=staff)
        refused(refusal, "master_key_rotated", 503)
        assert refusal.headers["retry-after"]
        ready = await host.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["reason"] == (
        f"master key rotated to {new.key_id}: restart with the file of that key"
    )
    assert await pool.fetchval("SELECT count(*) FROM events") == cases_before
    assert await recorded_key_ids(pool) == {new.key_id}  # the rotation stays done

    settings = get_settings().model_copy(update={"master_key_file": tmp_path / "new.key"})
    async with app_client(database_url, settings) as restarted:
        assert (await restarted.get("/readyz")).status_code == 200
        for case_id in (seen, unseen):
            shown = await restarted.get(f"/v1/complaints/{case_id}", headers=staff)
            assert shown.status_code == 200, shown.text
        await received(restarted, staff)


async def test_the_database_refuses_a_case_key_under_a_retired_master_key(
    pool: asyncpg.Pool, tmp_path
) -> None:
    """Migration 0024, whoever inserts: one key or a batch (the bulk import's), after the
    service keys moved; a database with no service key yet takes any."""
    keys = {}
    for name in ("old", "new"):
        create_master_key_file(tmp_path / f"{name}.key", SUITE)
        keys[name] = CaseKeys(FileKeyProvider(tmp_path / f"{name}.key"), suite_named(SUITE))
    async with pool.acquire() as connection, connection.transaction():
        await keys["old"].store_new(connection, keys["old"].new_data_keys(["before"]))
    await rotate_to(pool, keys["old"].provider, keys["new"].provider)  # no service key yet
    async with pool.acquire() as connection, connection.transaction():
        await keys["old"].create(connection, "no-service-key-yet")
    await rotate_to(pool, keys["old"].provider, keys["new"].provider)
    await pool.execute(
        "INSERT INTO service_keys (purpose, suite, key_id, wrapped) VALUES ('x', $1, $2, '\\x00')",
        SUITE,
        keys["new"].provider.key_id,
    )

    for refused_write in (
        lambda connection: keys["old"].create(connection, "one"),
        lambda connection: keys["old"].store_new(connection, keys["old"].new_data_keys(["a", "b"])),
    ):
        async with pool.acquire() as connection:
            try:
                async with connection.transaction():
                    await refused_write(connection)
            except MasterKeyRetired as error:
                assert str(error).startswith(
                    f"case_keys wrapped under master key {keys['old'].provider.key_id}, but the "
                    f"current one is {keys['new'].provider.key_id}: "
                )
            else:
                raise AssertionError("a key under the retired master key was stored")
    async with pool.acquire() as connection, connection.transaction():
        await keys["new"].create(connection, "one")
    stored = await pool.fetch("SELECT case_id, key_id FROM case_keys ORDER BY case_id")
    assert {row["key_id"] for row in stored} == {keys["new"].provider.key_id}
    assert [row["case_id"] for row in stored] == ["before", "no-service-key-yet", "one"]


async def test_a_service_key_made_under_a_retired_master_key_is_refused(
    pool: asyncpg.Pool, tmp_path
) -> None:
    """Found by the review of the fix above: the webhook secrets' key is made when first
    needed, and a server on the old key made it under that key after a rotation, leaving the
    service keys under two ids, after which every server's receipts were refused."""
    providers = {}
    for name in ("old", "new"):
        create_master_key_file(tmp_path / f"{name}.key", SUITE)
        providers[name] = FileKeyProvider(tmp_path / f"{name}.key")
    async with pool.acquire() as connection:
        await service_key(connection, providers["old"], BLIND_INDEX, SUITE)
    await rotate_to(pool, providers["old"], providers["new"])

    async with pool.acquire() as connection:
        try:
            await service_key(connection, providers["old"], WEBHOOK_SECRETS, SUITE)
        except MasterKeyRetired as error:
            assert str(error).startswith("service_keys wrapped under master key ")
        else:
            raise AssertionError("a service key under the retired master key was stored")
        await service_key(connection, providers["new"], WEBHOOK_SECRETS, SUITE)
    assert await recorded_key_ids(pool) == {providers["new"].key_id}
    assert await pool.fetchval("SELECT count(*) FROM service_keys") == 2
