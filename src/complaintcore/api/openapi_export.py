"""The app's OpenAPI document as YAML: what `openapi.yaml` at the repository root holds.

`make openapi` regenerates that file (`python -m complaintcore.api.openapi_export > openapi.yaml`);
`tests/unit/test_openapi_file.py` fails when it no longer equals what the app serves.
"""

import sys
from typing import Any

import yaml

from complaintcore.api.app import create_app
from complaintcore.infra.settings import Settings

# The schema is built from the routes alone: the lifespan, which opens the pool, never runs.
_NO_DATABASE = "postgresql://openapi-export.invalid/unused"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document `/openapi.json` serves, built without a database."""
    return create_app(_NO_DATABASE, Settings.model_construct()).openapi()


def openapi_yaml(document: dict[str, Any] | None = None) -> str:
    """The document as YAML text, the same bytes for the same routes and models.

    Paths and component schemas are sorted by name, so the order routers are included in does not
    show; inside an operation or a model the order is the code's (fields as declared).
    """
    return yaml.safe_dump(
        _sorted_by_name(document if document is not None else openapi_document()),
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def _sorted_by_name(document: dict[str, Any]) -> dict[str, Any]:
    ordered = dict(document)
    ordered["paths"] = dict(sorted(document.get("paths", {}).items()))
    if "components" in document:
        ordered["components"] = {
            section: dict(sorted(entries.items()))
            for section, entries in sorted(document["components"].items())
        }
    return ordered


def main() -> None:
    sys.stdout.write(openapi_yaml())


if __name__ == "__main__":
    main()
