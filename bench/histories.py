"""Synthetic but rule-abiding histories: an institution tree and JSON Lines for `complaintcore
import`, seeded so every run imports the same cases."""

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson

from complaintcore.application.bulk_import import case_id_for

HEAD_OFFICE = "HO"
BRANCHES = [f"BR-{n:02d}" for n in range(1, 5)]
SUB_BRANCHES = [f"{branch}-S{n}" for branch in BRANCHES for n in range(1, 5)]
RESPONDENTS = BRANCHES + SUB_BRANCHES
FIRST_DAY = date(2025, 1, 2)
DAYS_SPREAD = 300
CATEGORIES = [
    ("credit_card", "pricing_and_fees"),
    ("credit_card", "collection_methods"),
    ("savings", "service_attitude"),
    ("loans", "pricing_and_fees"),
    ("wealth_management", "marketing"),
]
NAMES = ["张三", "李四", "王五", "赵六", "陈七"]
RESIDENT_IDS = ["11010519491231002X", "110105198001011238", "310101199002152346"]
CHANNELS = ["phone", "online", "letter", "email"]
ROOT_CAUSES = ["product_design", "rules_and_process", "systems", "staff_conduct", "third_party"]
SATISFACTION = ["satisfied", "basically_satisfied", "dissatisfied"]


def institution_tree() -> list[dict[str, Any]]:
    tree = [{"code": HEAD_OFFICE, "name": "总行", "kind": "head_office", "parent": None}]
    tree += [
        {"code": b, "name": f"分行{b}", "kind": "branch", "parent": HEAD_OFFICE} for b in BRANCHES
    ]
    tree += [
        {"code": s, "name": f"支行{s}", "kind": "sub_branch", "parent": s.rsplit("-", 1)[0]}
        for s in SUB_BRANCHES
    ]
    return tree


def notice(on: date) -> dict[str, Any]:
    return {"method": "sms", "notified_on": on.isoformat(), "proof_ref": f"SMS-{on:%Y%m%d}"}


def receipt_body(rng: random.Random, institution: str, received_on: date) -> dict[str, Any]:
    business, reason = rng.choice(CATEGORIES)
    return {
        "respondent_institution": institution,
        "channel": rng.choice(CHANNELS),
        "received_on": received_on.isoformat(),
        "complainant": {
            "kind": "natural_person",
            "name": rng.choice(NAMES),
            "id_type": "resident_id",
            "id_number": rng.choice(RESIDENT_IDS),
            "contact": f"138{rng.randrange(10**8):08d}",
        },
        "claims": "退还费用并道歉",
        "facts": "未经同意扣收费用，多次联系未果",
        "category": {"business": business, "reason": reason},
    }


def actions_of(
    rng: random.Random, received_on: date, handler: str, institution: str
) -> list[dict[str, Any]]:
    """A typical life: acceptance notice, assignment, maybe an extension or a pause, then a
    decision (sometimes attributed and rectified, reviewed, followed up), a withdrawal or a
    decline."""

    def on(days: int) -> date:
        return received_on + timedelta(days=days)

    actions: list[dict[str, Any]] = [
        {
            "command": "notify",
            "at": on(1).isoformat(),
            "subject": "acceptance",
            "notice": notice(on(1)),
        },
        {"command": "assign", "at": on(1).isoformat(), "handler_id": handler},
    ]
    roll = rng.random()
    if roll < 0.08:
        actions.append(
            {"command": "withdraw", "at": on(4).isoformat(), "received_on": on(4).isoformat()}
        )
        return actions
    if roll < 0.10:
        actions.append(
            {
                "command": "decline",
                "at": on(3).isoformat(),
                "reason": "非本人",
                "notice": notice(on(3)),
            }
        )
        return actions
    if rng.random() < 0.2:
        actions.append(
            {
                "command": "extend",
                "at": on(5).isoformat(),
                "reason": "情况复杂",
                "notice": notice(on(5)),
            }
        )
    if rng.random() < 0.1:
        actions.append(
            {
                "command": "pause",
                "at": on(6).isoformat(),
                "kind": "appraisal",
                "paused_on": on(6).isoformat(),
                "reason": "外部鉴定",
                "notice": notice(on(6)),
            }
        )
        actions.append(
            {"command": "resume", "at": on(9).isoformat(), "resumed_on": on(9).isoformat()}
        )
    actions.append(
        {
            "command": "decide",
            "at": on(12).isoformat(),
            "handler_id": handler,
            "outcome": rng.choice(["upheld", "partially_upheld", "rejected"]),
            "findings": "核实属实",
            "basis": "合同约定",
            "redress_fen": rng.randrange(0, 100_000),
            "remedies": ["review", "litigation"],
            "notice": notice(on(12)),
        }
    )
    if rng.random() < 0.1:
        actions.append(
            {
                "command": "appeal",
                "at": on(15).isoformat(),
                "received_on": on(15).isoformat(),
                "grounds": "不服",
            }
        )
        actions.append(
            {
                "command": "decide-review",
                "at": on(25).isoformat(),
                # decided at the superior (Art. 20): the head office is above every respondent
                "actor": {"id": "reviewer-1", "role": "staff", "institution": HEAD_OFFICE},
                "reviewer_id": "reviewer-1",
                "outcome": "kept",
                "findings": "维持原处理",
                "notice": notice(on(25)),
            }
        )
    if rng.random() < 0.25:
        actions += attribution(rng, received_on, institution, handler)
    if rng.random() < 0.3:
        actions.append(follow_up(rng, on(40)))
    return actions


def attribution(
    rng: random.Random, received_on: date, institution: str, owner: str
) -> list[dict[str, Any]]:
    """The root cause of a decided case (Art. 26), with a rectification action that is closed
    in half the cases: what the statistics' root-cause and rectification breakdowns count."""
    root_cause = rng.choice(ROOT_CAUSES)
    attributed_on = received_on + timedelta(days=26)
    actions: list[dict[str, Any]] = [
        {
            "command": "attribute",
            "at": attributed_on.isoformat(),
            "attributed_on": attributed_on.isoformat(),
            "responsible_institution": institution,
            "root_cause": root_cause,
            "third_party": "某外包催收公司" if root_cause == "third_party" else None,
            "actions": [
                {
                    "action_id": "RA-1",
                    "description": "修订扣费提示流程",
                    "owner_id": owner,
                    "due_on": (received_on + timedelta(days=50)).isoformat(),
                }
            ],
        }
    ]
    if rng.random() < 0.5:
        done_on = received_on + timedelta(days=35)
        actions.append(
            {
                "command": "rectify",
                "at": done_on.isoformat(),
                "action_id": "RA-1",
                "done_on": done_on.isoformat(),
                "evidence_ref": f"OA-整改-{done_on:%Y%m%d}",
            }
        )
    return actions


def follow_up(rng: random.Random, on: date) -> dict[str, Any]:
    """A follow-up call after the decision (回访): most reached, with their satisfaction."""
    reached = rng.random() < 0.9
    return {
        "command": "follow-up",
        "at": on.isoformat(),
        "followed_up_on": on.isoformat(),
        "reached": reached,
        "satisfaction": rng.choice(SATISFACTION) if reached else None,
    }


def external_id(prefix: str, n: int) -> str:
    """The external id of the `n`-th line `case_lines` makes with `prefix`."""
    return f"{prefix}-{n:08d}"


def case_ids(count: int, prefix: str = "LEGACY") -> list[str]:
    """The case ids the import gives the first `count` lines of `case_lines` with `prefix`."""
    return [case_id_for(external_id(prefix, n)) for n in range(count)]


def case_lines(
    count: int, seed: int = 20250101, prefix: str = "LEGACY", first_day: date = FIRST_DAY
) -> Iterator[bytes]:
    """`count` import lines, received from `first_day` on; about 5 events a case."""
    rng = random.Random(seed)
    for n in range(count):
        institution = rng.choice(RESPONDENTS)
        received_on = first_day + timedelta(days=rng.randrange(DAYS_SPREAD))
        case = {
            "external_id": external_id(prefix, n),
            **receipt_body(rng, institution, received_on),
            "actor": {"id": "migration", "role": "staff", "institution": institution},
            "actions": actions_of(rng, received_on, f"staff-{rng.randrange(50):03d}", institution),
        }
        yield orjson.dumps(case) + b"\n"


def long_case_line(external_id: str, events: int = 30) -> bytes:
    """One case of exactly `events` events: receipt, assignment, then progress notices."""
    received_on = FIRST_DAY
    rng = random.Random(7)
    actions = [{"command": "assign", "at": received_on.isoformat(), "handler_id": "staff-001"}]
    for n in range(events - 2):
        day = received_on + timedelta(days=min(n // 2, 14))
        actions.append(
            {
                "command": "notify",
                "at": day.isoformat(),
                "subject": "progress",
                "notice": notice(day),
                "summary": f"进展 {n}",
            }
        )
    case = {
        "external_id": external_id,
        **receipt_body(rng, BRANCHES[0], received_on),
        "actor": {"id": "migration", "role": "staff", "institution": BRANCHES[0]},
        "actions": actions,
    }
    return orjson.dumps(case) + b"\n"
