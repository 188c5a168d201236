"""The served OpenAPI document kept within the OpenAPI 3.1 standard, so that `@redocly/cli lint`
and `@stoplight/spectral-cli lint` (spectral:oas) find no error (`make lint-openapi`).

pydantic writes a bound it cannot express in JSON Schema under its own keyword: `ge`/`le` on a
date (and on an integer whose validator runs first, such as the calendar's year). An integer's
bounds become `minimum`/`maximum`; a date's, which JSON Schema cannot bound, move into its
description. The health routes take no token (`security: []`), the document names its server
(the deployment it is served from, `/`) and declares the tags its operations use.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_NUMERIC_BOUNDS = {
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusiveMinimum",
    "lt": "exclusiveMaximum",
}
_UNAUTHENTICATED_PATHS = ("/healthz", "/readyz")
SERVERS = [{"url": "/", "description": "The deployment serving this document."}]


def install_standard_openapi(app: FastAPI) -> None:
    """Wrap `app.openapi` (after the other document hooks) with `standard_openapi`."""
    build_schema: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        app.openapi_schema = standard_openapi(build_schema())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def standard_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with pydantic's own keywords replaced, the health routes open, a server."""
    _replace_bounds(document)
    for path in _UNAUTHENTICATED_PATHS:
        for operation in document.get("paths", {}).get(path, {}).values():
            operation["security"] = []
    if not document.get("servers"):
        document["servers"] = SERVERS
    if "tags" not in document:  # every tag an operation uses, declared (the docs' sections)
        used = {tag for item in document.get("paths", {}).values() for op in item.values()
                for tag in op.get("tags", ())}  # fmt: skip
        document["tags"] = [{"name": tag} for tag in sorted(used)]
    return document


def _replace_bounds(node: Any, names: bool = False) -> None:
    """Walk the document; `names`: `node` maps names to schemas (`properties`, `schemas`, …),
    so its keys are names, never keywords."""
    if isinstance(node, list):
        for item in node:
            _replace_bounds(item)
        return
    if not isinstance(node, dict):
        return
    bounds = {} if names else {key: node.pop(key) for key in list(_NUMERIC_BOUNDS) if key in node}
    if bounds:
        if node.get("type") in ("integer", "number"):
            node.update({_NUMERIC_BOUNDS[key]: value for key, value in bounds.items()})
        else:
            node["description"] = _with_range(node.get("description", ""), bounds)
    for key, value in node.items():
        _replace_bounds(value, names=not names and key in _NAME_MAPS)


_NAME_MAPS = frozenset({"properties", "schemas", "paths", "responses", "examples", "headers"})


def _with_range(description: str, bounds: dict[str, Any]) -> str:
    words = {"ge": "from", "gt": "after", "le": "to", "lt": "before"}
    text = " ".join(f"{words[key]} {value}" for key, value in bounds.items())
    sentence = text[0].upper() + text[1:] + "."
    return f"{description} {sentence}".strip()
