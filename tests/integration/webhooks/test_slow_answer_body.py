"""A receiver that acknowledges a delivery with a 2xx status line (within the timeout)
but whose response body is slow to follow.

API.md "Webhooks": "Any 2xx acknowledges it; anything else (or no answer within 10 s) is
retried". The dispatcher reads a short answer's body only to keep the connection for the next
delivery (dispatcher.py's module note), so a body that trickles in after the status must not turn
an acknowledged delivery into a failed attempt (re-sent, and after 24 hours `failed`, holding
back the case's later alerts the whole time)."""

import asyncio

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
from webhook_support import Receiver, insert_alert, wait_for

ADMIN = Principal("admin-1", "admin", None)
LOOPBACK = AllowList.parse("127.0.0.1")
# long enough for a loopback answer on a loaded machine (0.5 s once expired before the receiver
# thread, in this busy process, had even read the request)
TIMEOUT_S = 2.0
BODY_DELAY_S = 4.0  # the body follows the 200 status line this long after it (> TIMEOUT_S)


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
    with Receiver(body_delay_s=BODY_DELAY_S) as receiver:
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
