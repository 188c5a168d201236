"""HEAD is answered wherever GET is, with GET's headers and no body (RFC 9110 9.1, 9.3.2): a
balancer's HEAD probe or `curl -I` got 405 (found by a review pass). Over a real socket, as
uvicorn frames the answer."""

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from test_metrics import METRICS_TOKEN, SCRAPER, samples, value

from api_support import asgi_client, receive, started_app
from complaintcore.infra.settings import get_settings
from testsupport import LiveService


def test_head_is_answered_as_get_without_the_body(live: LiveService) -> None:
    anonymous, staff = live.client(), live.client("staff_a")
    case = receive(staff)
    for client, path in ((anonymous, "/healthz"), (staff, f"/v1/complaints/{case['id']}")):
        got, head = client.get(path), client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers.get("etag") == got.headers.get("etag")


def test_head_of_a_route_that_takes_no_get_is_405_naming_what_it_takes(
    live: LiveService,
) -> None:
    staff = live.client("staff_a")
    case = receive(staff)
    refused = staff.head(f"/v1/complaints/{case['id']}/assign")
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"


# found by a review of the middleware: a HEAD counted as an unmatched route, a 405 not naming it
@pytest.fixture
async def client(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    settings = get_settings().model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    async with started_app(database_url, settings) as app, asgi_client(app) as client:
        yield client


async def test_head_is_counted_under_its_route(client: httpx.AsyncClient) -> None:
    before = samples((await client.get("/metrics", headers=SCRAPER)).text)
    assert (await client.head("/healthz")).status_code == 200
    after = samples((await client.get("/metrics", headers=SCRAPER)).text)
    name = "complaintcore_http_requests_total"

    def grew(**labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(method="HEAD") == 1
    assert grew(route="/healthz", method="HEAD") == 1, {
        "unmatched HEAD": grew(route="unmatched", method="HEAD")
    }


async def test_405_of_a_get_route_names_head_too(client: httpx.AsyncClient) -> None:
    # HEAD is answered there now, so the Allow of a 405 lists it (RFC 9110 15.5.6: "the target
    # resource's currently supported methods")
    assert (await client.head("/healthz")).status_code == 200
    refused = await client.post("/healthz")
    assert refused.status_code == 405
    assert {m.strip() for m in refused.headers["allow"].split(",")} == {"GET", "HEAD"}
