"""Errors as `application/problem+json` (RFC 9457), each with a stable `code`.

No request, however malformed, gets a 500: bad input is 422 listing each bad field in plain words,
a refused business rule is 409 naming the rule and the article, and a database that cannot be
reached is 503 with `Retry-After` (the pool reconnects by itself when it is back).
"""

from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from complaintcore.domain.identity import personal_numbers_redacted
from complaintcore.infra.database import DATABASE_UNAVAILABLE_ERRORS

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"

log = structlog.get_logger("complaintcore.api")


class FieldProblem(BaseModel):
    field: str
    code: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = None
    rule: str | None = None
    article: str | None = None


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: list[FieldProblem] | None = None,
        article: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.details = ProblemDetails(
            type=f"https://complaintcore.invalid/problems/{code}",
            title=title,
            status=status,
            detail=detail,
            code=code,
            errors=errors,
            rule=code if status == 409 and article else None,
            article=article,
        )
        self.headers = headers or {}


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.details.model_dump(exclude_none=True),
        status_code=problem.details.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", "Not found", f"No such {what}.")


def invalid(errors: list[FieldProblem], code: str = "validation_failed") -> Problem:
    fields = ", ".join(dict.fromkeys(error.field for error in errors))
    detail = f"Invalid: {fields}."
    return Problem(422, code, "Invalid request", detail, errors=errors)


def master_key_rotated() -> Problem:
    """A server still on the master key a `keys rotate` moved the keys away from: the data keys
    it has not cached no longer open, and new ones it would make are refused (migration 0024)
    until it is restarted with the new key's file; another server may answer meanwhile."""
    return Problem(
        503,
        "master_key_rotated",
        "Service unavailable",
        "This server's master key was rotated out; it must be restarted with the new key. "
        "Retry shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def database_unavailable() -> Problem:
    return Problem(
        503,
        "database_unavailable",
        "Service unavailable",
        "The database cannot be reached; retry shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "request_header_fields_too_large",
}


def http_problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Problem:
    """A refusal at the HTTP level (Starlette's, the request gate's, the server protocol's) as a
    problem: the status's stable code, and a title made from it."""
    code = _HTTP_CODES.get(status, f"http_{status}")
    title = code.replace("_", " ").capitalize()
    return Problem(status, code, title, detail, headers=dict(headers or {}))


# When the server shuts down, it sends each connection a FATAL error on its own; one that lands on
# an idle connection leaves asyncpg's protocol in a state where the pool's reset on release fails
# with `InternalClientError: cannot switch to state …; another operation (2) is in progress`, even
# though the request's own queries succeeded. The pool terminates that connection, so a retry
# gets a fresh one: it is the outage, answered like it.
# A server refusing writes (a standby reached by mistake, a primary an operator froze with
# `default_transaction_read_only`) cannot take a command until that ends: an outage of the
# primary to the client, not a 500 (found by a review pass).
DATABASE_DOWN = (
    *DATABASE_UNAVAILABLE_ERRORS,
    asyncpg.InternalClientError,
    asyncpg.ReadOnlySQLTransactionError,
)


def field_path(location: tuple[Any, ...]) -> str:
    """Where a bad value was; a key is the client's own text, so a personal number sent as one
    (a map keyed by phone number) is not echoed (found by a review pass)."""
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return personal_numbers_redacted(".".join(parts) or str(location[0] if location else "request"))


def _validation_problem(error: RequestValidationError) -> Problem:
    return invalid([_field_problem(item) for item in error.errors()])


def _field_problem(item: Mapping[str, Any]) -> FieldProblem:
    code = str(item.get("type", "invalid"))
    # a body that is not JSON is located at the character where parsing stopped: the field is
    # the body, whatever the offset
    where = "body" if code == "json_invalid" else field_path(tuple(item.get("loc", ())))
    return FieldProblem(field=where, code=code, message=str(item.get("msg", "invalid value")))


NOT_JSON = FieldProblem(field="body", code="json_invalid", message="the body is not UTF-8 JSON")


def _body_not_parsed(error: StarletteHTTPException) -> bool:
    """FastAPI answers a body its JSON decoder raised on with a bare 400, but a body that is not
    JSON is 422 `json_invalid`: bytes that are not UTF-8 (`UnicodeDecodeError`), an integer of
    more digits than Python converts (`ValueError`) and arrays nested deeper than the decoder
    recurses (`RecursionError`) get the same answer."""
    return error.status_code == 400 and isinstance(error.__cause__, ValueError | RecursionError)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(_validation_problem(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if _body_not_parsed(error):
            return problem_response(invalid([NOT_JSON]))
        return problem_response(http_problem(error.status_code, str(error.detail), error.headers))

    for error_type in DATABASE_DOWN:

        @app.exception_handler(error_type)
        async def on_database_down(request: Request, error: Exception) -> JSONResponse:
            log.warning("database unavailable", error=type(error).__name__)
            return problem_response(database_unavailable())

    @app.exception_handler(asyncpg.DataError)
    async def on_data_error(request: Request, error: asyncpg.DataError) -> JSONResponse:
        # A value the database cannot take (a character outside its encoding, a number out of
        # range) got past validation: the input is at fault, and nothing was stored.
        log.warning("input refused by the database", sqlstate=error.sqlstate)
        return problem_response(
            invalid(
                [
                    FieldProblem(
                        field="request",
                        code="invalid_input",
                        message="a value in the request cannot be stored or searched for",
                    )
                ],
                code="invalid_input",
            )
        )


def internal_error() -> Problem:
    """What the client learns of a failure of ours: nothing but the correlation id in its header
    (see `middleware.CorrelationIdMiddleware`, which answers every unhandled error)."""
    return Problem(500, "internal_error", "Internal error", "An unexpected error occurred.")


STREAM_DAMAGED = (
    "`case_stream_damaged`: the case's stored events cannot be read as they were written (a "
    "row altered behind the store's back); its audit names the version. `case_key_unusable`: "
    "its data key is missing or does not unwrap though it was never erased (its key row "
    "deleted, altered or restored from an older backup)."
)
"""The 409 of a route that reads a case's events (commands say it among their rule codes)."""

_PROBLEM_DESCRIPTIONS = {
    401: "Missing or bad bearer token (`unauthorized`).",
    403: "The caller's role may not do this (`forbidden`).",
    404: "No such resource, or not within the caller's institution subtree (`not_found`).",
    409: "A business rule refused the request; `code` names the rule (or "
    "`case_stream_damaged`: the case's stored events cannot be read as they were written; "
    "`case_key_unusable`: its data key is missing or altered though it was never erased).",
    410: "The case's personal data was erased (`personal_data_erased`).",
    412: "The resource moved on since the `If-Match` version (`precondition_failed`).",
    422: "Invalid request (`validation_failed`); `errors` lists each bad field.",
    503: "The database cannot be reached (`database_unavailable`), or this server's master key "
    "was rotated out and it awaits a restart with the new one (`master_key_rotated`), or the "
    "case is sealed under a cipher suite this server cannot run (`cipher_suite_unavailable`); "
    "retry after `Retry-After`.",
}

_TOO_LARGE = (
    "The body is larger than the limit (`payload_too_large`; `COMPLAINTCORE_MAX_BODY_BYTES`, 1 MiB "
    "by default), refused before it is read."
)

_PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: how to authenticate.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    412: {
        "ETag": {
            "description": 'The version the case is at now, `"<version>"` (absent when '
            "`If-Match` itself was malformed).",
            "schema": {"type": "string", "pattern": r'^"[0-9]+"$'},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, each a `ProblemDetails` body.

    `descriptions` overrides the generic description of a status for one route. Pass the result
    to a route's `responses=`; `install_problem_openapi` documents these bodies under
    `application/problem+json`, the media type they are served with.
    """
    described = {**_PROBLEM_DESCRIPTIONS, **(descriptions or {})}
    return {
        status: {
            "model": ProblemDetails,
            "description": described.get(status, ""),
            **({"headers": _PROBLEM_HEADERS[status]} if status in _PROBLEM_HEADERS else {}),
        }
        for status in statuses
    }


def install_problem_openapi(app: FastAPI) -> None:
    """Document every `ProblemDetails` response as `application/problem+json`.

    FastAPI files an extra response's model under the route's own media type (`application/json`);
    error bodies are served as `application/problem+json`, and clients generated from the schema
    must expect that.
    """
    build_schema = app.openapi
    problem_ref = {"$ref": "#/components/schemas/ProblemDetails"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build_schema()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if "requestBody" in operation:
                    # the request gate's answer, before any route reads the body (API.md
                    # "Conventions"; found undocumented by a review pass)
                    operation["responses"].setdefault(
                        "413",
                        {
                            "description": _TOO_LARGE,
                            # a dict of its own each: a YAML dump would alias a shared one
                            "content": {"application/json": {"schema": dict(problem_ref)}},
                        },
                    )
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get("application/json", {}).get("schema") == problem_ref:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
