"""The retention sweep and the bulk import refuse a case whose stream cannot be folded, and go
on with the others ("a case read, a command, a reveal, the import and the sweep each refuse the
case with this code", events/codec.py). Found by a review pass of the session that made more
alterations unfoldable: one such case stopped the whole sweep, and a merge into one the whole
import."""

from datetime import date

import pytest

from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from projection_support import CaseDesk, erase_past_retention
from store_support import behind_the_triggers_back

# edc0442's alterations: the assignment (version 2) made what this code cannot fold
UNFOLDABLE = {
    "event type unknown": "UPDATE events SET event_type = 'HandlerBribed'"
    " WHERE stream_id = $1 AND version = 2",
    "a second receipt": "UPDATE events SET event_type = 'ComplaintReceived', data = (SELECT data"
    " FROM events WHERE stream_id = $1 AND version = 1) WHERE stream_id = $1 AND version = 2",
}


# the receipt's channel made a code no channel has (edc0442: the fold refuses it)
CHANNEL_UNKNOWN = (
    "UPDATE events SET data = jsonb_set(data, '{channel}', '\"carrier_pigeon\"')"
    " WHERE stream_id = $1 AND version = 1"
)


SWEEP_ALTERATIONS = {**UNFOLDABLE, "channel unknown": CHANNEL_UNKNOWN}


@pytest.mark.parametrize("alteration", SWEEP_ALTERATIONS.values(), ids=SWEEP_ALTERATIONS)
async def test_the_sweep_leaves_an_unfoldable_stream_and_erases_the_others(
    database_url: str, alteration: str
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        desk = CaseDesk(pool)
        await desk.plant_tree()
        damaged = await desk.receive("BR-A", date(2019, 3, 4))
        await desk.assign(damaged, date(2019, 3, 5))
        await desk.withdraw(damaged, date(2019, 3, 7))
        healthy = await desk.receive("BR-A", date(2019, 3, 4))
        await desk.withdraw(healthy, date(2019, 3, 7))
        await behind_the_triggers_back(database_url, alteration, damaged)
        erased = await erase_past_retention(pool, "sweep-review")
        healthy_types = [e.event_type for e in await PostgresEventStore(pool).read_stream(healthy)]
    finally:
        await pool.close()
    assert erased == 1
    assert healthy_types[-1] == "PersonalDataErased"


async def test_the_import_refuses_a_merge_into_a_stored_case_that_cannot_be_folded(
    database_url: str,
) -> None:
    from datetime import timedelta

    import orjson

    from api_support import TODAY, complaint
    from complaintcore.application.bulk_import import (
        ActorBody,
        BulkImporter,
        load_reference_data,
        numbered_lines,
    )
    from testsupport import session_case_keys

    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        desk = CaseDesk(pool)
        await desk.plant_tree()
        target = await desk.receive("BR-A", TODAY - timedelta(days=20))
        await desk.assign(target, TODAY - timedelta(days=19))
        await behind_the_triggers_back(database_url, CHANNEL_UNKNOWN, target)
        duplicate = {
            "external_id": "DUP-OF-ALTERED",
            **complaint("BR-A", 10),
            "actor": {"id": "staff-ho", "role": "staff", "institution": "HO"},
            "actions": [
                {"command": "merge", "at": (TODAY - timedelta(days=3)).isoformat(), "into": target}
            ],
        }
        async with pool.acquire() as connection:
            reference = await load_reference_data(
                connection, TODAY, ActorBody(id="import", role="staff"), "import-test"
            )
            importer = BulkImporter(
                connection, PostgresEventStore(pool), reference, session_case_keys(), 10
            )
            report = await importer.run(numbered_lines([orjson.dumps(duplicate)]))
    finally:
        await pool.close()
    assert [(r.line_number, r.code) for r in report.refusals] == [(1, "case_stream_damaged")]
