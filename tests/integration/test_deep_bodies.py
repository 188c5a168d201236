"""A document nested as deep as orjson reads it (1,024 levels) is refused as bad input, never a
500 or a crashed import. Found by a review pass: the walk looking for numbers to read as written
recursed, and a command body 400 levels deep was a 500, an import line so deep a traceback."""

import asyncpg
import httpx
import orjson

from api_support import TODAY, app_client, complaint
from complaintcore.application.bulk_import import (
    ActorBody,
    BulkImporter,
    load_reference_data,
    numbered_lines,
)
from complaintcore.events.store import PostgresEventStore
from complaintcore.reference.institutions import InstitutionDirectory
from projection_support import tree_and_tokens
from testsupport import session_case_keys

DEEP = b"[" * 400 + b"1" + b"]" * 400


async def test_a_command_body_400_levels_deep_is_a_422(database_url: str) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    headers = {"Authorization": f"Bearer {tokens['staff']}", "Content-Type": "application/json"}
    async with app_client(database_url) as client:
        created = await client.post("/v1/complaints", json=complaint(), headers=headers)
        case_id = created.json()["id"]
        answer: httpx.Response = await client.post(
            f"/v1/complaints/{case_id}/assign",
            content=b'{"handler_id": "staff-a2", "x": ' + DEEP + b"}",
            headers=headers,
        )
    assert answer.status_code == 422, answer.text


async def test_the_import_refuses_a_line_400_levels_deep_and_goes_on(
    pool: asyncpg.Pool,
) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    good = complaint() | {"external_id": "GOOD-1"}
    lines = [b'{"external_id": "DEEP-1", "x": ' + DEEP + b"}", orjson.dumps(good)]
    async with pool.acquire() as connection:
        reference = await load_reference_data(
            connection, TODAY, ActorBody(id="import", role="staff"), "deep-test"
        )
        importer = BulkImporter(
            connection, PostgresEventStore(pool), reference, session_case_keys(), 2
        )
        report = await importer.run(numbered_lines(lines))
    assert report.cases_imported == 1
    assert [refusal.line_number for refusal in report.refusals] == [1]
