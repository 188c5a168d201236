"""`openapi.yaml` at the repository root is what the app serves (API.md), and it is usable:
every operation named, described and secured, every body with an example the service accepts."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel

from complaintcore.api.app import create_app
from complaintcore.api.openapi_export import openapi_yaml
from complaintcore.infra.settings import Settings

OPENAPI_FILE = Path(__file__).parents[2] / "openapi.yaml"
STALE = "openapi.yaml is not what the app serves: run `make openapi` and commit the result"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    """`/openapi.json` as served; the lifespan (and so the database) is never started."""
    app = create_app("postgresql://openapi-test.invalid/unused", Settings.model_construct())
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_the_file_equals_the_served_document(served: dict[str, Any]) -> None:
    in_file = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert in_file == served, STALE


def test_the_file_is_byte_for_byte_what_make_openapi_writes(served: dict[str, Any]) -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == openapi_yaml(served), STALE


def test_every_operation_has_a_unique_snake_case_id_and_a_description(
    served: dict[str, Any],
) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in operations(served)]
    assert [i for i in ids if not SNAKE_CASE.match(i)] == []
    assert len(ids) == len(set(ids))
    undescribed = [
        f"{method} {path}"
        for path, method, operation in operations(served)
        if not operation.get("description")
    ]
    assert undescribed == []


def test_every_v1_operation_needs_the_bearer_token(served: dict[str, Any]) -> None:
    assert served["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": served["components"]["securitySchemes"]["bearer"]["description"],
    }
    unsecured = [
        f"{method} {path}"
        for path, method, operation in operations(served)
        if path.startswith("/v1/") and operation.get("security") != [{"bearer": []}]
    ]
    assert unsecured == []


def test_error_bodies_are_documented_as_problem_json(served: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    wrong = [
        f"{method} {path} {status}"
        for path, method, operation in operations(served)
        if path.startswith("/v1/")
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and response.get("content") != {"application/problem+json": {"schema": problem}}
    ]
    assert wrong == []


def _body_models() -> dict[str, type[BaseModel]]:
    """Every pydantic model of the package by class name, as FastAPI names its schema."""
    found: dict[str, type[BaseModel]] = {}
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("complaintcore."):
            found[model.__name__] = model
    return found


def _request_examples(served: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(operation id, body model name, example) for every request body example."""
    schemas = served["components"]["schemas"]
    for _, _, operation in operations(served):
        if "requestBody" not in operation:
            continue
        content = operation["requestBody"]["content"]["application/json"]
        name = content["schema"]["$ref"].rsplit("/", 1)[-1]
        for example in schemas[name].get("examples", []):
            yield operation["operationId"], name, example
        for named in content.get("examples", {}).values():
            yield operation["operationId"], name, named["value"]


def test_every_request_body_has_an_example(served: dict[str, Any]) -> None:
    with_body = {
        operation["operationId"]
        for _, _, operation in operations(served)
        if "requestBody" in operation
    }
    with_example = {operation_id for operation_id, _, _ in _request_examples(served)}
    assert with_body - with_example == set()


def test_every_request_example_is_a_valid_body(served: dict[str, Any]) -> None:
    models = _body_models()
    for operation_id, name, example in _request_examples(served):
        assert name in models, f"{operation_id}: no model named {name}"
        models[name].model_validate_json(json.dumps(example))
