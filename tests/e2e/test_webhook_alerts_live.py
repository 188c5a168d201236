"""Alerts from real commands reach a real receiver on loopback, over a live `complaintcore serve`
(issue 15, "What it must show"; DOMAIN.md "Alerts and escalation", API.md "Webhooks"): the
service's own alert runner, fan-out and dispatcher, nothing inserted by hand.

- `case.overdue` when a clock passes due, from business dates in the past: a paper complaint
  received 20 days ago and entered today is overdue at once (never the wall clock's passing).
- `case.major` for a joint complaint of 20 complainants (Art. 29), after its `case.received`.

Each delivery is checked as a receiver would: the signature under the subscription's secret,
the body's fields, no personal data of the receipt anywhere in the raw body, and the deliveries
route showing it delivered. Every wait is bounded."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from api_support import TODAY, complaint, days_ago
from testsupport import LiveService, live_service
from webhook_support import Received, Receiver, verify_signature, wait_for

LIVE_ENV = {
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "COMPLAINTCORE_WEBHOOK_POLL": "0.05",
    "COMPLAINTCORE_PROJECTION_POLL": "0.1",  # the alert runner's idle wait
}
PAYLOAD_FIELDS = {
    "delivery_id",
    "event",
    "occurred_at",
    "institution",
    "case_id",
    "registration_no",
    "data",
}
# what the receipts below carry that is personal: none of it may reach a receiver
PERSONAL = ["张三", "11010519491231002X", "13800138000", "李四", "王五", "赵六", "退还信用卡年费"]


@pytest.fixture(scope="module")
def live_hooks(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    folder = tmp_path_factory.mktemp("webhook-alerts")
    with live_service(module_database_url, tokens, folder, **LIVE_ENV) as service:
        yield service


def subscribe(service: LiveService, url: str, institution: str, events: list[str]) -> dict:
    with service.client("admin") as admin:
        created = admin.post(
            "/v1/webhooks", json={"url": url, "institution": institution, "events": events}
        )
    assert created.status_code == 201, created.text
    return created.json()


def receive(service: LiveService, body: dict[str, Any]) -> dict[str, Any]:
    with service.client("staff_a") as staff:
        response = staff.post("/v1/complaints", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def arrivals(receiver: Receiver, case_id: str, events: set[str]) -> list[Received]:
    """Wait (bounded) until the receiver has got each of `events` for the case; its requests
    for the case, in arrival order."""

    def of_case() -> list[Received]:
        return [r for r in list(receiver.received) if r.json["case_id"] == case_id]

    await wait_for(lambda: events <= {r.json["event"] for r in of_case()}, timeout_s=15)
    return of_case()


def assert_a_proper_delivery(received: Received, secret: str, case: dict[str, Any]) -> None:
    assert verify_signature(secret, received)
    assert received.headers["content-type"] == "application/json"
    body = received.json
    assert set(body) == PAYLOAD_FIELDS
    assert body["case_id"] == case["id"]
    assert body["registration_no"] == case["registration_no"]
    assert body["institution"] == "BR-A"
    assert body["occurred_at"].endswith("Z")
    raw = received.body.decode()
    assert not [value for value in PERSONAL if value in raw], raw


async def delivered_items(service: LiveService, webhook_id: str, count: int) -> list[dict]:
    """The subscription's deliveries once `count` of them read `delivered` (bounded)."""

    def page() -> list[dict] | None:
        with service.client("admin") as admin:
            response = admin.get(
                f"/v1/webhooks/{webhook_id}/deliveries", params={"status": "delivered"}
            )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        return items if len(items) >= count else None

    return await wait_for(lambda: asyncio.to_thread(page), timeout_s=15)


async def test_a_paper_complaint_entered_already_overdue_is_delivered_as_case_overdue_at_once(
    live_hooks: LiveService,
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(live_hooks, receiver.url, "BR-A", ["case.overdue"])
        body = complaint("BR-A", received_days_ago=20, channel="letter")
        case = receive(live_hooks, body)
        # the business dates say overdue today
        assert case["deadline"]["due_on"] < TODAY.isoformat()
        [overdue] = await arrivals(receiver, case["id"], {"case.overdue"})
        assert_a_proper_delivery(overdue, webhook["secret"], case)
        payload = overdue.json
        assert payload["event"] == "case.overdue"
        assert payload["data"]["due_on"] == case["deadline"]["due_on"]
        [item] = await delivered_items(live_hooks, webhook["id"], 1)
    assert item["delivery_id"] == payload["delivery_id"]
    assert (item["event"], item["case_id"]) == ("case.overdue", case["id"])
    assert item["status"] == "delivered"
    assert item["last_status_code"] == 200 and item["attempts"] == 1
    # only what was subscribed: the receipt itself (case.received) went nowhere
    assert [r.json["event"] for r in receiver.received] == ["case.overdue"]


async def test_a_joint_complaint_of_20_is_delivered_as_case_major_after_its_receipt(
    live_hooks: LiveService,
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(live_hooks, receiver.url, "HO", ["*"])  # BR-A is below HO
        body = complaint(
            "BR-A",
            received_days_ago=1,
            channel="in_person",
            joint={"complainants": 20, "representatives": ["王五", "赵六"]},
        )
        case = receive(live_hooks, body)
        got = await arrivals(receiver, case["id"], {"case.received", "case.major"})
        for received in got:
            assert_a_proper_delivery(received, webhook["secret"], case)
        assert [r.json["event"] for r in got] == ["case.received", "case.major"]  # case order
        received_alert, major = (r.json for r in got)
        assert received_alert["data"]["complainants"] == 20
        assert received_alert["data"]["received_on"] == days_ago(1)
        assert major["data"]["cause"]  # why it is major (a code), no names
        items = await delivered_items(live_hooks, webhook["id"], 2)
    by_id = {item["delivery_id"]: item for item in items}
    for payload in (received_alert, major):
        item = by_id[payload["delivery_id"]]
        assert (item["event"], item["case_id"], item["status"]) == (
            payload["event"],
            case["id"],
            "delivered",
        )
    assert len({received_alert["delivery_id"], major["delivery_id"]}) == 2


def test_the_alert_runner_and_the_dispatcher_show_no_lag_after_the_deliveries(
    live_hooks: LiveService,
) -> None:
    with live_hooks.client("admin") as admin:
        projections = admin.get("/v1/projections")
        webhooks = admin.get("/v1/projections/webhooks")
    assert projections.status_code == 200 and webhooks.status_code == 200
    assert "alerts" in projections.text
    assert webhooks.json()["fanout"]["lag_alerts"] == 0
    assert isinstance(webhooks.json()["dispatch"]["failed"], int)
