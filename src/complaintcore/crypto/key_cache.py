"""The unwrapped data keys of recent cases, cached per process so that most reads and appends do
not unwrap (a KMS round trip, for a KMS provider) again.

Cached with care:

- bounded in size (least recently used out first) and in age, so a key destroyed by an erasure in
  another process is gone from this one within `max_age_seconds`; `forget(case_id)` drops it at
  once in the erasing process;
- never shown: the cache's repr gives counts only, and nothing here logs;
- not wiped: Python's bytes are immutable, may be copied by the runtime and are freed (not zeroed)
  by the allocator, so zero-filling a key is impossible in Python; the bounds are the protection
  there is (a deployment that needs more keeps its keys in an HSM, behind `keys.KeyProvider`);
- never the authority on erasure: readers decide "erased" from the stream's `PersonalDataErased`
  event or the key table, not from a cache hit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["KEY_MAX_AGE_S", "DataKeyCache"]

KEY_MAX_AGE_S = 300.0
"""How long an unwrapped key is kept: how long an erasure in another process may take to reach
this one."""


class DataKeyCache:
    """Unwrapped data keys by case id: a bounded LRU, entries also expiring by age.

    Thread-safe (the store may unwrap in worker threads).
    """

    def __init__(
        self,
        max_entries: int = 4096,
        max_age_seconds: float = KEY_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_age_seconds <= 0:
            raise ValueError("a data key cache holds at least one key for some time")
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the keys
        return f"DataKeyCache({len(self)}/{self.max_entries} keys)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, case_id: str) -> bytes | None:
        """The case's data key if cached and not too old (and now the most recently used)."""
        with self._lock:
            entry = self._entries.get(case_id)
            if entry is None:
                return None
            stored_at, key = entry
            if self._clock() - stored_at >= self.max_age_seconds:
                del self._entries[case_id]
                return None
            self._entries.move_to_end(case_id)
            return key

    def put(self, case_id: str, data_key: bytes) -> None:
        """Cache the case's data key, dropping the least recently used one beyond the bound."""
        with self._lock:
            self._entries[case_id] = (self._clock(), data_key)
            self._entries.move_to_end(case_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, case_id: str) -> None:
        """Drop the case's key (on erasure); nothing happens if it was not cached."""
        with self._lock:
            self._entries.pop(case_id, None)

    def clear(self) -> None:
        """Drop every key (on master key rotation, or when the process stops serving)."""
        with self._lock:
            self._entries.clear()
