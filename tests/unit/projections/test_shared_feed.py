"""`SharedFeed` against a feed with gaps in its positions (as PostgreSQL's sequence leaves them):
every answer is what a read of the feed would have returned at the moment of the last read that
found events (so fewer events than asked for means caught up as of then), a batch is read once
for every runner that asks for it within its freshness, and a stale one is read again."""

import asyncio
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from complaintcore.events.model import EventMetadata, StoredEvent
from complaintcore.projections.shared_feed import SharedFeed


def stored(position: int) -> StoredEvent:
    return StoredEvent(
        position=position,
        stream_id=f"case-{position % 3}",
        version=position,
        event_type="Happened",
        schema_version=1,
        data={"n": position},
        metadata=EventMetadata(actor_id="u1"),
        recorded_at=datetime(2026, 12, 6, tzinfo=UTC),
        prev_hash="",
        hash="",
    )


class GappedFeed:
    """The feed as `read_feed` gives it: the events after a position, in order, up to a limit."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.reads = 0
        # the feed as the last read that found events found it (what a kept batch comes from)
        self.at_last_read: list[StoredEvent] = []

    def add(self, gap: int) -> None:
        last = self.events[-1].position if self.events else 0
        self.events.append(stored(last + gap))

    def now(self, after: int, limit: int) -> list[StoredEvent]:
        return [event for event in self.events if event.position > after][:limit]

    def at_the_last_read(self, after: int, limit: int) -> list[StoredEvent]:
        return [event for event in self.at_last_read if event.position > after][:limit]

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        self.reads += 1
        found = self.now(after, limit)
        if found:
            self.at_last_read = list(self.events)
        return found


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 3)),
        # after the k-th event's position (0: from the start), as runners ask, or just before
        # it (inside a gap, or at the event before)
        st.tuples(st.just("read"), st.integers(0, 25), st.integers(1, 6), st.booleans()),
        st.tuples(st.just("wait"), st.floats(0, 0.4)),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(steps=steps)
# a full batch, then a read from inside it asking for more than is left in it
@example(steps=[("add", 1)] * 8 + [("read", 0, 3, False), ("read", 1, 5, False)])
async def test_every_answer_is_what_a_read_returned_when_the_kept_batch_was_read(
    steps: list[tuple],
) -> None:
    feed, clock = GappedFeed(), Clock()
    shared = SharedFeed(feed, fresh_for=0.5, clock=clock)
    for step in steps:
        if step[0] == "add":
            feed.add(step[1])
        elif step[0] == "wait":
            clock.seconds += step[1]
        else:
            _, k, limit, just_before = step
            k %= len(feed.events) + 1
            after = feed.events[k - 1].position - just_before if k else 0
            direct = feed.now(after, limit)
            answer = await shared.read_feed(after=after, limit=limit)
            assert answer == feed.at_the_last_read(after, limit)
            assert answer == direct[: len(answer)]
            assert answer or not direct


async def test_runners_a_batch_apart_read_each_batch_once() -> None:
    feed, clock = GappedFeed(), Clock()
    for gap in (1, 2, 1, 3, 1, 1, 2, 1):
        feed.add(gap)
    shared = SharedFeed(feed, clock=clock)
    first = await shared.read_feed(after=0, limit=10)  # all 8: the feed's head
    assert await shared.read_feed(after=0, limit=10) == first
    assert await shared.read_feed(after=first[1].position, limit=10) == first[2:]
    assert feed.reads == 1
    feed.add(1)
    assert await shared.read_feed(after=first[-1].position, limit=10) == feed.events[-1:]
    assert feed.reads == 2


async def test_the_tail_of_a_full_batch_answers_only_for_as_many_as_asked() -> None:
    feed, clock = GappedFeed(), Clock()
    for gap in (1, 2, 1, 3, 1, 1, 2, 1):
        feed.add(gap)
    shared = SharedFeed(feed, clock=clock)
    first = await shared.read_feed(after=0, limit=5)  # full: the feed may hold more
    assert await shared.read_feed(after=first[1].position, limit=3) == first[2:5]
    assert feed.reads == 1
    # three left in the batch, five asked for: read, or the runner would think it caught up
    assert await shared.read_feed(after=first[1].position, limit=5) == feed.events[2:7]
    assert feed.reads == 2


async def test_a_batch_older_than_its_freshness_is_read_again() -> None:
    feed, clock = GappedFeed(), Clock()
    feed.add(1)
    feed.add(1)
    shared = SharedFeed(feed, fresh_for=0.5, clock=clock)
    await shared.read_feed(after=0)
    feed.add(4)
    clock.seconds += 0.4
    assert [event.position for event in await shared.read_feed(after=1)] == [2]
    clock.seconds += 0.2
    assert [event.position for event in await shared.read_feed(after=1)] == [2, 6]
    assert feed.reads == 2


async def test_a_runner_waits_for_the_read_in_flight_rather_than_reading_too() -> None:
    feed = GappedFeed()
    for _ in range(4):
        feed.add(1)
    released = asyncio.Event()
    read = feed.read_feed

    async def slow_read(after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        await released.wait()
        return await read(after, limit)

    feed.read_feed = slow_read  # type: ignore[method-assign]
    shared = SharedFeed(feed)
    answers = [asyncio.create_task(shared.read_feed(after=0)) for _ in range(2)]
    await asyncio.sleep(0)
    released.set()
    first, second = await asyncio.gather(*answers)
    assert first == second == feed.events
    assert feed.reads == 1
