"""What still fails inside the app is answered as problem+json: a 500 that carries its correlation
id (and keeps the connection), and a value the database refuses as a 422."""

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from complaintcore.api.app import create_app
from complaintcore.infra.settings import Settings


@pytest.fixture
def app() -> FastAPI:
    app = create_app("postgresql://unexpected-test.invalid/unused", Settings.model_construct())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a defect of ours")

    @app.get("/refused-by-the-database")
    async def refused_by_the_database() -> None:
        raise asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8")

    return app


def test_an_unhandled_error_is_a_500_problem_with_the_correlation_id(app: FastAPI) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom", headers={"X-Correlation-Id": "probe-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-correlation-id"] == "probe-500"
    assert response.json()["code"] == "internal_error"
    assert "defect" not in response.text


def test_an_unhandled_error_is_not_raised_to_the_server(app: FastAPI) -> None:
    """A server sees an exception escaping the app as a broken connection and drops it."""
    response = TestClient(app, raise_server_exceptions=True).get("/boom")
    assert response.status_code == 500


def test_a_value_the_database_refuses_is_a_422(app: FastAPI) -> None:
    response = TestClient(app).get("/refused-by-the-database")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"
    assert response.headers["x-correlation-id"]
