"""What a process keeps for a while of something another process may take back: a case's data
key (an erasure destroys it), a token found valid (it may be revoked), a case's folded state
(it holds personal data in plaintext). Kept only as a hint, bounded in number and in age.

Entries are in the order they were put, which is the order of their age: a value put again
starts its age again and goes to the end; reading one leaves it where it is. So the oldest go
first both ways, beyond `capacity` and once `max_age_s` old, and an entry too old leaves memory
at the next read or put of any entry, not only when it is asked for itself."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["AgedCache"]

K = TypeVar("K")
V = TypeVar("V")


class AgedCache(Generic[K, V]):
    """Values by key, at most `capacity` of them, none older than `max_age_s` seconds by
    `clock`. Thread-safe (the data key cache is read from worker threads too)."""

    def __init__(
        self, capacity: int, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or max_age_s <= 0:
            raise ValueError("a cache holds at least one value for some time")
        self.capacity = capacity
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._entries)

    def get(self, key: K) -> V | None:
        """The value put under `key`, if it is there and not `max_age_s` old."""
        with self._lock:
            self._drop_expired()
            entry = self._entries.get(key)
            return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        """Keep `value` under `key`, its age starting now; the oldest out beyond `capacity`."""
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock(), value)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            self._drop_expired()

    def forget(self, key: K) -> None:
        """Drop `key`'s value now; nothing happens if there is none."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _drop_expired(self) -> None:
        oldest_kept = self._clock() - self.max_age_s
        entries = self._entries
        while entries and next(iter(entries.values()))[0] <= oldest_kept:
            entries.popitem(last=False)
