"""`GET /v1/complaints/{id}/events` and the feed show each event's metadata exactly as stored,
as the chain's hash covers it (README "Verifying a chain yourself"): a member this service
never writes is shown, and one not stored is not shown as null. Found by a review pass: the
response model dropped unknown members and filled in nulls, so a stream the service's own audit
verified intact failed the README's recipe on what the API returned."""

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from api_support import app_client, complaint
from chain_recipe import first_broken_version
from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore
from projection_support import tree_and_tokens

ANNOTATED = {"reviewed_by": "dba-7", "causation_id": None}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url) as client:
        yield client


async def a_case_with_an_annotated_event(
    client: httpx.AsyncClient, pool: asyncpg.Pool, headers: dict[str, str]
) -> str:
    """A case received and assigned over HTTP, then its assignment recorded once more by other
    means, with metadata members the service never writes (the store chains it as given)."""
    created = await client.post("/v1/complaints", json=complaint("BR-A"), headers=headers)
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assigned = await client.post(
        f"/v1/complaints/{case_id}/assign", json={"handler_id": "staff-a1"}, headers=headers
    )
    assert assigned.status_code == 200, assigned.text
    store = PostgresEventStore(pool)
    assignment = (await store.read_stream(case_id))[-1]
    metadata = EventMetadata(
        actor_id="staff-a1",
        actor_role="staff",
        institution="BR-A",
        cipher_suite=assignment.metadata.cipher_suite,
        others=ANNOTATED,
    )
    copy = NewEvent(assignment.event_type, assignment.data, assignment.schema_version, metadata)
    await store.append(case_id, [copy], expected_version=assignment.version)
    return case_id


async def test_the_events_show_metadata_as_stored_and_the_recipe_verifies_them(
    client: httpx.AsyncClient, database_url: str, pool: asyncpg.Pool
) -> None:
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "regulator": ("reg-1", "regulator", None)},
    )
    headers = {"Authorization": f"Bearer {tokens['staff']}"}
    case_id = await a_case_with_an_annotated_event(client, pool, headers)

    events = (await client.get(f"/v1/complaints/{case_id}/events", headers=headers)).json()
    assert events[-1]["metadata"] == {
        "actor_id": "staff-a1",
        "actor_role": "staff",
        "institution": "BR-A",
        "cipher_suite": events[-1]["metadata"]["cipher_suite"],
        **ANNOTATED,
    }
    assert "idempotency_key" not in events[0]["metadata"]  # not stored: not shown as null
    assert first_broken_version(events) is None
    assert all(event["recorded_at"].endswith("Z") for event in events)  # RFC 3339, UTC
    regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
    feed = (await client.get("/v1/events", params={"limit": 5000}, headers=regulator)).json()
    assert [item for item in feed["items"] if item["stream_id"] == case_id] == events

    audit = (await client.get(f"/v1/complaints/{case_id}/audit", headers=headers)).json()
    assert audit["chain"]["intact"] is True
