"""The served OpenAPI document stays within the standard (issue 16, item 6): no keyword of
pydantic's own, the health routes open, a server named. `make lint-openapi` runs the linters."""

from typing import Any

from complaintcore.api.app import create_app
from complaintcore.api.openapi_standard import standard_openapi


def _keys(node: Any, names: bool = False) -> set[str]:
    """Every keyword of the document (not the names of properties, schemas, paths)."""
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set() if names else set(node)
    for key, value in node.items():
        found |= _keys(value, names=not names and key in {"properties", "schemas", "paths"})
    return found


def test_the_served_document_has_no_pydantic_keyword_and_open_health_routes() -> None:
    document = create_app("postgresql://unused/unused").openapi()

    assert not _keys(document) & {"ge", "le", "gt", "lt"}
    for path in ("/healthz", "/readyz"):
        assert document["paths"][path]["get"]["security"] == []
    assert document["servers"] == [
        {"url": "/", "description": "The deployment serving this document."}
    ]
    year = document["paths"]["/v1/calendars/{year}"]["get"]["parameters"][0]["schema"]
    assert (year["minimum"], year["maximum"]) == (1949, 2100)


def test_a_date_s_bounds_move_into_its_description_and_a_property_named_like_one_stays() -> None:
    document = {
        "components": {
            "schemas": {
                "Body": {
                    "properties": {
                        "on": {"type": "string", "format": "date", "ge": "1990-01-01",
                               "le": "2100-12-31", "description": "A day."},
                        "ge": {"type": "integer", "ge": 1},
                    }
                }
            }
        }
    }  # fmt: skip

    properties = standard_openapi(document)["components"]["schemas"]["Body"]["properties"]

    assert properties["on"] == {
        "type": "string",
        "format": "date",
        "description": "A day. From 1990-01-01 to 2100-12-31.",
    }
    assert properties["ge"] == {"type": "integer", "minimum": 1}
