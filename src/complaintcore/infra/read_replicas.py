"""Read replicas: hot standbys that serve the reads which tolerate lag (README "Read replicas").

`COMPLAINTCORE_READ_REPLICA_URLS` names PostgreSQL hot standbys (streaming replicas of the primary
in `DATABASE_URL`). Each gets a small pool of its own; a check every
`COMPLAINTCORE_READ_REPLICA_CHECK` seconds reads how far it is behind:

- `lag_bytes`: the primary's WAL position minus the standby's replayed position (read on the
  primary first, so a standby that keeps up shows 0 or a little);
- `lag_s`: 0 when the standby has replayed everything the primary had written at the check,
  else the age of the last transaction it replayed (a standby whose replay is paused or whose
  WAL stream broke ages by the second, whatever the primary is doing).

A standby is used while its last check answered, it is still in recovery (a promoted one has left
the primary's timeline) and `lag_s` is at most `COMPLAINTCORE_READ_REPLICA_MAX_LAG`; otherwise it
is skipped until a later check finds it fit. A read that fails on a standby marks it down and is
served by the primary.

Reading one's own write: a command answers with its commit position (`Consistency-Position`: the
global position of the last event it wrote). A read that carries it is served by a standby only if
that event is visible there (replay applies commits in WAL order, so every transaction committed
before it is visible too), else by the primary.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import asyncpg
import structlog

from complaintcore.infra.database import (
    DATABASE_UNAVAILABLE_ERRORS,
    create_pool,
    plain_url,
    service_command_timeout,
)

__all__ = ["Replica", "ReplicaSet", "replica_name"]

log = structlog.get_logger("complaintcore.infra.read_replicas")

T = TypeVar("T")

_PRIMARY_WAL = "SELECT pg_current_wal_lsn()::text"
_STANDBY_STATE = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_replay_lsn()::text AS replayed,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age_s
"""
_HAS_POSITION = "SELECT EXISTS (SELECT 1 FROM events WHERE position = $1)"
CHECK_TIMEOUT_S = 5.0


def lsn_to_int(lsn: str | None) -> int | None:
    """`16/B374D848` as a byte offset (None stays None)."""
    if not lsn:
        return None
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def replica_name(url: str) -> str:
    """How a standby is named in logs, /readyz and metrics: host:port/database, no credentials."""
    parts = urlsplit(plain_url(url))
    host = parts.netloc.rsplit("@", 1)[-1] or "local"
    return f"{host}{parts.path or '/'}"


ReplicaState = Literal["ok", "lagging", "unchecked", "down", "not_a_standby"]
"""What `/readyz` says of a replica: only `ok` serves reads."""


@dataclass
class Replica:
    name: str
    url: str
    pool: asyncpg.Pool | None = None
    up: bool = False
    in_recovery: bool = False
    lag_s: float | None = None
    lag_bytes: int | None = None
    checked_at: float | None = None  # monotonic
    error: str | None = None

    def usable(self, max_lag_s: float, fresh_for_s: float = float("inf")) -> bool:
        """Up, a standby, within `max_lag_s`, and so as of a check at most `fresh_for_s` old
        (a verdict nobody renewed says nothing of the standby now)."""
        return (
            self.pool is not None
            and self.up
            and self.in_recovery
            and self.lag_s is not None
            and self.lag_s <= max_lag_s
            and self.checked_at is not None
            and time.monotonic() - self.checked_at <= fresh_for_s
        )

    def state(self, max_lag_s: float, fresh_for_s: float = float("inf")) -> ReplicaState:
        if self.checked_at is None and self.error is None:
            # no check has answered yet (a new process): nothing found it down (found by a
            # review pass: `/readyz` named a standby not yet checked `down`)
            return "unchecked"
        if not self.up:
            return "down"
        if not self.in_recovery:
            return "not_a_standby"
        if not self.usable(max_lag_s):
            return "lagging"
        return "ok" if self.usable(max_lag_s, fresh_for_s) else "unchecked"

    def report(self, max_lag_s: float, fresh_for_s: float = float("inf")) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state(max_lag_s, fresh_for_s),
            # unrounded: a rounded figure could show a lagging standby within the setting
            "lag_s": self.lag_s,
            "lag_bytes": self.lag_bytes,
            "error": self.error,
        }


class ReplicaSet:
    """The standbys of one process; `pick` chooses where a lag-tolerant read runs."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        urls: Sequence[str],
        *,
        max_lag_s: float,
        check_s: float,
        pool_size: int = 8,
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(replica_name(url), url) for url in urls]
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self._pool_size = pool_size
        self._turn = itertools.count()

    @property
    def configured(self) -> bool:
        return bool(self.replicas)

    async def check_all(self) -> None:
        """Read the primary's WAL position, then each standby's state."""
        try:
            # bounded like a standby's check: a primary that hangs, or a pool with no connection
            # free, leaves the standbys judged by their replay age alone, not the checks stopped
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                primary_lsn = lsn_to_int(await self.primary.fetchval(_PRIMARY_WAL))
        except DATABASE_UNAVAILABLE_ERRORS:
            primary_lsn = None
        except asyncpg.PostgresError:  # the primary in recovery itself (a failover under way)
            primary_lsn = None
        await asyncio.gather(*(self._check(replica, primary_lsn) for replica in self.replicas))

    async def _check(self, replica: Replica, primary_lsn: int | None) -> None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                if replica.pool is None:
                    replica.pool = await create_pool(
                        replica.url,
                        min_size=1,
                        max_size=self._pool_size,
                        command_timeout=service_command_timeout(),
                    )
                row = await replica.pool.fetchrow(_STANDBY_STATE)
        except (*DATABASE_UNAVAILABLE_ERRORS, asyncpg.PostgresError) as error:
            self._mark_down(replica, error)
            return
        assert row is not None
        replayed = lsn_to_int(row["replayed"])
        replica.up, replica.in_recovery = True, row["in_recovery"]
        replica.checked_at, replica.error = time.monotonic(), None
        if primary_lsn is None or replayed is None:
            replica.lag_bytes = None
            replica.lag_s = None if replayed is None else row["replay_age_s"]
        else:
            replica.lag_bytes = max(primary_lsn - replayed, 0)
            behind = replayed < primary_lsn
            # behind with no transaction replayed since it started: how long is not known
            replica.lag_s = row["replay_age_s"] if behind else 0.0
        if replica.lag_s is not None:
            replica.lag_s = max(replica.lag_s, 0.0)

    def _mark_down(self, replica: Replica, error: BaseException) -> None:
        if replica.up:
            log.warning("read replica down", replica=replica.name, error=type(error).__name__)
        replica.up, replica.error = False, type(error).__name__

    async def run_checks(self, on_checked: Callable[[ReplicaSet], None] | None = None) -> None:
        """Check every standby every `check_s` seconds until cancelled (no standby: return)."""
        while self.replicas:
            try:
                await self.check_all()
                if on_checked is not None:
                    on_checked(self)
            except Exception as error:  # never the end of the checks: the next round tries again
                log.warning("read replica check failed", error=type(error).__name__)
            await asyncio.sleep(self.check_s)

    @property
    def fresh_for_s(self) -> float:
        """How old a standby's last check may be for reads to go to it: a few rounds missed."""
        return max(self.max_lag_s, 3 * self.check_s) + CHECK_TIMEOUT_S

    def _usable_in_turn(self) -> list[Replica]:
        usable = [
            replica for replica in self.replicas if replica.usable(self.max_lag_s, self.fresh_for_s)
        ]
        if len(usable) > 1:
            start = next(self._turn) % len(usable)
            usable = usable[start:] + usable[:start]
        return usable

    async def read(
        self,
        query: Callable[[asyncpg.Pool], Awaitable[T]],
        position: int | None = None,
        not_final: tuple[type[Exception], ...] = (),
    ) -> T:
        """Run `query` on a fit standby (one that shows `position`, when given), else on the
        primary; a standby failing under it is marked down and the primary answers, and so it
        does when `query` raises one of `not_final` on a standby (a case not found on a standby
        may be one it has not replayed yet)."""
        for replica in self._usable_in_turn():
            assert replica.pool is not None
            try:
                if position is not None and not await replica.pool.fetchval(
                    _HAS_POSITION, position
                ):
                    continue
                return await query(replica.pool)
            except not_final:
                break
            except DATABASE_UNAVAILABLE_ERRORS as error:
                self._mark_down(replica, error)
            except asyncpg.PostgresError as error:
                # a conflict with recovery (40001, a query cancelled by replay) and the like:
                # the primary has the answer
                log.warning(
                    "read replica query failed", replica=replica.name, error=type(error).__name__
                )
        return await query(self.primary)

    def report(self) -> list[dict[str, object]]:
        return [replica.report(self.max_lag_s, self.fresh_for_s) for replica in self.replicas]

    async def close(self) -> None:
        for replica in self.replicas:
            if replica.pool is not None:
                await replica.pool.close()
                replica.pool = None
