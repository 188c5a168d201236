"""A standby serves reads only on a verdict its checks keep renewing: a check that hangs on the
primary is bounded, one that fails does not end the checks, and a verdict nobody renewed for a
few rounds sends the reads back to the primary."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from complaintcore.api.health import ReplicaOut
from complaintcore.infra import read_replicas
from complaintcore.infra.read_replicas import Replica, ReplicaSet


class HangingPool:
    """A primary whose every query waits (a hung server, or no connection free)."""

    async def fetchval(self, *args: Any) -> Any:
        await asyncio.sleep(3600)


class StandbyPool:
    def __init__(self) -> None:
        self.checks = 0

    async def fetchrow(self, *args: Any) -> dict[str, Any]:
        self.checks += 1
        return {"in_recovery": True, "replayed": "0/10", "replay_age_s": 0.2}


def _replicas(primary: Any, standby: Any) -> ReplicaSet:
    reads = ReplicaSet(cast(Any, primary), ["postgresql://standby/db"], max_lag_s=1.0, check_s=0.01)
    reads.replicas[0].pool = cast(Any, standby)
    return reads


async def test_a_primary_that_hangs_bounds_the_check_and_the_standby_is_judged_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(read_replicas, "CHECK_TIMEOUT_S", 0.05)
    standby = StandbyPool()
    reads = _replicas(HangingPool(), standby)

    async with asyncio.timeout(2):
        await reads.check_all()

    replica = reads.replicas[0]
    assert standby.checks == 1
    assert (replica.lag_bytes, replica.lag_s) == (None, 0.2)  # by its replay age alone


def test_a_verdict_not_renewed_for_a_few_rounds_serves_no_read() -> None:
    reads = _replicas(object(), object())
    replica = reads.replicas[0]
    replica.up, replica.in_recovery, replica.lag_s = True, True, 0.0

    replica.checked_at = time.monotonic()
    assert reads._usable_in_turn() == [replica]
    assert replica.state(reads.max_lag_s, reads.fresh_for_s) == "ok"

    replica.checked_at = time.monotonic() - reads.fresh_for_s - 1
    assert reads._usable_in_turn() == []
    assert replica.state(reads.max_lag_s, reads.fresh_for_s) == "unchecked"
    assert reads.report()[0]["state"] == "unchecked"
    # and /readyz's schema (openapi.yaml's) takes it, as a client generated from it would
    ReplicaOut.model_validate(reads.report()[0])


async def test_a_check_that_fails_does_not_end_the_checks() -> None:
    standby = StandbyPool()
    reads = _replicas(object(), standby)
    rounds = 0

    def failing_once(_: ReplicaSet) -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("a bug in a callback")

    async def primary_lsn(*args: Any) -> str:
        return "0/10"

    reads.primary = cast(Any, type("Primary", (), {"fetchval": staticmethod(primary_lsn)})())
    task = asyncio.create_task(reads.run_checks(failing_once))
    try:
        async with asyncio.timeout(2):
            while rounds < 3:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert standby.checks >= 3
    assert isinstance(reads.replicas[0], Replica) and reads.replicas[0].up
