"""Liveness and readiness, outside /v1 as API.md fixes them."""

from typing import Literal

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from complaintcore.infra.database import DATABASE_UNAVAILABLE_ERRORS
from complaintcore.infra.migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


class AliveOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    schema_revision: str = Field(
        alias="schema", description="The database's migration revision, the latest one."
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
            "description": "Database unreachable or migrations not current.",
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
    """The database answers and its schema is at the latest migration."""
    try:
        async with request.app.state.pool.acquire(timeout=2) as connection:
            revision = await current_revision(connection)
    except (*DATABASE_UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        return _not_ready("database unreachable")
    expected = head_revision()
    if revision != expected:
        return _not_ready(f"schema at {revision}, expected {expected}")
    return JSONResponse({"status": "ready", "schema": revision})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse(
        {"status": "not_ready", "reason": reason}, status_code=503, headers={"Retry-After": "5"}
    )
