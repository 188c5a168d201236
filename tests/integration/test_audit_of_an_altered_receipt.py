"""The audit gives its verdict however the stream was altered (API.md: "chain intact or the
first bad version"; no request gets a 500). Found by a review pass: a receipt whose payload was
replaced by a list answered 500, one whose respondent became a number 422, before any verdict."""

import asyncpg
import httpx
import pytest

from api_support import app_client, complaint
from projection_support import tree_and_tokens

ALTERATIONS = {
    "payload a list": "'[]'::jsonb",
    "payload null": "'null'::jsonb",
    "respondent a number": "jsonb_set(data, '{respondent_institution}', '5')",
    "respondent another branch": "jsonb_set(data, '{respondent_institution}', '\"BR-B\"')",
}


async def altered_receipt(database_url: str, case_id: str, new_data_sql: str) -> None:
    """The receipt's payload changed behind the store's back (its trigger disabled, as only the
    database's owner can)."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete"
            )
            await connection.execute(
                f"UPDATE events SET data = {new_data_sql} WHERE stream_id = $1 AND version = 1",
                case_id,
            )
            await connection.execute(
                "ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete"
            )
    finally:
        await connection.close()


@pytest.mark.parametrize("alteration", ALTERATIONS.values(), ids=ALTERATIONS)
async def test_the_audit_of_an_altered_receipt_names_version_1(
    database_url: str, alteration: str
) -> None:
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "regulator": ("reg-1", "regulator", None)},
    )
    async with app_client(database_url) as client:
        staff = {"Authorization": f"Bearer {tokens['staff']}"}
        created = await client.post("/v1/complaints", json=complaint(), headers=staff)
        case_id = created.json()["id"]
        await altered_receipt(database_url, case_id, alteration)

        regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
        audit: httpx.Response = await client.get(
            f"/v1/complaints/{case_id}/audit", headers=regulator
        )
    assert audit.status_code == 200, audit.text
    chain = audit.json()["chain"]
    assert (chain["intact"], chain["first_bad_version"]) == (False, 1)
