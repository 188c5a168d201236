"""`GET /metrics` (issue 16, item 4): the Prometheus text, parsed by prometheus_client's own
parser, with the named series and bounded labels; scraping needs the metrics token (or, without
one, a loopback client); with `serve --workers 2` one scrape counts every worker's requests."""

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from api_support import asgi_client, complaint, days_ago, started_app
from complaintcore.api.app import create_app
from complaintcore.application.business_day import shanghai_today
from complaintcore.auth.tokens import create_token
from complaintcore.infra.settings import get_settings
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import live_service

METRICS_TOKEN = "scrape-me-3c1f"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
CASE_ROUTE = "/v1/complaints/{case_id}"


@pytest.fixture
async def app(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[FastAPI]:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    settings = get_settings().model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    async with started_app(database_url, settings) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def samples(text: str) -> dict[str, list[Sample]]:
    """Every sample of the scrape by sample name (`..._total`, `..._bucket`, ...)."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    return sum(
        sample.value
        for sample in found.get(name, [])
        if all(sample.labels.get(key) == wanted for key, wanted in labels.items())
    )


async def test_the_scrape_shows_requests_commands_store_pool_lags_and_clocks(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    staff = {"Authorization": f"Bearer {await create_token(pool, 'staff-a1', 'staff', 'BR-A')}"}
    before = samples((await client.get("/metrics", headers=SCRAPER)).text)
    cases = []
    for _ in range(3):
        received = await client.post("/v1/complaints", json=complaint(), headers=staff)
        assert received.status_code == 201, received.text
        cases.append(received.json())
    for case in cases:
        assert (await client.get(f"/v1/complaints/{case['id']}", headers=staff)).status_code == 200
    withdraw = {"received_on": days_ago(0), "reason": "已协商"}
    path = f"/v1/complaints/{cases[0]['id']}/withdraw"
    assert (await client.post(path, json=withdraw, headers=staff)).status_code == 200
    refused = await client.post(path, json=withdraw, headers=staff)  # closed: case_closed
    assert refused.status_code == 409, refused.text
    assert (await client.get("/no/such/path")).status_code == 404

    scrape = await client.get("/metrics", headers=SCRAPER)
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    after = samples(scrape.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "complaintcore_http_requests_total"
    assert grew(requests, route="/v1/complaints", method="POST", status="201") == 3
    assert grew(requests, route=CASE_ROUTE, method="GET", status="200") == 3
    # a command the lane answers is counted under its route's template too
    withdraw_route = "/v1/complaints/{case_id}/withdraw"
    assert grew(requests, route=withdraw_route, method="POST", status="200") == 1
    assert grew(requests, route=withdraw_route, method="POST", status="409") == 1
    assert grew(requests, route="unmatched", method="GET", status="404") == 1
    routes = {sample.labels["route"] for sample in after[requests]}
    assert not any(case["id"] in route for case in cases for route in routes)  # no raw paths
    duration = "complaintcore_http_request_duration_seconds"
    assert grew(f"{duration}_count", route=CASE_ROUTE, method="GET") == 3
    assert grew(f"{duration}_bucket", route=CASE_ROUTE, method="GET", le="+Inf") == 3
    assert value(after, f"{duration}_sum", route=CASE_ROUTE, method="GET") > 0

    commands = "complaintcore_commands_total"
    assert grew(commands, command="receive_complaint", outcome="accepted", code="") == 3
    assert grew(commands, command="withdraw_complaint", outcome="accepted", code="") == 1
    assert grew(commands, command="withdraw_complaint", outcome="refused", code="case_closed") == 1

    assert grew("complaintcore_store_appends_total") >= 4
    batch = "complaintcore_store_group_commit_batch_size"
    assert {f"{batch}_count", f"{batch}_sum", f"{batch}_bucket"} <= after.keys()

    connections = {s.labels["state"]: s.value for s in after["complaintcore_db_pool_connections"]}
    assert connections.keys() == {"in_use", "idle", "size"}
    assert connections["size"] >= 1
    assert connections["in_use"] + connections["idle"] == connections["size"]

    assert value(after, "complaintcore_scrape_database_up") == 1
    lags = {s.labels["projection"] for s in after["complaintcore_projection_lag_events"]}
    assert lags == {"statistics", "alerts"}
    assert all(s.value >= 0 for s in after["complaintcore_projection_lag_events"])
    states = {s.labels["state"] for s in after["complaintcore_webhook_deliveries"]}
    assert states == {"open", "retrying", "due", "in_flight", "failed"}
    assert "complaintcore_webhook_fanout_lag_alerts" in after
    assert "complaintcore_webhook_oldest_unsent_age_seconds" in after
    clocks = {
        (s.labels["head_office"], s.labels["status"]): s.value
        for s in after["complaintcore_open_clocks"]
    }
    assert clocks[("HO", "open")] == 2  # one of the three was withdrawn: its clock stopped
    assert clocks[("HO", "overdue")] == 0


async def test_scraping_needs_the_metrics_token(client: httpx.AsyncClient) -> None:
    missing = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-it"})
    right = await client.get("/metrics", headers=SCRAPER)

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_without_a_token_only_loopback_clients_may_scrape(
    database_url: str, pool: asyncpg.Pool
) -> None:
    settings = get_settings().model_copy(update={"metrics_token": None})
    app = create_app(database_url, settings)
    async with app.router.lifespan_context(app):
        answers = {}
        for address in ("127.0.0.1", "::1", "10.1.2.3"):
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as c:
                answers[address] = (await c.get("/metrics")).status_code

    assert answers == {"127.0.0.1": 200, "::1": 200, "10.1.2.3": 403}


def test_metrics_stay_out_of_the_http_contract(app: FastAPI) -> None:
    assert "/metrics" not in app.openapi()["paths"]


async def test_one_scrape_counts_the_requests_of_every_worker(
    database_url: str, tmp_path: Path
) -> None:
    env = {"COMPLAINTCORE_METRICS_TOKEN": METRICS_TOKEN}
    with live_service(database_url, {}, tmp_path, ("--workers", "2"), **env) as service:
        pids = set()
        for _ in range(40):
            # a connection of its own each: the kernel spreads them over both workers
            with httpx.Client(base_url=service.base_url) as fresh:
                assert fresh.get("/healthz").status_code == 200
        for _ in range(10):
            with httpx.Client(base_url=service.base_url) as fresh:
                scrape = fresh.get("/metrics", headers=SCRAPER)
                assert scrape.status_code == 200
                found = samples(scrape.text)
                pids |= {s.labels["pid"] for s in found["complaintcore_db_pool_connections"]}
                counted = value(found, "complaintcore_http_requests_total", route="/healthz")
                assert counted == 40

    assert len(pids) == 2  # the pool gauge: one series per live worker


async def test_the_scrape_says_how_far_ahead_the_holiday_calendar_reaches(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """An operator alerts before date computations reach a year with no holiday data (each is
    refused `calendar_year_missing`): the gauge moves as soon as the next year is loaded."""
    gauge = "complaintcore_calendar_known_through_year"
    before = value(samples((await client.get("/metrics", headers=SCRAPER)).text), gauge)
    assert before >= shanghai_today().year  # the seed covers the current year at least

    admin = {"Authorization": f"Bearer {await create_token(pool, 'adm-1', 'admin', None)}"}
    next_year = int(before) + 1
    loaded = await client.put(
        f"/v1/calendars/{next_year}",
        json={"holidays": [f"{next_year}-01-01"], "adjusted_working_days": []},
        headers=admin,
    )
    assert loaded.status_code in (200, 201), loaded.text
    after = value(samples((await client.get("/metrics", headers=SCRAPER)).text), gauge)
    assert after == next_year


async def test_a_scrape_whose_database_reads_are_cancelled_still_answers(
    database_url: str, pool: "asyncpg.Pool"
) -> None:
    """A scrape-time statement the server refuses (a DBA's `lock_timeout` on the role, met while
    a migration, `VACUUM FULL` or a rebuild's swap holds a table) leaves the counted series
    answered, with `complaintcore_scrape_database_up` 0 (found by a review pass: a 500 that
    lost every series an operator alerts on)."""
    from prometheus_client.parser import text_string_to_metric_families

    from api_support import asgi_client, started_app

    database = await pool.fetchval("SELECT current_database()")  # the URL may carry a query
    async with started_app(database_url) as app, asgi_client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        # the DBA's setting, read by the scrape pool's next connection (min_size=0)
        await pool.execute(f"ALTER DATABASE \"{database}\" SET lock_timeout = '200ms'")
        await app.state.scrape_pool.expire_connections()
        holder = await pool.acquire()
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE")
            scrape = await client.get("/metrics")
            await transaction.rollback()
        finally:
            await pool.release(holder)
            await pool.execute(f'ALTER DATABASE "{database}" RESET lock_timeout')

    assert scrape.status_code == 200, scrape.text
    families = {family.name: family for family in text_string_to_metric_families(scrape.text)}
    assert "complaintcore_http_requests" in families
    (up,) = families["complaintcore_scrape_database_up"].samples
    assert up.value == 0


def test_a_worker_killed_and_restarted_leaves_no_pool_gauge_behind(
    database_url: str, tmp_path: Path
) -> None:
    """`complaintcore_db_pool_connections{state,pid}` is each live worker's pool (README
    "Metrics"): a worker killed without its lifespan's shutdown (the OOM killer, uvicorn ending
    one that stopped answering) left its gauge file, and every scrape summed its pool in (found
    by a review pass)."""
    env = {"COMPLAINTCORE_METRICS_TOKEN": METRICS_TOKEN}

    def pool_pids(service: Any) -> set[str]:
        with httpx.Client(base_url=service.base_url) as fresh:
            scrape = fresh.get("/metrics", headers=SCRAPER)
        assert scrape.status_code == 200
        found = samples(scrape.text)
        return {s.labels["pid"] for s in found.get("complaintcore_db_pool_connections", [])}

    with live_service(database_url, {}, tmp_path, ("--workers", "2"), **env) as service:
        deadline = time.monotonic() + 20
        pids: set[str] = set()
        while len(pids) < 2 and time.monotonic() < deadline:
            pids = pool_pids(service)
            time.sleep(0.3)
        assert len(pids) == 2, pids
        dead = sorted(pids)[0]
        os.kill(int(dead), signal.SIGKILL)
        deadline = time.monotonic() + 30
        now = pids
        while time.monotonic() < deadline:
            now = pool_pids(service)
            if now - pids:  # the worker uvicorn started in its place reports its pool
                break
            time.sleep(0.5)
        assert now - pids, "no new worker reported its pool"
        time.sleep(1.5)
        now = pool_pids(service)

    assert dead not in now, f"pool gauge of dead worker {dead} still scraped: pids {sorted(now)}"
