"""The internal control commands over HTTP against a live `complaintcore serve` (API.md "Internal
control commands"; DOMAIN.md "Redress authority", "Responsibility, root cause and rectification",
"Follow-up").

Redress authority (Art. 24; desk rule 客訴金額核決權限), under the default limits (staff 100,000
fen, supervisors 5,000,000 fen, head-office supervisors none): a staff decision above the staff
limit is refused `redress_exceeds_authority`; a supervisor of the branch above the case approves
it (quick approval: not the case's own node, only at or above it) and the decision passes; the
approval is used by that one decision, so a changed review decision above the limit is refused
again. Staff may not approve (403), a supervisor of another branch does not see the case (404),
and a supervisor approving beyond their own limit is refused `approver_lacks_authority`.

Attribution, rectification and follow-up (Art. 26 溯源整改; desk rule 責任歸屬; 回访):
only after the decision (`case_not_decided`), the responsible unit from the case's tree
(`unknown_institution`), each action closed once (`unknown_action`, `action_already_closed`),
an open action past its due date reads `overdue` in the case document, and the free texts
(notes, descriptions, the third party) read as null there, as every free text does (Art. 22;
DOMAIN.md "Personal data").
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from api_support import TODAY, days_ago, decision, notice, ok, post, receive, refused
from projection_support import tree_and_tokens
from testsupport import LiveService

STAFF_LIMIT_FEN = 100_000
SUPERVISOR_LIMIT_FEN = 5_000_000
ABOVE_STAFF_LIMIT_FEN = 300_000


@pytest.fixture(scope="module")
async def tokens(module_database_url: str) -> dict[str, str]:
    """The shared tree, with a supervisor at each branch and at the head office."""
    return await tree_and_tokens(
        module_database_url,
        {
            "staff_a": ("staff-a1", "staff", "BR-A"),
            "staff_b": ("staff-b1", "staff", "BR-B"),
            "supervisor_a": ("sup-a1", "supervisor", "BR-A"),
            "supervisor_b": ("sup-b1", "supervisor", "BR-B"),
            "supervisor_ho": ("sup-ho1", "supervisor", "HO"),
            "regulator": ("reg-1", "regulator", None),
        },
    )


@pytest.fixture(scope="module")
def clients(live: LiveService) -> dict[str, httpx.Client]:
    return {who: live.client(who) for who in live.tokens}


def approval(up_to_fen: int, **extra: Any) -> dict[str, Any]:
    return {"up_to_fen": up_to_fen, "note": "经分行复核同意，赔付客户年费及利息损失", **extra}


def decided_with(redress_fen: int, on: str) -> dict[str, Any]:
    return decision(on) | {"redress_fen": redress_fen}


def assigned_case(clients: dict[str, httpx.Client], **kwargs: Any) -> dict[str, Any]:
    case = receive(clients["staff_a"], **kwargs)
    return ok(post(clients["staff_a"], case, "assign", {"handler_id": "staff-a1"}))


def case_document(client: httpx.Client, case: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/v1/complaints/{case['id']}")
    assert response.status_code == 200, response.text
    return response.json()


# --- redress authority (Art. 24; desk rule 客訴金額核決權限) ----------------------------------


def test_a_redress_beyond_the_staff_limit_needs_an_approval_used_once(
    clients: dict[str, httpx.Client],
) -> None:
    staff, supervisor_a = clients["staff_a"], clients["supervisor_a"]
    case = assigned_case(clients, institution="SUB-A1", received_days_ago=3)
    today = TODAY.isoformat()

    problem = refused(
        post(staff, case, "decide", decided_with(ABOVE_STAFF_LIMIT_FEN, today)),
        "redress_exceeds_authority",
    )
    assert str(ABOVE_STAFF_LIMIT_FEN) in problem["detail"]
    within = post(staff, case, "decide", decided_with(STAFF_LIMIT_FEN + 1, today))
    refused(within, "redress_exceeds_authority")

    # Quick approval (Art. 24 快速审批): the branch above the sub-branch approves.
    approved = ok(post(supervisor_a, case, "approve-redress", approval(ABOVE_STAFF_LIMIT_FEN)))
    assert approved["redress_approval"] == {
        "up_to_fen": ABOVE_STAFF_LIMIT_FEN,
        "approver_id": "sup-a1",
        "approved_on": today,
        "note": None,
    }
    assert case_document(staff, case)["redress_approval"] == approved["redress_approval"]

    decided = ok(post(staff, case, "decide", decided_with(ABOVE_STAFF_LIMIT_FEN, today)))
    assert decided["status"] == "decided"
    assert decided["decision"]["redress_fen"] == ABOVE_STAFF_LIMIT_FEN
    assert decided["redress_approval"] is None  # used by the decision

    # The approval is not reusable: a review decision that changes the redress needs a new one.
    ok(post(staff, case, "appeal", {"received_on": today, "grounds": "赔付金额不足"}))
    review = {
        "reviewer_id": "staff-a3",  # neither the handler nor named in the complaint
        "outcome": "changed",
        "findings": "原处理未考虑利息损失",
        "new_outcome": "upheld",
        "new_redress_fen": ABOVE_STAFF_LIMIT_FEN,
        "notice": notice(today),
    }
    refused(post(staff, case, "decide-review", review), "redress_exceeds_authority")
    # A head-office supervisor has no limit.
    reviewed = ok(post(clients["supervisor_ho"], case, "decide-review", review))
    assert reviewed["status"] == "review_decided"
    assert reviewed["review"]["decision"]["new_redress_fen"] == ABOVE_STAFF_LIMIT_FEN


def test_only_a_supervisor_at_or_above_the_case_within_their_limit_approves(
    clients: dict[str, httpx.Client],
) -> None:
    case = assigned_case(clients, institution="BR-A", received_days_ago=2)

    refused(post(clients["staff_a"], case, "approve-redress", approval(50_000)), "forbidden", 403)
    # A supervisor of another branch does not see the case at all (API.md "Conventions").
    refused(
        post(clients["supervisor_b"], case, "approve-redress", approval(50_000)),
        "not_found",
        404,
    )
    refused(
        post(clients["supervisor_a"], case, "approve-redress", approval(SUPERVISOR_LIMIT_FEN + 1)),
        "approver_lacks_authority",
    )
    refused(post(clients["regulator"], case, "approve-redress", approval(50_000)), "forbidden", 403)
    assert case_document(clients["staff_a"], case)["redress_approval"] is None

    # At its own limit a branch supervisor approves; the head office approves beyond it.
    at_limit = ok(
        post(clients["supervisor_a"], case, "approve-redress", approval(SUPERVISOR_LIMIT_FEN))
    )
    assert at_limit["redress_approval"]["up_to_fen"] == SUPERVISOR_LIMIT_FEN
    beyond = ok(
        post(clients["supervisor_ho"], case, "approve-redress", approval(SUPERVISOR_LIMIT_FEN * 4))
    )
    assert beyond["redress_approval"]["approver_id"] == "sup-ho1"
    assert beyond["redress_approval"]["up_to_fen"] == SUPERVISOR_LIMIT_FEN * 4


def test_an_approval_body_is_validated(clients: dict[str, httpx.Client]) -> None:
    case = assigned_case(clients, institution="BR-A", received_days_ago=2)
    supervisor = clients["supervisor_a"]
    refused(
        post(supervisor, case, "approve-redress", {"up_to_fen": 1000}), "validation_failed", 422
    )
    late = approval(1000, approved_on=days_ago(-1))
    refused(post(supervisor, case, "approve-redress", late), "business_date_in_future")


# --- attribution, rectification, follow-up (Art. 26; desk rule 責任歸屬; 回访) -----------------


def attribution(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attributed_on": days_ago(4),
        "responsible_institution": "br-a",
        "department": "信用卡中心",
        "responsible_staff": ["staff-a2"],
        "root_cause": "third_party",
        "third_party": "某某催收服务有限公司",
        "actions": [
            {
                "action_id": "RA-1",
                "description": "终止与该催收公司的合作并通报",
                "owner_id": "staff-a2",
                "due_on": days_ago(1),
            },
            {
                "action_id": "RA-2",
                "description": "修订外包催收管理办法",
                "owner_id": "staff-a1",
                "due_on": days_ago(-30),
            },
        ],
    }
    body.update(extra)
    return body


def test_attribution_rectification_and_follow_up_after_the_decision(
    clients: dict[str, httpx.Client],
) -> None:
    staff = clients["staff_a"]
    case = assigned_case(clients, institution="BR-A", received_days_ago=10)

    refused(
        post(staff, case, "attribute", attribution(attributed_on=days_ago(9))), "case_not_decided"
    )
    follow_up = {"reached": True, "satisfaction": "satisfied", "followed_up_on": days_ago(9)}
    refused(post(staff, case, "follow-up", follow_up), "case_not_decided")
    refused(post(clients["regulator"], case, "attribute", attribution()), "forbidden", 403)

    ok(post(staff, case, "decide", decision(days_ago(5))))
    refused(
        post(staff, case, "attribute", attribution(responsible_institution="NO-SUCH-BRANCH")),
        "unknown_institution",
    )
    refused(
        post(staff, case, "attribute", attribution(root_cause="systems")),  # a third party named
        "validation_failed",
        422,
    )
    refused(post(staff, case, "rectify", rectification("RA-1")), "unknown_action")

    attributed = ok(post(staff, case, "attribute", attribution(attributed_on=days_ago(4))))
    assert attributed["attribution"] == {
        "attributed_on": days_ago(4),
        "responsible_institution": "BR-A",  # as the tree spells it
        "department": "信用卡中心",
        "responsible_staff": ["staff-a2"],
        "root_cause": "third_party",
        "third_party": None,  # personal data: never in the document
        "actions": [
            {
                "action_id": "RA-1",
                "description": None,
                "owner_id": "staff-a2",
                "due_on": days_ago(1),
                "status": "overdue",  # due yesterday, not closed
                "closed_on": None,
                "evidence_ref": None,
            },
            {
                "action_id": "RA-2",
                "description": None,
                "owner_id": "staff-a1",
                "due_on": days_ago(-30),
                "status": "open",
                "closed_on": None,
                "evidence_ref": None,
            },
        ],
    }
    assert case_document(staff, case)["attribution"] == attributed["attribution"]

    refused(post(staff, case, "rectify", rectification("RA-9")), "unknown_action")
    rectified = ok(post(staff, case, "rectify", rectification("RA-1")))
    closed = rectified["attribution"]["actions"][0]
    assert closed["status"] == "closed"
    assert closed["closed_on"] == TODAY.isoformat()
    assert closed["evidence_ref"] == "OA-整改-0158"
    assert rectified["attribution"]["actions"][1]["status"] == "open"
    refused(post(staff, case, "rectify", rectification("RA-1")), "action_already_closed")

    unreached = {"reached": True, "followed_up_on": TODAY.isoformat()}  # satisfaction missing
    refused(post(staff, case, "follow-up", unreached), "validation_failed", 422)
    followed = ok(
        post(
            staff,
            case,
            "follow-up",
            {
                "reached": True,
                "satisfaction": "basically_satisfied",
                "followed_up_on": TODAY.isoformat(),
                "note": "客户表示已收到退款，账户6217000010009876543已恢复",
            },
        )
    )
    assert followed["follow_up"] == {
        "reached": True,
        "satisfaction": "basically_satisfied",
        "followed_up_on": TODAY.isoformat(),
        "note": None,
    }
    document = case_document(staff, case)
    assert document["follow_up"] == followed["follow_up"]
    assert "6217000010009876543" not in str(document)
    assert "催收" not in str(document)


def test_a_follow_up_of_an_unreached_complainant_has_no_satisfaction(
    clients: dict[str, httpx.Client],
) -> None:
    staff = clients["staff_a"]
    case = assigned_case(clients, institution="SUB-A1", received_days_ago=4)
    ok(post(staff, case, "decide", decision(days_ago(2))))
    followed = ok(post(staff, case, "follow-up", {"reached": False}))  # dated today by default
    assert followed["follow_up"] == {
        "reached": False,
        "satisfaction": None,
        "followed_up_on": TODAY.isoformat(),
        "note": None,
    }
    both = {"reached": False, "satisfaction": "dissatisfied"}
    refused(post(staff, case, "follow-up", both), "validation_failed", 422)


def rectification(action_id: str) -> dict[str, Any]:
    return {"action_id": action_id, "done_on": TODAY.isoformat(), "evidence_ref": "OA-整改-0158"}


def test_an_overdue_rectification_shows_in_the_statistics(
    clients: dict[str, httpx.Client],
) -> None:
    """Art. 26: the actions of the cases attributed in a period, by status as of today, in the
    branch's statistics (counted by the live runner, so polled until it has caught up)."""
    staff = clients["staff_b"]
    before = rectification_figures(clients["supervisor_b"])
    case = receive(staff, institution="BR-B", received_days_ago=10)
    ok(post(staff, case, "assign", {"handler_id": "staff-b1"}))
    ok(post(staff, case, "decide", decision(days_ago(5), handler="staff-b1")))
    ok(post(staff, case, "attribute", attribution(responsible_institution="BR-B")))

    attributed = {**before, "attributed": before["attributed"] + 1}
    attributed["third_party"] += 1
    attributed["overdue"] += 1  # RA-1, due yesterday
    attributed["open"] += 1  # RA-2, due in 30 days
    assert figures_become(clients["supervisor_b"], attributed) == attributed

    ok(post(staff, case, "rectify", rectification("RA-1")))
    rectified = {**attributed, "overdue": attributed["overdue"] - 1}
    rectified["closed"] += 1
    assert figures_become(clients["supervisor_b"], rectified) == rectified


def rectification_figures(client: httpx.Client) -> dict[str, int]:
    response = client.get(
        "/v1/institutions/BR-B/statistics", params={"from": days_ago(30), "to": TODAY.isoformat()}
    )
    assert response.status_code == 200, response.text
    figures = response.json()["total"]["figures"]
    return {
        "attributed": figures["attributed"],
        "third_party": figures["third_party"],
        **figures["rectification"],
    }


def figures_become(client: httpx.Client, expected: dict[str, int]) -> dict[str, int]:
    """The figures once they equal `expected`, or as they stand after ten seconds."""
    for _ in range(200):
        figures = rectification_figures(client)
        if figures == expected:
            break
        time.sleep(0.05)
    return figures
