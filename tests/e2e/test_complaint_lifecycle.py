"""A complaint walked through every command over real HTTP, and every refusal it can meet."""

import re

import asyncpg
import httpx

from api_support import (
    complaint,
    days_ago,
    decision,
    notice,
    ok,
    post,
    receive,
    refused,
)
from testsupport import LiveService


def test_a_case_walks_through_every_command(live: LiveService) -> None:
    staff, supervisor = live.client("staff_a"), live.client("supervisor_ho")
    response = staff.post("/v1/complaints", json=complaint(received_days_ago=10))
    assert response.status_code == 201, response.text
    case = response.json()
    assert response.headers["location"] == f"/v1/complaints/{case['id']}"
    assert response.headers["etag"] == '"1"'
    assert case["registration_no"].startswith(f"BR-A-{days_ago(10)[:7].replace('-', '')}-")
    assert case["status"] == "received"
    assert case["deadline"]["due_on"] == days_ago(10 - 15)  # Art. 18: receipt day not counted
    assert case["complainant"]["name"] != "张三"  # masked (Art. 22)

    ok(post(staff, case, "notify", {"subject": "acceptance", "notice": notice(days_ago(9))}))
    assigned = ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    assert (assigned["status"], assigned["handler_id"]) == ("assigned", "staff-a1")
    extended = ok(
        post(staff, case, "extend", {"reason": "情况复杂", "notice": notice(days_ago(8))})
    )
    assert extended["deadline"]["level"] == 1
    assert extended["deadline"]["due_on"] == days_ago(10 - 30)
    paused = ok(
        post(
            staff,
            case,
            "pause",
            {
                "kind": "appraisal",
                "paused_on": days_ago(7),
                "reason": "鉴定",
                "notice": notice(days_ago(7)),
            },
        )
    )
    assert paused["deadline"]["status"] == "paused"
    refused(post(staff, case, "decide", decision(days_ago(6))), "case_paused")
    resumed = ok(post(staff, case, "resume", {"resumed_on": days_ago(4)}))
    assert resumed["deadline"]["paused_days"] == 3
    assert resumed["deadline"]["due_on"] == days_ago(10 - 33)
    ok(
        post(
            staff,
            case,
            "supplement",
            {"received_on": days_ago(4), "new_facts_and_reasons": False, "summary": "重复"},
        )
    )
    decided = ok(post(staff, case, "decide", decision(days_ago(3))))
    assert decided["status"] == "decided"
    assert decided["deadline"]["status"] == "met"
    assert decided["decision"]["redress_fen"] == 30000
    appealed = ok(post(staff, case, "appeal", {"received_on": days_ago(2), "grounds": "金额不服"}))
    assert appealed["status"] == "under_review"
    assert appealed["review"]["due_on"] == days_ago(2 - 30)
    assert appealed["review"]["reviewing_institution"] == "HO"
    reviewed = ok(
        post(
            supervisor,
            case,
            "decide-review",
            {
                "reviewer_id": "sup-ho1",
                "outcome": "changed",
                "findings": "应全额退还",
                "new_outcome": "upheld",
                "new_redress_fen": 60000,
                "notice": notice(days_ago(1)),
            },
        )
    )
    assert reviewed["status"] == "review_decided"
    assert reviewed["closed"] is True
    refused(post(staff, case, "withdraw", {"received_on": days_ago(0)}), "case_closed")

    fetched = staff.get(f"/v1/complaints/{case['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == reviewed
    assert fetched.headers["etag"] == f'"{reviewed["version"]}"'


def test_withdraw_decline_merge_and_flag_major(live: LiveService) -> None:
    staff, regulator = live.client("staff_a"), live.client("regulator")
    withdrawn = ok(
        post(staff, receive(staff), "withdraw", {"received_on": days_ago(0), "reason": "已协商"})
    )
    assert (withdrawn["status"], withdrawn["deadline"]["status"]) == ("withdrawn", "stopped")
    declined = ok(
        post(staff, receive(staff), "decline", {"reason": "非本人", "notice": notice(days_ago(0))})
    )
    assert declined["status"] == "declined"
    target = receive(staff)
    merged = ok(post(staff, receive(staff), "merge", {"into": target["id"]}))
    assert (merged["status"], merged["merged_into"]) == ("merged", target["id"])
    major = ok(post(staff, target, "flag-major", {"cause": "disaster", "detail": "台风"}))
    assert major["major"] is True
    refused(
        post(staff, receive(staff), "flag-major", {"cause": "regulator", "detail": "x"}),
        "not_authorized_to_designate",
    )
    designated = ok(
        post(regulator, receive(staff), "flag-major", {"cause": "regulator", "detail": "监管认定"})
    )
    assert designated["major_cause"] == "regulator"


def test_each_rule_refuses_with_its_code_and_stores_nothing(live: LiveService) -> None:
    staff = live.client("staff_a")
    case = receive(staff, received_days_ago=3)
    refused(post(staff, case, "decide", decision(days_ago(0))), "case_not_assigned")
    problem = refused(
        post(staff, case, "assign", {"handler_id": "staff-a2"}), "handler_has_conflict"
    )
    assert problem["article"].startswith("Art. 17")
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    ok(post(staff, case, "recuse", {"handler_id": "staff-a1", "reason": "亲属"}))
    refused(post(staff, case, "assign", {"handler_id": "staff-a1"}), "handler_has_conflict")
    ok(post(staff, case, "assign", {"handler_id": "staff-a3"}))
    refused(
        post(staff, case, "decide", decision(days_ago(0), handler="staff-a1")),
        "handler_not_assigned",
    )
    ok(post(staff, case, "extend", {"reason": "复杂", "notice": notice(days_ago(2))}))
    refused(
        post(staff, case, "extend", {"reason": "特别复杂", "notice": notice(days_ago(1))}),
        "extension_requires_approval",
    )
    approval = {"approver_id": "sup-ho1", "approver_role": "head_office_senior_manager"}
    ok(
        post(
            staff,
            case,
            "extend",
            {"reason": "特别复杂", "approval": approval, "notice": notice(days_ago(1))},
        )
    )
    refused(
        post(
            staff,
            case,
            "extend",
            {"reason": "再延", "approval": approval, "notice": notice(days_ago(0))},
        ),
        "extension_limit_reached",
    )
    refused(post(staff, case, "resume", {"resumed_on": days_ago(0)}), "case_not_paused")
    refused(
        post(
            staff,
            case,
            "pause",
            {
                "kind": "mediation",
                "paused_on": days_ago(-1),
                "reason": "调解",
                "notice": notice(days_ago(0)),
            },
        ),
        "business_date_in_future",
    )
    refused(
        post(
            staff,
            case,
            "pause",
            {
                "kind": "mediation",
                "paused_on": days_ago(3),
                "reason": "调解",
                "notice": notice(days_ago(3)),
            },
        ),
        "business_date_before_previous",
    )
    refused(
        post(staff, case, "appeal", {"received_on": days_ago(0), "grounds": "x"}),
        "case_not_decided",
    )

    overdue = receive(staff, received_days_ago=20)
    ok(post(staff, overdue, "assign", {"handler_id": "staff-a1"}))
    refused(
        post(staff, overdue, "extend", {"reason": "复杂", "notice": notice(days_ago(0))}),
        "case_overdue",
    )
    late = ok(post(staff, overdue, "decide", decision(days_ago(0))))
    assert late["deadline"]["status"] == "missed"

    old = receive(staff, received_days_ago=80)
    ok(post(staff, old, "assign", {"handler_id": "staff-a1"}))
    ok(post(staff, old, "decide", decision(days_ago(70))))
    refused(
        post(staff, old, "appeal", {"received_on": days_ago(0), "grounds": "x"}),
        "appeal_window_closed",
    )

    head_office = live.client("supervisor_ho")
    at_head_office = receive(head_office, institution="HO")
    ok(post(head_office, at_head_office, "assign", {"handler_id": "sup-ho2"}))
    no_review = decision(days_ago(0), handler="sup-ho2") | {"remedies": ["litigation"]}
    ok(post(head_office, at_head_office, "decide", no_review))
    refused(
        post(head_office, at_head_office, "appeal", {"received_on": days_ago(0), "grounds": "x"}),
        "review_not_available",
    )

    events = staff.get(f"/v1/complaints/{case['id']}/events").json()
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    # receive, assign, recuse, assign, extend, extend: no refused command stored anything
    assert len(events) == 6


def test_bad_input_is_422_listing_each_field(live: LiveService) -> None:
    staff = live.client("staff_a")
    bad = complaint()
    bad["complainant"]["id_number"] = "110105194912310021"  # wrong check digit (GB 11643)
    bad["channel"] = "pigeon"
    response = staff.post("/v1/complaints", json=bad)
    problem = refused(response, "validation_failed", 422)
    assert "channel" in {error["field"] for error in problem["errors"]}
    bad["channel"] = "phone"
    problem = refused(staff.post("/v1/complaints", json=bad), "validation_failed", 422)
    assert [e["field"] for e in problem["errors"]] == ["complainant.id_number"]
    person_with_a_code = complaint()
    person_with_a_code["complainant"]["unified_social_credit_code"] = "11010519491231002X"
    problem = refused(
        staff.post("/v1/complaints", json=person_with_a_code), "validation_failed", 422
    )
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("complainant.unified_social_credit_code", "not_allowed")
    ]
    assert "11010519491231002X" not in str(problem)
    for raw in (b"{", b"[]", b'{"channel": 1}', b"\x00"):
        response = staff.post(
            "/v1/complaints", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text


def test_authentication_and_subtree_isolation(live: LiveService) -> None:
    case = receive(live.client("staff_a"))
    path = f"/v1/complaints/{case['id']}"
    refused(live.client().get(path), "unauthorized", 401)
    bad = httpx.get(live.base_url + path, headers={"Authorization": "Bearer cc_nope"})
    refused(bad, "unauthorized", 401)
    refused(live.client("staff_b").get(path), "not_found", 404)
    refused(post(live.client("staff_b"), case, "assign", {"handler_id": "x"}), "not_found", 404)
    refused(live.client("staff_sub").get(path), "not_found", 404)  # BR-A is above SUB-A1
    for who in ("staff_a", "supervisor_ho", "regulator"):
        assert live.client(who).get(path).status_code == 200
    listed = live.client("staff_b").get("/v1/complaints").json()["items"]
    assert case["id"] not in {item["id"] for item in listed}
    assert case["id"] in {
        item["id"]
        for item in live.client("staff_a")
        .get("/v1/complaints", params={"limit": 500})
        .json()["items"]
    }
    refused(
        live.client("staff_b").post("/v1/complaints", json=complaint("BR-A")),
        "validation_failed",
        422,
    )


def test_if_match_and_idempotent_replay(live: LiveService) -> None:
    staff = live.client("staff_a")
    case = receive(staff)
    refused(
        post(staff, case, "assign", {"handler_id": "staff-a1"}, **{"If-Match": '"7"'}),
        "precondition_failed",
        412,
    )
    # compared strongly (RFC 9110 13.1.1): a weak tag never matches, a bare number is no tag,
    # and "01" is another tag than the "1" the case gives (character by character)
    for not_the_tag in ('W/"1"', "1", '"01"'):
        problem = refused(
            post(staff, case, "assign", {"handler_id": "staff-a1"}, **{"If-Match": not_the_tag}),
            "precondition_failed",
            412,
        )
        assert problem["detail"] == 'If-Match must be "<version>".'
    # a list of tags (RFC 9110): none the case's version is 412; one of them is the version
    refused(
        post(staff, case, "assign", {"handler_id": "staff-a1"}, **{"If-Match": '"7", "8"'}),
        "precondition_failed",
        412,
    )
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}, **{"If-Match": '"7", W/"1", "1"'}))
    # empty items are ignored, and the header's lines are one list (RFC 9110 5.6.1.2, 5.3)
    ok(post(staff, case, "assign", {"handler_id": "h-2"}, **{"If-Match": '"2",'}))
    path = f"/v1/complaints/{case['id']}/assign"
    lines = [("If-Match", '"7"'), ("If-Match", '"3"')]
    reassigned = staff.post(path, json={"handler_id": "h-3"}, headers=lines)
    assert reassigned.status_code == 200, reassigned.text

    body = complaint()
    first = staff.post("/v1/complaints", json=body, headers={"Idempotency-Key": "k-1"})
    again = staff.post("/v1/complaints", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["location"] == again.headers["location"]
    other = staff.post(
        "/v1/complaints", json=complaint(received_days_ago=2), headers={"Idempotency-Key": "k-1"}
    )
    refused(other, "idempotency_key_reused", 422)

    note = {"subject": "progress", "notice": notice(days_ago(0))}
    one = post(staff, case, "notify", note, **{"Idempotency-Key": "n-1"})
    two = post(staff, case, "notify", note, **{"Idempotency-Key": "n-1"})
    assert ok(one) == ok(two)
    # the service reads a case id in any letter case: the same request, spelled so, is a replay
    shouted = staff.post(
        f"/v1/complaints/{case['id'].upper()}/notify", json=note, headers={"Idempotency-Key": "n-1"}
    )
    assert ok(shouted) == ok(one)
    events = staff.get(f"/v1/complaints/{case['id']}/events").json()
    assert [e["type"] for e in events].count("ComplainantNotified") == 1


def test_each_event_names_the_command_that_caused_it(live: LiveService) -> None:
    """DOMAIN.md "Events": metadata carries a causation id. A receipt of 20 complainants appends
    its own MarkedMajor: both name the receipt's command; the next command has its own id."""
    staff = live.client("staff_a")
    joint = {"complainants": 20, "representatives": ["甲", "乙"]}
    response = staff.post("/v1/complaints", json=complaint(channel="in_person", joint=joint))
    assert response.status_code == 201, response.text
    case = response.json()
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))

    events = staff.get(f"/v1/complaints/{case['id']}/events").json()
    assert [e["type"] for e in events] == ["ComplaintReceived", "MarkedMajor", "HandlerAssigned"]
    causes = [e["metadata"]["causation_id"] for e in events]
    assert all(re.fullmatch(r"[0-9a-f]{32}", cause) for cause in causes)
    assert causes[0] == causes[1] != causes[2]


def test_replay_as_of_version_and_audit(live: LiveService) -> None:
    staff, regulator = live.client("staff_a"), live.client("regulator")
    case = receive(staff, received_days_ago=5)
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    ok(post(staff, case, "extend", {"reason": "复杂", "notice": notice(days_ago(1))}))
    at_one = regulator.get(f"/v1/complaints/{case['id']}", params={"as_of_version": 1}).json()
    assert (at_one["version"], at_one["status"], at_one["deadline"]["level"]) == (1, "received", 0)
    at_two = regulator.get(f"/v1/complaints/{case['id']}", params={"as_of_version": 2}).json()
    assert at_two["status"] == "assigned"
    refused(
        regulator.get(f"/v1/complaints/{case['id']}", params={"as_of_version": 9}), "not_found", 404
    )

    events = regulator.get(f"/v1/complaints/{case['id']}/events").json()
    assert [e["type"] for e in events] == [
        "ComplaintReceived",
        "HandlerAssigned",
        "DeadlineExtended",
    ]
    assert events[1]["prev_hash"] == events[0]["hash"]
    audit = regulator.get(f"/v1/complaints/{case['id']}/audit").json()
    assert audit["chain"]["intact"] is True
    assert [row["change"] for row in audit["timeline"]] == ["receipt", "extension"]
    assert audit["state"]["version"] == 3

    feed = regulator.get(
        "/v1/events", params={"after": events[0]["position"] - 1, "limit": 5000}
    ).json()
    assert {e["position"] for e in events} <= {e["position"] for e in feed["items"]}
    refused(staff.get("/v1/events"), "forbidden", 403)


async def test_audit_finds_a_row_altered_behind_the_triggers_back(live: LiveService) -> None:
    staff = live.client("staff_a")
    case = receive(staff)
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    ok(post(staff, case, "notify", {"subject": "progress", "notice": notice(days_ago(0))}))
    connection = await asyncpg.connect(live.database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete"
            )
            await connection.execute(
                "UPDATE events SET data = jsonb_set(data, '{handler_id}', '\"mallory\"')"
                " WHERE stream_id = $1 AND version = 2",
                case["id"],
            )
            await connection.execute(
                "ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete"
            )
    finally:
        await connection.close()
    audit = live.client("regulator").get(f"/v1/complaints/{case['id']}/audit").json()
    assert audit["chain"]["intact"] is False
    assert audit["chain"]["first_bad_version"] == 2


def test_lists_and_deadlines_filter_by_clock(live: LiveService) -> None:
    staff = live.client("staff_sub")
    overdue = receive(staff, institution="SUB-A1", received_days_ago=20)
    soon = receive(staff, institution="SUB-A1", received_days_ago=13)
    later = receive(staff, institution="SUB-A1", received_days_ago=1)
    items = staff.get("/v1/deadlines", params={"clock": "overdue"}).json()["items"]
    assert [i["id"] for i in items] == [overdue["id"]]
    due = staff.get("/v1/deadlines", params={"due_within_days": 3}).json()["items"]
    assert [i["id"] for i in due] == [overdue["id"], soon["id"]]
    assert due[1]["deadline"]["status"] == "due_soon"
    everything = staff.get("/v1/deadlines").json()["items"]
    assert [i["id"] for i in everything] == [overdue["id"], soon["id"], later["id"]]
    page = staff.get("/v1/complaints", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = staff.get("/v1/complaints", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == [
        later["id"],
        soon["id"],
        overdue["id"],
    ]
    refused(staff.get("/v1/complaints", params={"cursor": "garbage"}), "validation_failed", 422)
    overdue_listed = staff.get("/v1/complaints", params={"clock": "overdue", "status": "received"})
    assert [i["id"] for i in overdue_listed.json()["items"]] == [overdue["id"]]
    for name in ("clock", "status"):
        problem = refused(
            staff.get("/v1/complaints", params={name: "bogus"}), "validation_failed", 422
        )
        # the values a client may send, as it writes them (found by a review pass: enum reprs)
        assert "'overdue'" in str(problem) or "'received'" in str(problem), problem
        assert "<" not in str(problem), problem
    for item in everything:
        detail = staff.get(f"/v1/complaints/{item['id']}").json()
        assert detail["deadline"] == item["deadline"]


def test_regulator_transfer_reports_the_seven_working_day_check(live: LiveService) -> None:
    staff = live.client("staff_a")
    # 2026 National Day: 10-01..10-07 off, Saturday 10-10 a working day (State Council notice).
    transfer = {"regulator_received_on": "2026-09-29", "forwarded_on": "2026-10-12"}
    case = receive(
        staff, channel="regulator_transfer", received_on="2026-10-12", regulator_transfer=transfer
    )
    # (09-29, 10-12]: 09-30, 10-08, 10-09, 10-10 (adjusted Saturday) and 10-12 are working days.
    assert case["regulator_transfer"]["working_days"] == 5
    assert case["regulator_transfer"]["within_limit"] is True


def test_the_remaining_rule_codes_over_http(live: LiveService) -> None:
    staff, supervisor = live.client("staff_a"), live.client("supervisor_ho")
    case = receive(staff, received_days_ago=6)
    ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    refused(post(staff, case, "assign", {"handler_id": "staff-a1"}), "handler_already_assigned")
    pause = {"kind": "mediation", "reason": "调解", "notice": notice(days_ago(5))}
    ok(post(staff, case, "pause", pause | {"paused_on": days_ago(5)}))
    refused(post(staff, case, "pause", pause | {"paused_on": days_ago(4)}), "pause_already_open")
    ok(post(staff, case, "resume", {"resumed_on": days_ago(4)}))
    without_review = decision(days_ago(3)) | {"remedies": ["litigation"]}
    refused(post(staff, case, "decide", without_review), "review_remedy_required")
    review = {
        "reviewer_id": "sup-ho1",
        "outcome": "kept",
        "findings": "维持",
        "notice": notice(days_ago(0)),
    }
    refused(post(supervisor, case, "decide-review", review), "case_not_decided")
    ok(post(staff, case, "decide", decision(days_ago(3))))
    refused(post(staff, case, "decide", decision(days_ago(2))), "case_already_decided")
    refused(post(supervisor, case, "decide-review", review), "review_not_requested")
    ok(post(staff, case, "appeal", {"received_on": days_ago(2), "grounds": "不服"}))
    refused(
        post(staff, case, "appeal", {"received_on": days_ago(1), "grounds": "再次"}),
        "review_already_requested",
    )
    own_handler = review | {"reviewer_id": "staff-a1"}
    refused(post(supervisor, case, "decide-review", own_handler), "reviewer_has_conflict")

    duplicate = receive(staff)
    refused(post(staff, duplicate, "merge", {"into": duplicate["id"]}), "cannot_merge_into_itself")
    refused(post(staff, duplicate, "merge", {"into": case["id"]}), "merge_target_not_open")
    unknown = "00000000-0000-4000-8000-000000000000"
    problem = refused(post(staff, duplicate, "merge", {"into": unknown}), "validation_failed", 422)
    assert problem["errors"][0]["field"] == "into"
    ok(post(staff, duplicate, "flag-major", {"cause": "accident", "detail": "系统故障"}))
    refused(
        post(staff, duplicate, "flag-major", {"cause": "disaster", "detail": "x"}), "already_major"
    )
    refused(staff.get(f"/v1/complaints/{unknown}"), "not_found", 404)
    refused(post(staff, {"id": unknown}, "assign", {"handler_id": "x"}), "not_found", 404)
