"""Stopping background tasks (runners, the webhook workers, a watch) when their owner stops."""

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait until each has ended. An error a task ends with, other than
    its cancellation, is raised once all have ended (the first of them, in the tasks' order), so
    no task is left running and no failure goes unseen."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome
