"""The unwrapped data keys of recent cases, cached per process so that most reads and appends do
not unwrap (a KMS round trip, for a KMS provider) again.

Cached with care:

- bounded in size and in age (`infra.aged_cache`: the oldest out first), so a key destroyed by
  an erasure in another process is gone from this one within `max_age_seconds`;
  `forget(case_id)` drops it at once in the erasing process;
- never shown: the cache's repr gives counts only, and nothing here logs;
- not wiped: Python's bytes are immutable, may be copied by the runtime and are freed (not zeroed)
  by the allocator, so zero-filling a key is impossible in Python; the bounds are the protection
  there is (a deployment that needs more keeps its keys in an HSM, behind `keys.KeyProvider`);
- never the authority on erasure: readers decide "erased" from the stream's `PersonalDataErased`
  event or the key table, not from a cache hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from complaintcore.infra.aged_cache import AgedCache

__all__ = ["KEY_MAX_AGE_S", "DataKeyCache"]

KEY_MAX_AGE_S = 300.0
"""How long an unwrapped key is kept: how long an erasure in another process may take to reach
this one."""


class DataKeyCache(AgedCache[str, bytes]):
    """Unwrapped data keys by case id (`get`, `put`, `forget`, `clear`); thread-safe (the store
    may unwrap in worker threads)."""

    def __init__(
        self,
        max_entries: int = 4096,
        max_age_seconds: float = KEY_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_entries, max_age_seconds, clock)

    @property
    def max_age_seconds(self) -> float:
        return self.max_age_s

    def __repr__(self) -> str:  # never the keys
        return f"DataKeyCache({len(self)}/{self.capacity} keys)"
