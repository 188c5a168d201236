"""Once a case's personal data is erased, no stored response of an `Idempotency-Key`
still holds its complainant's (masked) personal data or its request's fingerprint, and a
request sent again with the key is refused rather than answered.

DOMAIN.md "Personal data", Retention: after erasure "every personal field of the case reads as
erased everywhere (API, replay, audit, exports, rebuilt projections, the blind index)". A
receipt or command sent with an `Idempotency-Key` has its response (the case document, the
complainant masked) stored in `idempotent_requests`, and nothing removes or blanks it at erasure:
the masked name, the identity number's area code and last 4 and the mobile's first 3 and last 4
stay stored, and the same request sent again is answered with them.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from api_support import ok, post
from complaintcore.application.idempotency import ERASED_REQUEST_HASH
from complaintcore.domain.identity import mask_id_number, mask_name, mask_phone
from testsupport import LiveService

NAME, ID_NUMBER, PHONE = "慕容秋水", "11010519491231002X", "13912340987"
ERASURE = {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"}
MASKS = (mask_name(NAME), mask_id_number(ID_NUMBER), mask_phone(PHONE))


def receipt() -> dict[str, Any]:
    return {
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": "2019-05-06",
        "complainant": {
            "kind": "natural_person",
            "name": NAME,
            "id_type": "resident_id",
            "id_number": ID_NUMBER,
            "contact": PHONE,
        },
        "claims": "退还年费",
        "facts": "未经同意扣收年费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
    }


WITHDRAWAL = {"received_on": "2019-05-10", "reason": "已与网点协商一致"}


def _receive(staff: httpx.Client) -> httpx.Response:
    return staff.post("/v1/complaints", json=receipt(), headers={"Idempotency-Key": "erase-r"})


def _withdraw(staff: httpx.Client, case: dict[str, Any]) -> httpx.Response:
    return post(staff, case, "withdraw", WITHDRAWAL, **{"Idempotency-Key": "erase-w"})


@pytest.fixture(scope="module")
def erased_case(live: LiveService) -> dict[str, Any]:
    """A case received and withdrawn in 2019, each with an Idempotency-Key, then erased."""
    with live.client("staff_a") as staff, live.client("admin") as admin:
        response = _receive(staff)
        assert response.status_code == 201, response.text
        case = response.json()
        assert case["complainant"]["name"] == mask_name(NAME)  # masked, as it should be
        ok(_withdraw(staff, case))
        erased = ok(admin.post(f"/v1/complaints/{case['id']}/erase-personal-data", json=ERASURE))
        assert erased["personal_data"] == "erased"
        assert erased["complainant"]["name"] is None
        document = ok(staff.get(f"/v1/complaints/{case['id']}"))
        assert document["complainant"]["id_number"] is None  # the case reads as erased
    return case


async def stored_requests(live: LiveService, case_id: str) -> list[asyncpg.Record]:
    """The requests whose responses are stored for the case: key, fingerprint and body."""
    connection = await asyncpg.connect(live.database_url)
    try:
        return await connection.fetch(
            "SELECT idempotency_key, request_hash, response_body::text AS body"
            " FROM idempotent_requests WHERE response_body->>'id' = $1 ORDER BY idempotency_key",
            case_id,
        )
    finally:
        await connection.close()


async def test_no_stored_response_keeps_the_masked_personal_data_after_erasure(
    live: LiveService, erased_case: dict[str, Any]
) -> None:
    rows = await stored_requests(live, erased_case["id"])
    assert rows, "the receipt's and the withdrawal's responses were stored"
    kept = {(row["idempotency_key"], mask) for row in rows for mask in MASKS if mask in row["body"]}
    assert kept == set(), f"still stored after erasure: {sorted(kept)}"


async def test_no_fingerprint_of_a_request_body_is_kept_after_erasure(
    live: LiveService, erased_case: dict[str, Any]
) -> None:
    """The stored fingerprint was a SHA-256 of the body, which held the complainant's name,
    identity number and phone: a guess of the whole body could be confirmed against it."""
    rows = await stored_requests(live, erased_case["id"])
    assert [(row["idempotency_key"], row["request_hash"]) for row in rows] == [
        ("erase-r", ERASED_REQUEST_HASH),
        ("erase-w", ERASED_REQUEST_HASH),
    ]


def test_a_request_sent_again_after_erasure_is_refused_and_stores_nothing(
    live: LiveService, erased_case: dict[str, Any]
) -> None:
    """Whether a body is the one first sent can no longer be told once its fingerprint is
    forgotten: replaying the stored answer would acknowledge a new receipt reusing an old key
    with an old case's answer and store nothing. Refused, loud, and nothing stored."""
    with live.client("staff_a") as staff:
        listed = ok(staff.get("/v1/complaints", params={"limit": 500}))["items"]
        replays = {
            "receipt": _receive(staff),
            "withdrawal": _withdraw(staff, erased_case),
            "another receipt": staff.post(
                "/v1/complaints",
                json={**receipt(), "claims": "另一诉求"},
                headers={"Idempotency-Key": "erase-r"},
            ),
        }
        after = ok(staff.get("/v1/complaints", params={"limit": 500}))["items"]
    assert {name: r.status_code for name, r in replays.items()} == dict.fromkeys(replays, 422)
    for response in replays.values():
        problem = response.json()
        assert problem["code"] == "idempotency_key_reused"
        assert "erased" in problem["errors"][0]["message"]
        assert not any(mask in response.text for mask in MASKS)
    assert len(after) == len(listed)
