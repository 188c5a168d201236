"""OpenAPI descriptions of the headers routes answer with, written once for every route."""

from typing import Any


def location_header(description: str, pattern: str | None = None) -> dict[str, Any]:
    """The `Location` header a 201 (or a created `PUT`) answers with: `description` says what it
    names, `pattern` (when given) what its value looks like."""
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"Location": {"description": description, "required": True, "schema": schema}}
