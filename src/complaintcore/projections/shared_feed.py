"""The global feed read once for all the runners of a process (`SharedFeed`).

The statistics and the alerts runners of one process follow the same feed, most of the time a
batch or less apart. Each read its batches itself, so under a command load every new event was
fetched and decoded twice in the runner process, on the cores the server and PostgreSQL need.
`SharedFeed` keeps the last batch it read: a runner asking for the events after a position inside
that batch is handed the rest of it; any other request is read from the store and becomes the
batch kept. While one runner's read is in flight, another waits for it rather than reading too.

Why a kept batch answers exactly: `read_feed(after)` returns the events after `after` in position
order, never skipping one whose transaction commits late, up to the limit. So the events it
returned are every event there will ever be with a position from `after` (excluded) to the last
one returned (included), and when it returned fewer than its limit, the feed held no more then.
An answer from the batch is what a read at the batch's moment would have returned: the batch's
tail from the position asked for, cut at the limit asked for; a tail shorter than that limit
only from a batch that was not full (from a full one, the feed may hold more after it: read
instead). So a runner given fewer events than it asked for has caught up with the feed as of
that moment, as after its own read, which is when it may sweep (the alerts' day turn).

A batch is handed out for `fresh_for` seconds after its read only: after a pause, a runner that
asks again reads the feed as it stands. The events are shared as they are: `StoredEvent` is
frozen, and folds read the payloads without changing them.
"""

import asyncio
import bisect
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from complaintcore.events.model import StoredEvent


class FeedSource(Protocol):
    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]: ...


class SharedFeed:
    """`read_feed` of `source`, each batch read once for every runner that asks for it."""

    def __init__(
        self,
        source: FeedSource,
        fresh_for: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._fresh_for = fresh_for
        self._clock = clock
        self._reading = asyncio.Lock()
        self._batch: Sequence[StoredEvent] = ()
        self._batch_after = 0  # the `after` the kept batch was read with
        self._batch_full = False  # it held as many events as asked for: the feed may hold more
        self._read_at = 0.0

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        async with self._reading:
            kept = self._from_batch(after, limit)
            if kept is not None:
                return kept
            events = await self._source.read_feed(after=after, limit=limit)
            if events:
                self._batch, self._read_at = events, self._clock()
                self._batch_after, self._batch_full = after, len(events) >= limit
            return events

    def _from_batch(self, after: int, limit: int) -> list[StoredEvent] | None:
        """The kept batch's events after `after` (at most `limit`), if it answers for them."""
        batch = self._batch
        if not batch or not self._batch_after <= after < batch[-1].position:
            return None
        if self._clock() - self._read_at > self._fresh_for:
            return None
        start = bisect.bisect_right(batch, after, key=lambda event: event.position)
        tail = batch[start : start + limit]
        if len(tail) < limit and self._batch_full:
            return None
        return list(tail)
