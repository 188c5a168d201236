"""Liveness and readiness, outside /v1 as API.md fixes them."""

from typing import Literal

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from complaintcore.application.master_key import rotated_away_from
from complaintcore.infra.database import DATABASE_UNAVAILABLE_ERRORS
from complaintcore.infra.migrations import current_revision, head_revision
from complaintcore.infra.read_replicas import ReplicaState

router = APIRouter(tags=["health"])


class AliveOut(BaseModel):
    status: Literal["ok"]


class ReplicaOut(BaseModel):
    name: str = Field(description="host:port/database of the read replica.")
    state: ReplicaState = Field(
        description="`ok`: serving reads; otherwise skipped (reads go to the primary): "
        "`lagging` beyond the allowed lag, `unchecked` when no check has renewed its verdict "
        "for a few rounds, `down`, or `not_a_standby` (a primary, after a failover)."
    )
    lag_s: float | None = Field(description="Seconds behind the primary at the last check.")
    lag_bytes: int | None = Field(description="Bytes of WAL behind the primary.")
    error: str | None = Field(description="Why the last check failed (an error type).")


class ReadyOut(BaseModel):
    status: Literal["ready"]
    schema_revision: str = Field(
        alias="schema", description="The database's migration revision, the latest one."
    )
    replicas: list[ReplicaOut] | None = Field(
        default=None,
        description="The read replicas (COMPLAINTCORE_READ_REPLICA_URLS), when any: a replica "
        "that lags or fails is skipped, and the service stays ready on the primary.",
    )


class NotReadyOut(BaseModel):
    status: Literal["not_ready"]
    reason: str = Field(description="What is not ready, in plain words.")


@router.get("/healthz", operation_id="healthz", response_model=AliveOut)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=ReadyOut,
    response_description="Ready to serve.",
    responses={
        503: {
            "model": NotReadyOut,
            "description": "Database unreachable, migrations not current, or this server's "
            "master key rotated out (it must be restarted with the new key file).",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before asking again.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            },
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers, its schema is at the latest migration and this server's master
    key is the current one; with read replicas, how far each is behind (a replica down or
    lagging does not make the service unready)."""
    try:
        async with request.app.state.health_pool.acquire(timeout=2) as connection:
            revision = await current_revision(connection)
            expected = head_revision()
            if revision != expected:
                return _not_ready(f"schema at {revision}, expected {expected}")
            rotated_to = await rotated_away_from(connection, request.app.state.key_provider)
    except (*DATABASE_UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        return _not_ready("database unreachable")
    if rotated_to is not None:
        return _not_ready(f"master key rotated to {rotated_to}: restart with the file of that key")
    ready: dict[str, object] = {"status": "ready", "schema": revision}
    reads = request.app.state.reads
    if reads.configured:
        ready["replicas"] = reads.report()
    return JSONResponse(ready)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse(
        {"status": "not_ready", "reason": reason}, status_code=503, headers={"Retry-After": "5"}
    )
