"""A receiver that acknowledges a delivery with a 2xx status line (within the timeout)
but whose response body is slow to follow.

API.md "Webhooks": "Any 2xx acknowledges it; anything else (or no answer within 10 s) is
retried". The dispatcher reads a short answer's body only to keep the connection for the next
delivery (dispatcher.py's module note), so a body that trickles in after the status must not turn
an acknowledged delivery into a failed attempt (re-sent, and after 24 hours `failed`, holding
back the case's later alerts the whole time)."""

import asyncio
import threading

import asyncpg
import pytest

from complaintcore.auth.principals import Principal
from complaintcore.crypto.keys import FileKeyProvider
from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks.dispatcher import Dispatcher, RetryPolicy
from complaintcore.webhooks.fanout import fan_out_once
from complaintcore.webhooks.signing import load_secret_box
from complaintcore.webhooks.subscriptions import SubscriptionStore
from complaintcore.webhooks.urls import AllowList
from testsupport import session_master_key_file
from webhook_support import insert_alert, wait_for

ADMIN = Principal("admin-1", "admin", None)
LOOPBACK = AllowList.parse("127.0.0.1")
TIMEOUT_S = 0.5
BODY_DELAY_S = 1.5  # the body follows the 200 status line this long after it (> TIMEOUT_S)


class SlowBodyReceiver:
    """HTTP/1.1 on loopback, in a thread: answers each POST at once with `200` and its headers
    (`Content-Length: 2`), then sends the two body bytes `BODY_DELAY_S` later."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def __enter__(self) -> "SlowBodyReceiver":
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None

        async def close_all() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.received.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(BODY_DELAY_S)
                writer.write(b"ok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(task)
            writer.close()


@pytest.fixture
async def subscribed(pool: asyncpg.Pool):
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office", None)
    box = await load_secret_box(pool, FileKeyProvider(session_master_key_file()), "aes-256-gcm")
    return pool, SubscriptionStore(pool, directory, box), box


async def test_a_2xx_status_within_the_timeout_acknowledges_even_if_its_body_is_slow(
    subscribed,
) -> None:
    pool, store, box = subscribed
    with SlowBodyReceiver() as receiver:
        await store.create(ADMIN, receiver.url, "HO", ["*"], None)
        await insert_alert(pool, "case.received", "c-1", "HO")
        async with pool.acquire() as connection:
            assert (await fan_out_once(connection))[1] == 1
        dispatcher = Dispatcher(
            pool,
            box,
            LOOPBACK,
            retry=RetryPolicy(base_s=0.05, cap_s=0.1, window_s=60),
            poll_s=0.02,
            timeout_s=TIMEOUT_S,
        )
        task = asyncio.create_task(dispatcher.run())
        try:
            # the first attempt's outcome is written (bounded)
            await wait_for(
                lambda: pool.fetchval("SELECT attempts >= 1 FROM webhook_deliveries"), 10
            )
            row = await pool.fetchrow(
                "SELECT status, attempts, last_status_code, last_error FROM webhook_deliveries"
            )
        finally:
            await cancel_and_wait([task])

    # the receiver answered 200 within the timeout: acknowledged, recorded as such, sent once
    outcome = (row["status"], row["last_status_code"], row["last_error"])
    sends = len(receiver.received)
    assert outcome == ("delivered", 200, None), f"recorded {outcome} after {sends} send(s)"
    assert sends == 1
