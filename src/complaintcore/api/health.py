"""Liveness and readiness, outside /v1 as API.md fixes them."""

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from complaintcore.schema_migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"description": "Database unreachable or migrations not current"}},
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    try:
        async with request.app.state.pool.acquire(timeout=2) as connection:
            revision = await current_revision(connection)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return _not_ready("database unreachable")
    expected = head_revision()
    if revision != expected:
        return _not_ready(f"schema at {revision}, expected {expected}")
    return JSONResponse({"status": "ready", "schema": revision})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse(
        {"status": "not_ready", "reason": reason}, status_code=503, headers={"Retry-After": "5"}
    )
