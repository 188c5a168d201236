"""The audit gives its verdict however the stream was altered (API.md: "chain intact or the
first bad version"; no request gets a 500), over HTTP and from the command line alike. Found by
review passes: a receipt whose payload was replaced by a list answered 500, one whose
respondent became a number 422, before any verdict; the command line crashed on both; a last
event naming another suite, metadata that is no JSON object and a number beyond a double were
500s on the audit, `/events` and the feed."""

import argparse
import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from api_support import app_client, complaint, days_ago, decision
from chain_recipe import first_broken_version
from complaintcore.cli.audit import audit
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from complaintcore.infra.settings import get_settings
from projection_support import CaseDesk, erase_past_retention, tree_and_tokens
from store_support import behind_the_triggers_back

RECEIPT_ALTERATIONS = {
    "payload a list": "UPDATE events SET data = '[]'::jsonb WHERE stream_id = $1 AND version = 1",
    "payload null": "UPDATE events SET data = 'null'::jsonb WHERE stream_id = $1 AND version = 1",
    "respondent a number": "UPDATE events SET data = jsonb_set(data, '{respondent_institution}',"
    " '5') WHERE stream_id = $1 AND version = 1",
    "respondent another branch": "UPDATE events SET data = jsonb_set(data,"
    " '{respondent_institution}', '\"BR-B\"') WHERE stream_id = $1 AND version = 1",
    # a code stored as text that no channel has: the audit and its command line failed on the
    # document (a review pass)
    "channel unknown": "UPDATE events SET data = jsonb_set(data, '{channel}',"
    " '\"carrier_pigeon\"') WHERE stream_id = $1 AND version = 1",
}
# the last event of the case `decided_case` makes is its decision, version 3
LAST_EVENT_ALTERATIONS = {
    "suite the other one": "UPDATE events SET metadata = jsonb_set(metadata, '{cipher_suite}',"
    " CASE WHEN metadata->>'cipher_suite' = 'sm4-gcm' THEN '\"aes-256-gcm\"'"
    " ELSE '\"sm4-gcm\"' END::jsonb) WHERE stream_id = $1 AND version = 3",
    "suite unknown": "UPDATE events SET metadata = jsonb_set(metadata, '{cipher_suite}',"
    " '\"rot13\"') WHERE stream_id = $1 AND version = 3",
    "suite a number": "UPDATE events SET metadata = jsonb_set(metadata, '{cipher_suite}', '7')"
    " WHERE stream_id = $1 AND version = 3",
    "metadata a list": "UPDATE events SET metadata = '[]'::jsonb"
    " WHERE stream_id = $1 AND version = 3",
    "metadata a text": "UPDATE events SET metadata = '\"x\"'::jsonb"
    " WHERE stream_id = $1 AND version = 3",
    "metadata null": "UPDATE events SET metadata = 'null'::jsonb"
    " WHERE stream_id = $1 AND version = 3",
    "a number beyond a double": "UPDATE events SET data = data || '{\"x\": 1e400}'::jsonb"
    " WHERE stream_id = $1 AND version = 3",
}


@dataclass
class Desk:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    database_url: str

    def get(self, path: str, **params: Any) -> Any:
        regulator = {"Authorization": f"Bearer {self.tokens['regulator']}"}
        return self.client.get(path, headers=regulator, params=params)

    async def decided_case(self) -> str:
        staff = {"Authorization": f"Bearer {self.tokens['staff']}"}
        created = await self.client.post(
            "/v1/complaints", json=complaint(received_days_ago=3), headers=staff
        )
        case_id = created.json()["id"]
        for command, body in (
            ("assign", {"handler_id": "staff-a1"}),
            ("decide", decision(days_ago(1))),
        ):
            response = await self.client.post(
                f"/v1/complaints/{case_id}/{command}", json=body, headers=staff
            )
            assert response.status_code == 200, response.text
        return case_id

    async def verdicts(self, case_id: str) -> tuple[dict, int, dict | None]:
        """The route's audit, and the command line's exit code and document."""
        response = await self.get(f"/v1/complaints/{case_id}/audit")
        assert response.status_code == 200, response.text
        code, document = await asyncio.to_thread(_audit_from_the_command_line, self, case_id)
        return response.json(), code, document


def _audit_from_the_command_line(desk: Desk, case_id: str) -> tuple[int, dict | None]:
    settings = get_settings().model_copy(update={"database_url": desk.database_url})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = audit(argparse.Namespace(case_id=case_id, json=True), settings)
    lines = out.getvalue().splitlines()  # the document: from a line "{" to a line "}"
    if "{" not in lines:
        return code, None
    end = len(lines) - 1 - lines[::-1].index("}")
    return code, json.loads("\n".join(lines[lines.index("{") : end + 1]))


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    tokens = await tree_and_tokens(
        database_url,
        {
            "staff": ("staff-a1", "staff", "BR-A"),
            "supervisor": ("sup-a1", "supervisor", "BR-A"),
            "regulator": ("reg-1", "regulator", None),
        },
    )
    async with app_client(database_url) as client:
        yield Desk(client, tokens, database_url)


@pytest.mark.parametrize("alteration", RECEIPT_ALTERATIONS.values(), ids=RECEIPT_ALTERATIONS)
async def test_the_audit_of_an_altered_receipt_names_version_1(desk: Desk, alteration: str) -> None:
    case_id = await desk.decided_case()
    await behind_the_triggers_back(desk.database_url, alteration, case_id)

    audited, code, document = await desk.verdicts(case_id)

    assert (audited["chain"]["intact"], audited["chain"]["first_bad_version"]) == (False, 1)
    assert (code, document) == (2, audited)


@pytest.mark.parametrize("alteration", LAST_EVENT_ALTERATIONS.values(), ids=LAST_EVENT_ALTERATIONS)
async def test_an_altered_last_event_is_named_by_the_audit_the_events_and_the_feed(
    desk: Desk, alteration: str
) -> None:
    case_id = await desk.decided_case()
    await behind_the_triggers_back(desk.database_url, alteration, case_id)

    audited, code, document = await desk.verdicts(case_id)
    assert (audited["chain"]["intact"], audited["chain"]["first_bad_version"]) == (False, 3)
    assert (code, document) == (2, audited)
    events = await desk.get(f"/v1/complaints/{case_id}/events")
    assert events.status_code == 200, events.text
    assert first_broken_version(events.json()) == 3
    feed = await desk.get("/v1/events", after=0, limit=100)
    assert feed.status_code == 200, feed.text
    read = await desk.get(f"/v1/complaints/{case_id}")
    assert read.status_code in (200, 409), read.text
    if read.status_code == 409:
        assert read.json()["code"] == "case_stream_damaged"
    earlier = await desk.get(f"/v1/complaints/{case_id}", as_of_version=2)
    assert earlier.status_code in (200, 409), earlier.text


# the assignment (version 2) of `decided_case` turned into what this code cannot fold
UNFOLDABLE_ALTERATIONS = {
    "event type unknown": "UPDATE events SET event_type = 'HandlerBribed'"
    " WHERE stream_id = $1 AND version = 2",
    "schema version unknown": "UPDATE events SET schema_version = 7"
    " WHERE stream_id = $1 AND version = 2",
    "a second receipt": "UPDATE events SET event_type = 'ComplaintReceived', data = (SELECT data"
    " FROM events WHERE stream_id = $1 AND version = 1) WHERE stream_id = $1 AND version = 2",
}


@pytest.mark.parametrize("alteration", UNFOLDABLE_ALTERATIONS.values(), ids=UNFOLDABLE_ALTERATIONS)
async def test_a_case_that_cannot_be_folded_is_refused_as_damaged_and_audited(
    desk: Desk, alteration: str
) -> None:
    """Found by a review pass: an event type or schema version this code does not know, or an
    event that cannot follow the ones before it, made the case read of a process that kept
    nothing a 500; it answers 409 `case_stream_damaged`, as for any altered stream."""
    case_id = await desk.decided_case()
    await behind_the_triggers_back(desk.database_url, alteration, case_id)

    audited, code, document = await desk.verdicts(case_id)
    assert (audited["chain"]["intact"], audited["chain"]["first_bad_version"]) == (False, 2)
    assert (code, document) == (2, audited)
    async with app_client(desk.database_url) as fresh:
        regulator = {"Authorization": f"Bearer {desk.tokens['regulator']}"}
        read = await fresh.get(f"/v1/complaints/{case_id}", headers=regulator)
    assert (read.status_code, read.json()["code"]) == (409, "case_stream_damaged"), read.text


async def test_a_stream_with_a_version_deleted_is_named_by_its_stored_versions(desk: Desk) -> None:
    """The timeline names the events by the versions their rows hold, and no state is passed
    off as a version it is not: the case read and a replay past the gap answer 409."""
    case_id = await desk.decided_case()  # receipt, assignment, decision
    await behind_the_triggers_back(
        desk.database_url, "DELETE FROM events WHERE stream_id = $1 AND version = 2", case_id
    )

    audited, code, document = await desk.verdicts(case_id)
    assert (audited["chain"]["intact"], audited["chain"]["first_bad_version"]) == (False, 2)
    assert (code, document) == (2, audited)
    assert [(row["version"], row["change"]) for row in audited["timeline"]] == [
        (1, "receipt"),
        (3, "decision"),
    ]
    for params in ({}, {"as_of_version": 3}):
        read = await desk.get(f"/v1/complaints/{case_id}", **params)
        assert (read.status_code, read.json()["code"]) == (409, "case_stream_damaged"), params
    first = await desk.get(f"/v1/complaints/{case_id}", as_of_version=1)
    assert (first.status_code, first.json()["version"]) == (200, 1)


async def test_a_process_that_kept_nothing_refuses_to_act_on_a_stream_with_a_gap(
    desk: Desk,
) -> None:
    """A command and a reveal fold the stream as the read does: after the assignment (version
    2) was deleted, a fresh process answers 409 and appends nothing after the gap."""
    case_id = await desk.decided_case()
    await behind_the_triggers_back(
        desk.database_url, "DELETE FROM events WHERE stream_id = $1 AND version = 2", case_id
    )
    staff = {"Authorization": f"Bearer {desk.tokens['staff']}"}
    async with app_client(desk.database_url) as fresh:
        answers = [
            await fresh.post(
                f"/v1/complaints/{case_id}/withdraw",
                json={"received_on": days_ago(0)},
                headers=staff,
            ),
            await fresh.get(
                f"/v1/complaints/{case_id}/personal-data",
                params={"purpose": "复核"},
                headers={"Authorization": f"Bearer {desk.tokens['supervisor']}"},
            ),
        ]
        events = await fresh.get(f"/v1/complaints/{case_id}/events", headers=staff)
    for answer in answers:
        assert (answer.status_code, answer.json()["code"]) == (409, "case_stream_damaged")
    assert [event["version"] for event in events.json()] == [1, 3]


async def test_the_retention_sweep_leaves_a_stream_with_a_gap_as_it_is(database_url: str) -> None:
    """The sweep folds the stream as a command does: after a deleted version it appends no
    erasure and destroys no key (the erasure route answers 409 on the same stream)."""
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        desk = CaseDesk(pool)
        await desk.plant_tree()
        case_id = await desk.receive("BR-A", date(2019, 3, 4))
        await desk.assign(case_id, date(2019, 3, 5))
        await desk.withdraw(case_id, date(2019, 3, 7))
        await behind_the_triggers_back(
            database_url, "DELETE FROM events WHERE stream_id = $1 AND version = 2", case_id
        )
        erased = await erase_past_retention(pool, "sweep-test")
        versions = [event.version for event in await PostgresEventStore(pool).read_stream(case_id)]
        keys = await pool.fetchval("SELECT count(*) FROM case_keys WHERE case_id = $1", case_id)
    finally:
        await pool.close()
    assert (erased, versions, keys) == (0, [1, 3], 1)
