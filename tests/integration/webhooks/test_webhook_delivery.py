"""Webhook fan-out and dispatch on a real PostgreSQL, to a real HTTP receiver on loopback
(API.md "Webhooks"): signed, in order per case, at least once, retried with back-off, the URL
checked again at each delivery, the secret never in clear in the database."""

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs

from complaintcore.auth.principals import Principal
from complaintcore.crypto.keys import FileKeyProvider
from complaintcore.crypto.suites import CiphertextRejected
from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks import clients as clients_module
from complaintcore.webhooks.dispatcher import _CLAIM, Dispatcher, RetryPolicy
from complaintcore.webhooks.fanout import DeliveryStatistics, fan_out_once
from complaintcore.webhooks.runtime import run_fanout
from complaintcore.webhooks.signing import SecretBox, SecretKeyring, load_secret_box, new_secret
from complaintcore.webhooks.subscriptions import SubscriptionStore
from complaintcore.webhooks.urls import AllowList, check_url
from testsupport import free_port, session_master_key_file
from webhook_support import Receiver, insert_alert, verify_signature, wait_for

ADMIN = Principal("admin-1", "admin", None)
TREE = [
    ("HO", "总行", "head_office", None),
    ("BR-A", "上海分行", "branch", "HO"),
    ("BR-B", "北京分行", "branch", "HO"),
    ("SUB-A1", "浦东支行", "sub_branch", "BR-A"),
]
LOOPBACK = AllowList.parse("127.0.0.1")
FAST = RetryPolicy(base_s=0.05, cap_s=0.2, window_s=60)


@dataclass
class Desk:
    pool: asyncpg.Pool
    store: SubscriptionStore
    box: SecretBox

    async def subscribe(
        self, url: str, institution: str = "HO", events: tuple[str, ...] = ("*",)
    ) -> tuple[str, str]:
        subscription, secret = await self.store.create(ADMIN, url, institution, events, None)
        return subscription.id, secret.value

    async def three_major_alerts_for(self, url: str) -> None:
        """A subscription of `url` and three cases' `case.major` alerts, fanned out to it."""
        await self.subscribe(url)
        for case in ("c-1", "c-2", "c-3"):
            await insert_alert(self.pool, "case.major", case, "BR-A")
        await self.fan_out()

    async def fan_out(self) -> int:
        async with self.pool.acquire() as connection:
            _, made = await fan_out_once(connection)
        return made

    async def statuses(self) -> dict[str, str]:
        rows = await self.pool.fetch("SELECT delivery_id::text, status FROM webhook_deliveries")
        return {row["delivery_id"]: row["status"] for row in rows}

    async def all_delivered(self, count: int) -> bool:
        statuses = await self.statuses()
        return len(statuses) == count and set(statuses.values()) == {"delivered"}

    @asynccontextmanager
    async def dispatching(
        self, allow: AllowList = LOOPBACK, **options
    ) -> AsyncIterator[Dispatcher]:
        options.setdefault("retry", FAST)
        options.setdefault("poll_s", 0.02)
        options.setdefault("timeout_s", 5.0)
        dispatcher = Dispatcher(self.pool, self.box, allow, **options)
        task = asyncio.create_task(dispatcher.run())
        try:
            yield dispatcher
        finally:
            await cancel_and_wait([task])


@pytest.fixture
async def desk(pool: asyncpg.Pool) -> Desk:
    directory = InstitutionDirectory(pool)
    for code, name, kind, parent in TREE:
        await directory.put(code, name, kind, parent)
    box = await load_secret_box(pool, FileKeyProvider(session_master_key_file()), "aes-256-gcm")
    return Desk(pool, SubscriptionStore(pool, directory, box), box)


async def test_a_delivery_is_signed_with_the_secret_and_carries_the_alert(desk: Desk) -> None:
    with Receiver() as receiver:
        _, secret = await desk.subscribe(receiver.url)
        await insert_alert(desk.pool, "case.received", "c-1", "SUB-A1", "SUB-A1-2026-000001")
        assert await desk.fan_out() == 1
        async with desk.dispatching():
            await wait_for(lambda: desk.all_delivered(1))

    [received] = receiver.received
    assert verify_signature(secret, received)
    assert not verify_signature("whsec_other", received)
    body = received.json
    assert set(body) == {
        "delivery_id",
        "event",
        "occurred_at",
        "institution",
        "case_id",
        "registration_no",
        "data",
    }
    assert (body["event"], body["case_id"], body["institution"]) == (
        "case.received",
        "c-1",
        "SUB-A1",
    )
    assert body["registration_no"] == "SUB-A1-2026-000001"
    assert body["occurred_at"].endswith("Z")
    assert body["delivery_id"] in await desk.statuses()
    assert received.headers["content-type"] == "application/json"


async def test_alerts_fan_out_to_subscriptions_of_their_institution_or_an_ancestor_and_event(
    desk: Desk,
) -> None:
    url = "http://127.0.0.1:9/hooks"
    everything_at_ho, _ = await desk.subscribe(url, "HO")
    decided_at_br_a, _ = await desk.subscribe(url, "BR-A", ("case.decided",))
    at_br_b, _ = await desk.subscribe(url, "BR-B")
    deleted, _ = await desk.subscribe(url, "HO")
    assert await desk.store.delete(deleted)

    await insert_alert(desk.pool, "case.received", "c-1", "SUB-A1")
    await insert_alert(desk.pool, "case.decided", "c-1", "SUB-A1")
    assert await desk.fan_out() == 3
    assert await desk.fan_out() == 0  # the checkpoint moved with the rows

    rows = await desk.pool.fetch(
        "SELECT subscription_id::text, event FROM webhook_deliveries ORDER BY alert_id"
    )
    got = {(row["subscription_id"], row["event"]) for row in rows}
    assert got == {
        (everything_at_ho, "case.received"),
        (everything_at_ho, "case.decided"),
        (decided_at_br_a, "case.decided"),
    }
    assert at_br_b not in {row["subscription_id"] for row in rows}


async def test_a_receiver_answering_500_then_200_gets_every_delivery_in_order_per_case(
    desk: Desk,
) -> None:
    answers = iter([500, 500, 503, 500, 404, 500])
    with Receiver(answer=lambda _: next(answers, 200)) as receiver:
        await desk.subscribe(receiver.url)
        order: dict[str, list[int]] = {}
        for _ in range(4):
            for case in ("c-1", "c-2", "c-3"):
                alert = await insert_alert(desk.pool, "case.overdue", case, "BR-A")
                order.setdefault(case, []).append(alert)
        await desk.fan_out()
        async with desk.dispatching():
            await wait_for(lambda: desk.all_delivered(12))

    alert_of = {
        row["delivery_id"]: row["alert_id"]
        for row in await desk.pool.fetch(
            "SELECT delivery_id::text, alert_id FROM webhook_deliveries"
        )
    }
    for case, alerts in order.items():
        seen = [
            alert_of[r.json["delivery_id"]] for r in receiver.received if r.json["case_id"] == case
        ]
        assert seen == sorted(seen), f"{case} out of order: {seen}"
        assert list(dict.fromkeys(seen)) == alerts
    attempts = await desk.pool.fetchval("SELECT sum(attempts) FROM webhook_deliveries")
    assert attempts == len(receiver.received) == 12 + 6


async def test_outcomes_written_together_are_each_right_and_connections_are_kept(
    desk: Desk,
) -> None:
    """Forty cases at once, every other one answered 500 the first time: each outcome (written
    in batches with others) lands on its own delivery, and the sends reuse kept-alive
    connections instead of opening one each."""
    first_seen: set[str] = set()

    def answer(received) -> int:
        case = received.json["case_id"]
        if int(case.split("-")[1]) % 2 and case not in first_seen:
            first_seen.add(case)
            return 500
        return 200

    with Receiver(answer=answer) as receiver:
        await desk.subscribe(receiver.url)
        for n in range(40):
            await insert_alert(desk.pool, "case.overdue", f"c-{n}", "BR-A")
        await desk.fan_out()
        async with desk.dispatching():
            await wait_for(lambda: desk.all_delivered(40))

    rows = await desk.pool.fetch(
        "SELECT case_id, attempts, last_status_code, last_error, delivered_at IS NOT NULL AS at"
        " FROM webhook_deliveries"
    )
    for row in rows:
        retried = int(row["case_id"].split("-")[1]) % 2 == 1
        assert row["attempts"] == (2 if retried else 1), dict(row)
        assert (row["last_status_code"], row["last_error"], row["at"]) == (200, None, True)
    assert len(receiver.received) == 60
    assert receiver.connections < 20, f"{receiver.connections} connections for 60 requests"


async def test_a_receiver_down_then_up_gets_everything(desk: Desk) -> None:
    port = free_port()
    receiver = Receiver()
    await desk.subscribe(f"http://127.0.0.1:{port}/hooks")
    for case in ("c-1", "c-2"):
        for _ in range(3):
            await insert_alert(desk.pool, "case.due_soon", case, "BR-A")
    await desk.fan_out()
    async with desk.dispatching():

        async def retried() -> bool:
            row = await desk.pool.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'retrying') AS retrying,"
                " min(attempts) FILTER (WHERE status = 'retrying') AS attempts"
                " FROM webhook_deliveries"
            )
            return row["retrying"] == 2 and row["attempts"] >= 2

        await wait_for(retried)
        codes = await desk.pool.fetch("SELECT DISTINCT last_status_code FROM webhook_deliveries")
        assert [row["last_status_code"] for row in codes] == [None]
        receiver.start(port)
        try:
            await wait_for(lambda: desk.all_delivered(6))
        finally:
            receiver.stop()
    assert sorted(r.json["delivery_id"] for r in receiver.received) == sorted(await desk.statuses())


async def test_a_dispatcher_cancelled_between_send_and_commit_loses_nothing_and_resends_once(
    desk: Desk,
) -> None:
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        await desk.three_major_alerts_for(receiver.url)
        async with desk.dispatching(lease_s=1.0):
            await wait_for(lambda: len(receiver.received) == 3)
        # the first dispatcher is gone with three requests sent and nothing recorded
        assert set((await desk.statuses()).values()) == {"pending"}
        hold.set()
        async with desk.dispatching(lease_s=1.0):
            await wait_for(lambda: desk.all_delivered(3))

    ids = [r.json["delivery_id"] for r in receiver.received]
    assert sorted(ids) == sorted(list(await desk.statuses()) * 2)  # each exactly twice
    first, second = {}, {}
    for r in receiver.received:
        (second if r.json["delivery_id"] in first else first)[r.json["delivery_id"]] = r.body
    assert first == second  # the same body, the same delivery_id


async def test_the_url_is_checked_again_at_each_delivery(desk: Desk) -> None:
    allow = AllowList.parse("127.0.0.1,hooks.test")
    addresses = {"hooks.test": ["127.0.0.1"]}

    async def resolve(host: str, port: int) -> list[str]:
        return addresses[host]

    with Receiver() as receiver:
        url = f"http://hooks.test:{receiver.port}/hooks"
        await check_url(url, allow, resolve)  # as at subscription
        await desk.subscribe(url)
        addresses["hooks.test"] = ["10.0.0.5"]  # re-pointed at a private address
        await insert_alert(desk.pool, "case.received", "c-1", "BR-A")
        await desk.fan_out()
        async with desk.dispatching(allow, resolver=resolve):

            async def refused() -> bool:
                return await desk.pool.fetchval(
                    "SELECT last_error = 'url_not_allowed' AND attempts >= 2"
                    " FROM webhook_deliveries"
                )

            await wait_for(refused)
            assert receiver.received == []
            addresses["hooks.test"] = ["127.0.0.1"]
            await wait_for(lambda: desk.all_delivered(1))
    [received] = receiver.received
    assert received.headers["host"] == f"hooks.test:{receiver.port}"


class _CheckedAddressOnly(httpx.AsyncBaseTransport):
    """Refuses, without any lookup, a connection by name rather than to 127.0.0.1 itself, and
    notes the name."""

    def __init__(self, by_name: list[str]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._by_name = by_name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            self._by_name.append(request.url.host)
            raise httpx.ConnectError("connected by name", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("scheme", ["http", "HTTP", "Http"])
async def test_plain_http_goes_to_the_checked_address_however_its_scheme_is_spelled(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """The subscription takes `HTTP://` as http (a scheme is case-insensitive); its deliveries
    must connect to the address just checked, not look the name up again."""
    by_name: list[str] = []

    def new_client(self: clients_module.SubscriptionClients) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=_CheckedAddressOnly(by_name), follow_redirects=False)

    monkeypatch.setattr(clients_module.SubscriptionClients, "_new_client", new_client)

    async def resolve(host: str, port: int) -> list[str]:
        return {"hooks.test": ["127.0.0.1"]}[host]

    with Receiver() as receiver:
        await desk.subscribe(f"{scheme}://hooks.test:{receiver.port}/hooks")
        await insert_alert(desk.pool, "case.received", "c-1", "BR-A")
        await desk.fan_out()
        async with desk.dispatching(AllowList.parse("127.0.0.1,hooks.test"), resolver=resolve):

            async def settled() -> bool:
                row = await desk.pool.fetchrow("SELECT status, attempts FROM webhook_deliveries")
                return row["status"] == "delivered" or row["attempts"] >= 2

            await wait_for(settled)
    assert by_name == []
    assert set((await desk.statuses()).values()) == {"delivered"}
    [received] = receiver.received
    assert received.headers["host"] == f"hooks.test:{receiver.port}"


async def test_a_delivery_fails_after_its_window_stops_blocking_its_case_and_can_be_retried(
    desk: Desk,
) -> None:
    refuse_first = {"on": True}

    def answer(received) -> int:
        return 500 if refuse_first["on"] and received.json["event"] == "case.received" else 200

    with Receiver(answer=answer) as receiver:
        subscription, _ = await desk.subscribe(receiver.url)
        await insert_alert(desk.pool, "case.received", "c-1", "BR-A")
        await insert_alert(desk.pool, "case.decided", "c-1", "BR-A")
        await desk.fan_out()
        window = RetryPolicy(base_s=0.05, cap_s=0.1, window_s=0.5)
        async with desk.dispatching(retry=window):

            async def settled() -> dict[str, str]:
                rows = await desk.pool.fetch(
                    "SELECT event, status, delivery_id::text FROM webhook_deliveries"
                )
                got = {row["event"]: row["status"] for row in rows}
                ok = got == {"case.received": "failed", "case.decided": "delivered"}
                return ok and {row["event"]: row["delivery_id"] for row in rows}

            ids = await wait_for(settled)
            events = [r.json["event"] for r in receiver.received]
            # the later alert waited while the first was retrying, then went once it failed
            assert events[-1] == "case.decided" and events.count("case.decided") == 1
            assert set(events[:-1]) == {"case.received"} and len(events) >= 3

            refuse_first["on"] = False
            found = await desk.store.visible(ADMIN, subscription)
            assert found is not None and await desk.store.retry(found, ids["case.received"])
            await wait_for(lambda: desk.all_delivered(2))


async def test_a_slow_receiver_does_not_hold_up_other_subscriptions(desk: Desk) -> None:
    hold = threading.Event()
    with Receiver(hold=hold) as slow, Receiver() as fast:
        await desk.subscribe(slow.url)
        await desk.subscribe(fast.url)
        for n in range(10):
            await insert_alert(desk.pool, "case.received", f"c-{n}", "BR-A")
        await desk.fan_out()
        async with desk.dispatching(per_subscription=2, concurrency=8):
            await wait_for(lambda: len(fast.received) == 10)
            assert len(slow.received) == 2  # its per-subscription bound
            hold.set()
            await wait_for(lambda: desk.all_delivered(20))


async def test_an_answered_delivery_frees_its_slot_while_its_outcome_is_written(
    desk: Desk,
) -> None:
    """One send in flight allowed, and outcomes held back from the database: the receiver
    still gets each case's delivery, one after another, as soon as the last was answered;
    every one stays open (its lease) until written."""
    written = asyncio.Event()
    with Receiver() as receiver:
        await desk.subscribe(receiver.url)
        for n in range(3):
            await insert_alert(desk.pool, "case.received", f"c-{n}", "BR-A")
        await desk.fan_out()
        async with desk.dispatching(per_subscription=1, concurrency=1) as dispatcher:
            record = dispatcher._record

            async def record_when_allowed(*args) -> None:
                await written.wait()
                await record(*args)

            dispatcher._record = record_when_allowed
            await wait_for(lambda: len(receiver.received) == 3)
            # the receiver has the third request as its answer goes back: the slot is free once
            # the dispatcher has read it (a CI run on a loaded machine looked in between)
            await wait_for(lambda: dispatcher.in_flight == 0)
            assert set((await desk.statuses()).values()) == {"pending"}
            written.set()
            await wait_for(lambda: desk.all_delivered(3))
    assert len(receiver.received) == 3


async def test_the_secret_is_not_in_clear_anywhere_in_the_database(desk: Desk) -> None:
    subscription, secret = await desk.subscribe("https://hooks.example.com/x")
    tables = await desk.pool.fetch(
        "SELECT quote_ident(table_name) AS name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    for table in tables:
        text = await desk.pool.fetchval(
            f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table['name']} AS t"
        )
        assert secret not in text, table["name"]
        assert secret.encode().hex() not in text, table["name"]
    sealed = await desk.pool.fetchval(
        "SELECT secret_sealed FROM webhook_subscriptions WHERE id = $1", subscription
    )
    assert desk.box.open(subscription, sealed).value == secret
    other, _ = await desk.subscribe("https://hooks.example.com/y")
    with pytest.raises(CiphertextRejected):
        desk.box.open(other, sealed)  # bound to its subscription


async def test_no_secret_url_or_payload_in_the_logs(desk: Desk) -> None:
    with Receiver() as receiver:
        _, secret = await desk.subscribe(receiver.url)
        await insert_alert(
            desk.pool, "case.received", "c-1", "BR-A", data={"complainant": {"name": "张*"}}
        )
        await desk.fan_out()
        with capture_logs() as logs:
            async with desk.dispatching():
                await wait_for(lambda: desk.all_delivered(1))
    text = repr(logs)
    assert logs and secret not in text and "张" not in text and receiver.url not in text
    assert "secret" not in repr(desk.box) and secret not in repr(desk.store)


async def test_the_fan_out_loop_wakes_the_dispatcher(desk: Desk) -> None:
    with Receiver() as receiver:
        await desk.subscribe(receiver.url)
        async with desk.dispatching(poll_s=5.0) as dispatcher:
            fanout = asyncio.create_task(run_fanout(desk.pool, 0.02, dispatcher.wake))
            try:
                await insert_alert(desk.pool, "case.received", "c-1", "BR-A")
                await wait_for(lambda: desk.all_delivered(1), timeout_s=3)
            finally:
                await cancel_and_wait([fanout])


async def test_a_dispatcher_cancelled_as_it_is_woken_stops(desk: Desk) -> None:
    """A wake-up and a cancellation in the same turn of the loop: the cancellation wins (Python
    3.11's `asyncio.wait_for` returned the wake-up and lost it, and the dispatcher claimed on, so
    a worker being stopped never stopped)."""
    dispatcher = Dispatcher(desk.pool, desk.box, LOOPBACK, poll_s=30.0)
    task = asyncio.create_task(dispatcher.run())
    try:
        await wait_for(lambda: idle_in_claim_loop(task), timeout_s=5)
        dispatcher.wake()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done == {task}
        assert task.cancelled()
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)


def idle_in_claim_loop(task: asyncio.Task[None]) -> bool:
    """Whether the dispatcher's task waits for its wake-up: somewhere down the chain of what it
    awaits, an `Event.wait` (or the `asyncio.wait_for` around it)."""
    awaited = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_code"):
        if awaited.cr_code.co_name in ("wait", "wait_for"):
            return True
        awaited = awaited.cr_await
    return False


def test_free_port_helper_gives_a_closed_port() -> None:
    port = free_port()
    with socket.socket() as probe, pytest.raises(OSError):
        probe.connect(("127.0.0.1", port))


def test_free_port_helper_never_repeats_itself_nor_gives_an_ephemeral_port() -> None:
    """Two servers of one test once got the same port from the kernel; and an ephemeral port
    may be taken by any outgoing connection before the server binds it."""
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert max(ports) < first_ephemeral


async def test_the_secret_key_is_made_when_first_needed_and_fits_the_sm4_suite(
    pool: asyncpg.Pool,
) -> None:
    count = "SELECT count(*) FROM service_keys WHERE purpose = 'webhook-secrets'"
    keyring = SecretKeyring(pool, FileKeyProvider(session_master_key_file()), "sm4-gcm")
    assert await pool.fetchval(count) == 0
    box = await keyring.box()
    assert await pool.fetchval(count) == 1
    secret = new_secret()
    assert box.open("s-1", box.seal("s-1", secret)) == secret
    assert await keyring.box() is box


async def test_an_id_in_any_spelling_python_reads_finds_its_subscription(desk: Desk) -> None:
    """`{…}` and `urn:uuid:…` name a subscription as its plain form does (the driver refuses
    them as they are: they were a 422 where an unknown id is a 404)."""
    subscription_id, _ = await desk.subscribe("http://127.0.0.1:9/hooks")

    for spelling in (f"{{{subscription_id}}}", f"urn:uuid:{subscription_id}"):
        found = await desk.store.visible(ADMIN, spelling)
        assert found is not None and found.id == subscription_id
        page = await desk.store.deliveries(found, None, 10, None)
        assert page["items"] == []
        assert not await desk.store.retry(found, f"urn:uuid:{subscription_id}")
    assert await desk.store.visible(ADMIN, "not-a-uuid") is None
    assert await desk.store.delete(f"{{{subscription_id}}}")


async def test_one_subscription_s_backlog_does_not_starve_another(desk: Desk) -> None:
    """A subscription at its in-flight cap with 150 due deliveries (more than a claim reads)
    leaves room for another subscription's one: ranked per subscription before the limit."""
    busy_id, _ = await desk.subscribe("http://127.0.0.1:9/a", "BR-A")
    other_id, _ = await desk.subscribe("http://127.0.0.1:9/b", "BR-B")
    for n in range(150):
        await insert_alert(desk.pool, "case.received", f"a-{n}", "SUB-A1")
    await insert_alert(desk.pool, "case.received", "b-1", "BR-B")
    while await desk.fan_out():
        pass
        # the claim as the dispatcher makes it while `busy_id` has four sends under way
        rows = await desk.pool.fetch(_CLAIM, [busy_id], [4], 4, 64, 100, 60.0)

    assert [row["subscription_id"] for row in rows] == [other_id]


_ROWS_BELIEVED = "SELECT reltuples FROM pg_class WHERE oid = 'webhook_deliveries'::regclass"


async def _alerts_for_cases(pool: asyncpg.Pool, count: int) -> None:
    await pool.execute(
        "INSERT INTO alerts (event, case_id, institution, registration_no, occurred_at, data,"
        " dedupe_key) SELECT 'case.received', 'burst-' || n, 'BR-A', 'TS-' || n, now(), '{}',"
        " 'burst:' || n FROM generate_series(1, $1::int) AS n",
        count,
    )


async def test_a_burst_of_deliveries_brings_the_planner_statistics_up_to_date(
    desk: Desk,
) -> None:
    """The fan-out analyzes the table after a burst, without waiting for autovacuum (off here, so
    that only the fan-out can have done it): the claim is planned for the rows there are."""
    await desk.pool.execute("ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)")
    for n in range(4):
        await desk.subscribe(f"http://127.0.0.1:9/burst-{n}", "BR-A")
    believed_before = await desk.pool.fetchval(_ROWS_BELIEVED)
    await _alerts_for_cases(desk.pool, 300)  # 1,200 deliveries

    fanout = asyncio.create_task(run_fanout(desk.pool, 0.02))
    try:
        believed = await wait_for(lambda: _believed_at_least(desk.pool, 1_200), timeout_s=10)
    finally:
        await cancel_and_wait([fanout])

    assert believed_before <= 0  # never analyzed, or analyzed empty
    assert believed == 1_200
    assert await desk.pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 1_200


async def _believed_at_least(pool: asyncpg.Pool, rows: int) -> float | None:
    believed = await pool.fetchval(_ROWS_BELIEVED)
    return believed if believed >= rows else None


async def test_the_table_is_analyzed_once_enough_deliveries_are_made_for_its_size(
    desk: Desk,
) -> None:
    """At least `at_least` deliveries, and a tenth of the rows the planner believes there are:
    what autovacuum would wait for, done at once."""
    await desk.pool.execute("ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)")
    for n in range(4):
        await desk.subscribe(f"http://127.0.0.1:9/rule-{n}", "BR-A")
    await _alerts_for_cases(desk.pool, 500)
    while await desk.fan_out():
        pass
    statistics = DeliveryStatistics(at_least=100, fraction=0.1)
    async with desk.pool.acquire() as connection:
        assert not await statistics.after_fan_out(connection, 99)
        assert await connection.fetchval(_ROWS_BELIEVED) <= 0
        assert await statistics.after_fan_out(connection, 1)  # 100 made: analyzed
        assert await connection.fetchval(_ROWS_BELIEVED) == 2_000
        # now a tenth of 2,000 believed: 100 more are not enough, 200 are
        assert not await statistics.after_fan_out(connection, 100)
        assert await statistics.after_fan_out(connection, 100)


class _KeyProviderDown:
    """A secret source whose key provider does not answer (a KMS down, an HSM unplugged)."""

    async def box(self) -> SecretBox:
        raise ConnectionRefusedError("key provider unreachable")


async def test_a_secret_the_key_provider_cannot_open_is_a_failed_attempt_not_a_lease_forever(
    desk: Desk,
) -> None:
    """Before, the fault escaped the send: no outcome was recorded, the lease ran out and the
    delivery was claimed again every 60 s, never counted as an attempt nor ever failed."""
    with Receiver() as receiver:
        await desk.subscribe(receiver.url)
        await insert_alert(desk.pool, "case.received", "c-1", "BR-A")
        await desk.fan_out()
        dispatcher = Dispatcher(
            desk.pool,
            _KeyProviderDown(),
            LOOPBACK,
            retry=RetryPolicy(base_s=0.05, cap_s=0.1, window_s=0.5),
            poll_s=0.02,
            timeout_s=5.0,
        )
        task = asyncio.create_task(dispatcher.run())
        try:

            async def failed() -> asyncpg.Record | None:
                return await desk.pool.fetchrow(
                    "SELECT attempts, last_error, leased_until FROM webhook_deliveries"
                    " WHERE status = 'failed'"
                )

            row = await wait_for(failed)
        finally:
            await cancel_and_wait([task])
    assert row["attempts"] >= 2 and row["last_error"] == "ConnectionRefusedError"
    assert row["leased_until"] is None
    assert receiver.received == []


async def test_a_graceful_stop_lets_the_sends_in_flight_finish_and_sends_nothing_twice(
    desk: Desk,
) -> None:
    """A restart (SIGTERM to the runner process) stops the dispatcher this way: the requests
    it has sent are answered and recorded before it ends, so none is sent again once its lease
    ends (found by a review pass: every send in flight was cancelled and went again)."""
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        await desk.three_major_alerts_for(receiver.url)
        dispatcher = Dispatcher(desk.pool, desk.box, LOOPBACK, retry=FAST, poll_s=0.02, lease_s=1.0)
        running = asyncio.create_task(dispatcher.run())
        try:
            await wait_for(lambda: len(receiver.received) == 3)  # all three held by the receiver
            dispatcher.stop(grace_s=10.0)
            threading.Timer(0.3, hold.set).start()  # answered while the dispatcher stops
            async with asyncio.timeout(10):
                await running
        finally:
            await cancel_and_wait([running])
        assert await desk.all_delivered(3)
        async with desk.dispatching(lease_s=1.0):  # the next process, past the old leases
            await asyncio.sleep(1.5)
    assert len(receiver.received) == 3  # each sent once


async def test_a_delivery_of_a_case_moved_out_of_the_subtree_is_no_longer_shown_or_retried(
    desk: Desk,
) -> None:
    """Found by a review pass: once SUB-A1 moved from BR-A to BR-B, BR-A's supervisor could no
    longer read its case but still listed its delivery and retried it. Who sees a case is
    judged as the tree stands, on this route as on every other."""
    subscription_id, _ = await desk.subscribe("http://127.0.0.1:9/hooks", institution="BR-A")
    await insert_alert(desk.pool, "case.received", "c-1", "SUB-A1")
    await insert_alert(desk.pool, "case.received", "c-2", "BR-A")
    assert await desk.fan_out() == 2
    subscription = await desk.store.visible(ADMIN, subscription_id)
    assert subscription is not None
    listed = (await desk.store.deliveries(subscription, None, 10, None))["items"]
    moving = next(item["delivery_id"] for item in listed if item["case_id"] == "c-1")

    await InstitutionDirectory(desk.pool).put("SUB-A1", "浦东支行", "sub_branch", "BR-B")

    listed = (await desk.store.deliveries(subscription, None, 10, None))["items"]
    assert [item["case_id"] for item in listed] == ["c-2"]
    assert not await desk.store.retry(subscription, moving)
    assert await desk.store.retry(subscription, listed[0]["delivery_id"])
