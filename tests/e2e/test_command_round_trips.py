"""A command on a case costs two round trips to PostgreSQL (issue 17): one that takes the case's
lock and reads what the decision needs, one that writes and commits. Counted on the wire, by a
loopback proxy between the service and its database, so nothing the driver does unseen (a BEGIN,
a COMMIT, a statement prepared) escapes the count."""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI

from api_support import app_client, asgi_client, complaint, days_ago, notice, started_app
from complaintcore.infra.settings import get_settings
from projection_support import tree_and_tokens

PROTOCOL_3 = 196608  # a StartupMessage's protocol version; before it, messages carry no type
ENDS_A_ROUND_TRIP = (b"S", b"Q")  # Sync (extended protocol) and Query (simple protocol)
NOTE = {"subject": "progress", "notice": notice(days_ago(0)), "summary": "处理进展"}


class RoundTripCounter:
    """A proxy on 127.0.0.1 in front of PostgreSQL that counts the client's round trips: the
    messages after which a client waits for the server's ReadyForQuery."""

    def __init__(self, database_url: str) -> None:
        self.round_trips = 0
        self.port = 0
        self._database_url = database_url
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open_upstream()
        for pump in (self._count(reader, up_writer), self._pass(up_reader, writer)):
            task = asyncio.create_task(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The database's own address: a TCP one, or a Unix socket's folder (`?host=`)."""
        parts = urlsplit(self._database_url)
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
        port = int(query.get("port", [parts.port or 5432])[0])
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    def url(self) -> str:
        """`database_url` through the proxy."""
        parts = urlsplit(self._database_url)
        user = parts.username or "postgres"
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{self.port}", parts.path, "", ""))

    async def _pass(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _count(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer, started = b"", False
        try:
            while data := await reader.read(65536):
                writer.write(data)
                buffer += data
                buffer, started = self._counted(buffer, started)
                await writer.drain()
        finally:
            writer.close()

    def _counted(self, buffer: bytes, started: bool) -> tuple[bytes, bool]:
        """Count the whole messages at the start of `buffer`; the rest, and whether the
        startup is done."""
        while True:
            if not started:  # SSLRequest or StartupMessage: length, then a code
                if len(buffer) < 8 or len(buffer) < int.from_bytes(buffer[:4], "big"):
                    return buffer, started
                started = int.from_bytes(buffer[4:8], "big") == PROTOCOL_3
                buffer = buffer[int.from_bytes(buffer[:4], "big") :]
                continue
            if len(buffer) < 5 or len(buffer) < 1 + int.from_bytes(buffer[1:5], "big"):
                return buffer, started
            if buffer[:1] in ENDS_A_ROUND_TRIP:
                self.round_trips += 1
            buffer = buffer[1 + int.from_bytes(buffer[1:5], "big") :]


@pytest.fixture
async def counter(database_url: str) -> AsyncIterator[RoundTripCounter]:
    counting = RoundTripCounter(database_url)
    await counting.start()
    yield counting
    await counting.stop()


@pytest.fixture
async def app(database_url: str, counter: RoundTripCounter) -> AsyncIterator[FastAPI]:
    # one pooled connection: every request meets the statements it prepared before
    settings = get_settings().model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
    async with started_app(counter.url(), settings, runners_in_process=False) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def staff(database_url: str) -> dict[str, str]:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    return {"Authorization": f"Bearer {tokens['staff']}"}


async def noted_case(client: httpx.AsyncClient, staff: dict[str, str], **headers: str) -> str:
    """The notes path of a new case, noted once with `headers` (the first command of this
    process on the case prepares its statements and reads the case)."""
    created = await client.post("/v1/complaints", json=complaint("BR-A"), headers=staff)
    assert created.status_code == 201, created.text
    path = f"/v1/complaints/{created.json()['id']}/notify"
    noted = await client.post(path, json=NOTE, headers={**staff, **headers})
    assert noted.status_code == 200, noted.text
    return path


async def noted_elsewhere(database_url: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """The note sent to another process of the service (an app of its own)."""
    async with app_client(database_url) as elsewhere:
        return await elsewhere.post(path, json=NOTE, headers=headers)


async def round_trips_of(
    counter: RoundTripCounter, send: Awaitable[httpx.Response]
) -> tuple[int, httpx.Response]:
    before = counter.round_trips
    response = await send
    return counter.round_trips - before, response


async def test_a_command_on_a_case_is_two_round_trips(
    client: httpx.AsyncClient, counter: RoundTripCounter, staff: dict[str, str]
) -> None:
    path = await noted_case(client, staff)

    for _ in range(3):
        spent, response = await round_trips_of(counter, client.post(path, json=NOTE, headers=staff))
        assert response.status_code == 200, response.text
        assert spent == 2


async def test_with_an_idempotency_key_and_for_another_process_s_events_still_two(
    client: httpx.AsyncClient, counter: RoundTripCounter, staff: dict[str, str], database_url: str
) -> None:
    path = await noted_case(client, staff, **{"Idempotency-Key": "warm-up"})

    # another process writes the case meanwhile: the first round trip brings its event too
    assert (await noted_elsewhere(database_url, path, staff)).status_code == 200

    keyed = {**staff, "Idempotency-Key": "counted"}
    spent, response = await round_trips_of(counter, client.post(path, json=NOTE, headers=keyed))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 4
    assert spent == 2
    # and the answer replayed for the same key is the one stored by the second round trip
    again = await client.post(path, json=NOTE, headers=keyed)
    assert again.json() == response.json()
    assert again.headers["Consistency-Position"] == response.headers["Consistency-Position"]

    # the replay gave the case's lock back: another process's command goes through
    after = await asyncio.wait_for(noted_elsewhere(database_url, path, staff), timeout=20)
    assert after.status_code == 200, after.text


async def test_a_refused_command_releases_the_lock_and_the_next_one_goes_through(
    client: httpx.AsyncClient, counter: RoundTripCounter, staff: dict[str, str]
) -> None:
    path = await noted_case(client, staff)
    stale = {**staff, "If-Match": '"1"'}
    spent, refused = await round_trips_of(counter, client.post(path, json=NOTE, headers=stale))
    assert refused.status_code == 412, refused.text
    assert spent == 2  # the read under the lock, and the lock given back

    done = await asyncio.wait_for(client.post(path, json=NOTE, headers=staff), timeout=10)
    assert done.status_code == 200, done.text
