"""Webhooks over HTTP against `complaintcore serve` (API.md "Webhooks"): subscriptions and who
may manage them, URL rules, and alerts delivered signed by the service's own workers to a
receiver on loopback, with the deliveries' route, the retry route and the lag."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from testsupport import LiveService, live_service
from webhook_support import Receiver, insert_alert, verify_signature, wait_for

WEBHOOK_ENV = {
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "COMPLAINTCORE_WEBHOOK_POLL": "0.05",
    "COMPLAINTCORE_WEBHOOK_RETRY_BASE": "0.1",
    "COMPLAINTCORE_WEBHOOK_RETRY_CAP": "0.3",
    "COMPLAINTCORE_WEBHOOK_RETRY_WINDOW": "1.5",
    "COMPLAINTCORE_WEBHOOK_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
async def more_tokens(module_database_url: str, tokens: dict[str, str]) -> dict[str, str]:
    pool = await create_pool(module_database_url, min_size=1, max_size=2)
    try:
        return {
            **tokens,
            "supervisor_b": await create_token(pool, "sup-b1", "supervisor", "BR-B"),
        }
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def hooks(
    module_database_url: str,
    more_tokens: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveService]:
    folder = tmp_path_factory.mktemp("webhooks")
    with live_service(module_database_url, more_tokens, folder, **WEBHOOK_ENV) as service:
        yield service


@pytest.fixture
async def db(hooks: LiveService) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(hooks.database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


def subscribe(client: httpx.Client, url: str, institution: str = "HO", **extra) -> httpx.Response:
    body = {"url": url, "institution": institution, "events": ["*"], **extra}
    return client.post("/v1/webhooks", json=body)


def problem_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["code"]


def test_an_admin_subscribes_sees_the_secret_once_lists_reads_and_deletes(
    hooks: LiveService,
) -> None:
    with hooks.client("admin") as admin:
        created = subscribe(
            admin, "http://127.0.0.1:9/a", events=["case.overdue", "case.major"], description="x"
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
        assert body["events"] == ["case.overdue", "case.major"]
        assert (body["url"], body["institution"], body["description"]) == (
            "http://127.0.0.1:9/a",
            "HO",
            "x",
        )
        read = admin.get(f"/v1/webhooks/{body['id']}").json()
        assert "secret" not in read and read["id"] == body["id"]
        listed = admin.get("/v1/webhooks", params={"limit": 500}).json()
        assert body["id"] in [item["id"] for item in listed["items"]]
        assert all("secret" not in item for item in listed["items"])

        assert admin.delete(f"/v1/webhooks/{body['id']}").status_code == 204
        assert problem_code(admin.get(f"/v1/webhooks/{body['id']}"), 404) == "not_found"
        assert problem_code(admin.delete(f"/v1/webhooks/{body['id']}"), 404) == "not_found"
        assert problem_code(admin.get("/v1/webhooks/not-a-uuid"), 404) == "not_found"


def test_supervisors_manage_their_subtree_only_and_other_roles_not_at_all(
    hooks: LiveService,
) -> None:
    with hooks.client("supervisor_ho") as ho, hooks.client("supervisor_b") as sup_b:
        at_br_a = subscribe(ho, "http://127.0.0.1:9/b", "BR-A")
        assert at_br_a.status_code == 201, at_br_a.text
        webhook_id = at_br_a.json()["id"]
        assert problem_code(sup_b.get(f"/v1/webhooks/{webhook_id}"), 404) == "not_found"
        assert problem_code(sup_b.delete(f"/v1/webhooks/{webhook_id}"), 404) == "not_found"
        assert webhook_id not in [i["id"] for i in sup_b.get("/v1/webhooks").json()["items"]]
        refused = subscribe(sup_b, "http://127.0.0.1:9/b", "BR-A")
        assert problem_code(refused, 422) == "unknown_institution"
        assert subscribe(sup_b, "http://127.0.0.1:9/b", "BR-B").status_code == 201
    for role in ("staff_a", "regulator"):
        with hooks.client(role) as client:
            assert problem_code(subscribe(client, "http://127.0.0.1:9/c"), 403) == "forbidden"
            assert problem_code(client.get("/v1/webhooks"), 403) == "forbidden"
    with hooks.client() as anonymous:
        assert problem_code(anonymous.get("/v1/webhooks"), 401) == "unauthorized"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://192.168.0.7/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "http://8.8.8.8/hook",  # http only to an allowed host
        "ftp://127.0.0.1/hook",
        "https://user:pw@8.8.8.8/hook",
        "not a url",
    ],
)
def test_a_url_that_is_not_allowed_is_refused_with_a_stable_code(
    hooks: LiveService, url: str
) -> None:
    with hooks.client("admin") as admin:
        response = subscribe(admin, url)
        assert problem_code(response, 422) == "webhook_url_not_allowed"
        assert response.json()["errors"][0]["field"] == "url"


def _cursor(list_name: str, values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([list_name, *values]).encode()).decode().rstrip("=")


LIST_NAMES = {"/v1/webhooks": "webhooks", "/v1/webhooks/{id}/deliveries": "webhook-deliveries"}


SUBSCRIPTION_ID = "0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3"
NOT_GIVEN_OUT = {
    "/v1/webhooks": [
        ["2026-01-01T00:00:00+00:00", f"urn:uuid:{SUBSCRIPTION_ID}"],
        ["2026-01-01T00:00:00+00:00", "{" + SUBSCRIPTION_ID + "}"],
        ["2026-01-01T00:00:00+00:00", SUBSCRIPTION_ID.upper()],
        ["0001-01-01T00:00:00+23:59", SUBSCRIPTION_ID],
        ["2026-01-01T00:00:00", SUBSCRIPTION_ID],
        ["2026-01-01\x0000:00:00+00:00", SUBSCRIPTION_ID],
    ],
    "/v1/webhooks/{id}/deliveries": [
        ["99999999999999999999999", SUBSCRIPTION_ID],
        ["-5", SUBSCRIPTION_ID],
        [" 7 ", SUBSCRIPTION_ID],
        ["0", SUBSCRIPTION_ID],
        ["7", "x"],
    ],
}


def test_a_list_cursor_the_service_did_not_give_out_is_refused_as_invalid(
    hooks: LiveService,
) -> None:
    with hooks.client("admin") as admin:
        created = subscribe(admin, "http://127.0.0.1:9/cursors")
        assert created.status_code == 201, created.text
        deliveries = f"/v1/webhooks/{created.json()['id']}/deliveries"
        for template, positions in NOT_GIVEN_OUT.items():
            path = deliveries if "{id}" in template else template
            for position in positions:
                cursor = _cursor(LIST_NAMES[template], position)
                response = admin.get(path, params={"cursor": cursor})
                assert response.status_code == 422, (path, position, response.text)
                errors = response.json()["errors"]
                assert [(e["field"], e["code"]) for e in errors] == [("cursor", "invalid_cursor")]


def test_an_unknown_event_name_is_refused(hooks: LiveService) -> None:
    with hooks.client("admin") as admin:
        response = admin.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/", "institution": "HO", "events": ["case.nope"]},
        )
        assert problem_code(response, 422) == "validation_failed"
        assert response.json()["errors"][0]["field"].startswith("events")
        empty = admin.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/", "institution": "HO", "events": []}
        )
        assert problem_code(empty, 422) == "validation_failed"


async def test_alerts_reach_the_receiver_signed_in_order_and_the_deliveries_route_shows_them(
    hooks: LiveService, db: asyncpg.Pool
) -> None:
    answers = iter([500, 502])
    with Receiver(answer=lambda _: next(answers, 200)) as receiver:
        with hooks.client("supervisor_ho") as ho:
            created = subscribe(ho, receiver.url, "BR-A", events=["case.received", "case.decided"])
            assert created.status_code == 201, created.text
            webhook = created.json()
        await insert_alert(db, "case.received", "e2e-1", "SUB-A1")
        await insert_alert(db, "case.received", "e2e-2", "BR-A")
        await insert_alert(db, "case.decided", "e2e-1", "SUB-A1")
        await insert_alert(db, "case.received", "e2e-3", "BR-B")  # not in BR-A's subtree
        await insert_alert(db, "case.overdue", "e2e-1", "BR-A")  # not subscribed

        def three_delivered() -> bool:
            with hooks.client("supervisor_ho") as ho:
                page = ho.get(
                    f"/v1/webhooks/{webhook['id']}/deliveries", params={"status": "delivered"}
                ).json()
            return len(page["items"]) == 3 and page

        page = await wait_for(lambda: asyncio.to_thread(three_delivered), timeout_s=30)
    assert all(verify_signature(webhook["secret"], r) for r in receiver.received)
    firsts = list(dict.fromkeys((r.json["case_id"], r.json["event"]) for r in receiver.received))
    case_1 = [event for case, event in firsts if case == "e2e-1"]
    assert case_1 == ["case.received", "case.decided"]
    assert len(receiver.received) == 5  # two refused, then three acknowledged
    item = page["items"][0]
    assert set(item) >= {
        "delivery_id",
        "event",
        "case_id",
        "attempts",
        "status",
        "last_status_code",
        "next_attempt_at",
    }
    assert {i["last_status_code"] for i in page["items"]} == {200}
    assert {i["next_attempt_at"] for i in page["items"]} == {None}
    with hooks.client("admin") as admin:
        delivered = page["items"][0]["delivery_id"]
        retry = admin.post(f"/v1/webhooks/{webhook['id']}/deliveries/{delivered}/retry")
        assert problem_code(retry, 409) == "delivery_delivered"
        missing = admin.post(
            f"/v1/webhooks/{webhook['id']}/deliveries/00000000-0000-0000-0000-000000000000/retry"
        )
        assert problem_code(missing, 404) == "not_found"
        lag = admin.get("/v1/projections/webhooks")
        assert lag.status_code == 200, lag.text
        assert lag.json()["fanout"]["lag_alerts"] == 0
        assert lag.json()["workers"] == "here"
    with hooks.client("staff_a") as staff:
        assert problem_code(staff.get("/v1/projections/webhooks"), 403) == "forbidden"


async def test_a_failed_delivery_is_sent_again_by_the_retry_route(
    hooks: LiveService, db: asyncpg.Pool
) -> None:
    failing = {"on": True}
    with Receiver(answer=lambda _: 500 if failing["on"] else 200) as receiver:
        with hooks.client("admin") as admin:
            webhook = subscribe(admin, receiver.url, "BR-B").json()
        await insert_alert(db, "case.major", "e2e-fail", "BR-B")

        def failed() -> list:
            with hooks.client("admin") as admin:
                page = admin.get(
                    f"/v1/webhooks/{webhook['id']}/deliveries", params={"status": "failed"}
                ).json()
            return page["items"]

        [item] = await wait_for(lambda: asyncio.to_thread(failed), timeout_s=30)
        assert item["attempts"] >= 2 and item["last_status_code"] == 500
        failing["on"] = False
        with hooks.client("admin") as admin:
            retry = admin.post(
                f"/v1/webhooks/{webhook['id']}/deliveries/{item['delivery_id']}/retry"
            )
            assert retry.status_code == 202, retry.text

        def delivered() -> bool:
            with hooks.client("admin") as admin:
                page = admin.get(f"/v1/webhooks/{webhook['id']}/deliveries").json()
            return page["items"][0]["status"] == "delivered"

        await wait_for(lambda: asyncio.to_thread(delivered), timeout_s=30)
    ids = {r.json["delivery_id"] for r in receiver.received}
    assert ids == {item["delivery_id"]}  # every attempt, and the re-send, carry the same id
    assert len(receiver.received) == item["attempts"] + 1


def test_the_service_log_holds_no_secret(hooks: LiveService) -> None:
    with hooks.client("admin") as admin:
        secret = subscribe(admin, "http://127.0.0.1:9/log").json()["secret"]
    assert secret not in hooks.log_path.read_text(errors="replace")
