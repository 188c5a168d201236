"""Commands fold a case from the state their process kept of it, reading only newer events; two
services stand for two server processes writing the same cases."""

from dataclasses import replace
from datetime import date

import asyncpg

from complaintcore.domain.state import ComplaintState, fold
from projection_support import CaseDesk
from testsupport import opened_events

DAY = date(2026, 3, 2)


async def state_from_scratch(
    desk: CaseDesk, case_id: str, up_to_version: int | None = None
) -> ComplaintState | None:
    stored = await desk.store.read_stream(case_id, up_to_version=up_to_version)
    return fold(await opened_events(desk.pool, stored))


async def test_a_process_sees_the_events_another_process_appended_since_it_last_read(
    pool: asyncpg.Pool,
) -> None:
    first, second = CaseDesk(pool), CaseDesk(pool)
    await first.plant_tree()
    case_id = await first.receive("SUB-A1", DAY)
    await first.assign(case_id, DAY, handler="h-1")
    await second.recuse(case_id, DAY, handler="h-1")  # unassigns h-1 and bars them for good
    await second.pause(case_id, DAY)

    # `first` kept the case at version 2; it must fold the recusal and the pause onto it
    await first.assign(case_id, DAY, handler="h-2")
    kept = first.service._states.get(case_id)
    assert kept is not None
    state = await state_from_scratch(first, case_id)
    assert state is not None
    assert state.version == 5
    assert state.handler_id == "h-2"
    # what it keeps now is the state its own command left, equal to the stream folded anew
    assert kept[0] == 5
    assert kept[2] == state


async def test_a_kept_state_whose_head_is_not_the_streams_is_folded_again_from_scratch(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("SUB-A1", DAY)
    await desk.assign(case_id, DAY, handler="h-1")
    kept = desk.service._states.get(case_id)
    assert kept is not None
    version, _, state, suite = kept
    assert version == 2
    # a kept state that claims a head the stream does not have (another event with that
    # version was written): folding onto it would decide on a case that never was
    bogus = replace(state, handler_id="h-never-assigned")
    desk.service._states.keep(case_id, version, "e" * 64, bogus, suite)

    await desk.pause(case_id, DAY)
    kept = desk.service._states.get(case_id)
    assert kept is not None
    assert kept[0] == 3
    assert kept[2] == await state_from_scratch(desk, case_id)
    assert kept[2].handler_id == "h-1"
