"""`cancel_and_wait`: every task cancelled and ended before it returns; an error a task ends
with (other than its cancellation) raised, not lost."""

import asyncio

import pytest

from complaintcore.infra.tasks import cancel_and_wait


async def _forever(ended: list[str], name: str, delay_on_cancel: float = 0.0) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(delay_on_cancel)  # a task that takes a while to clean up
        ended.append(name)
        raise


async def test_every_task_is_cancelled_and_has_ended_when_it_returns() -> None:
    ended: list[str] = []
    tasks = [
        asyncio.create_task(_forever(ended, "slow", 0.05)),
        asyncio.create_task(_forever(ended, "quick")),
    ]
    await asyncio.sleep(0)

    await cancel_and_wait(tasks)

    assert all(task.done() and task.cancelled() for task in tasks)
    assert sorted(ended) == ["quick", "slow"]


async def test_an_error_a_task_ends_with_is_raised_after_the_others_have_ended() -> None:
    ended: list[str] = []

    async def fails_as_it_stops() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("could not flush") from None

    failing = asyncio.create_task(fails_as_it_stops())
    slow = asyncio.create_task(_forever(ended, "slow", 0.05))
    await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="could not flush"):
        await cancel_and_wait([failing, slow])

    assert slow.done() and ended == ["slow"]


async def test_tasks_already_done_are_waited_for_as_they_are() -> None:
    finished = asyncio.create_task(asyncio.sleep(0))
    await finished

    await cancel_and_wait([finished])
    await cancel_and_wait([])

    assert finished.done() and not finished.cancelled()
