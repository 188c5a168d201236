"""Refusals are named rules with stable codes (the HTTP contract returns them)."""

from __future__ import annotations

import re

from complaintcore.domain import ALL_RULES, FieldError, InvalidCommand, InvalidComplaint
from complaintcore.domain.rules import APPEAL_WINDOW_CLOSED

CODES_THE_CONTRACT_NAMES = {
    "case_not_assigned",
    "handler_has_conflict",
    "handler_not_assigned",
    "extension_requires_approval",
    "extension_limit_reached",
    "case_overdue",
    "case_paused",
    "case_not_paused",
    "pause_already_open",
    "appeal_window_closed",
    "review_not_available",
    "review_not_requested",
    "case_closed",
    "case_already_decided",
    "case_not_decided",
    "business_date_in_future",
    "business_date_before_previous",
    "cannot_merge_into_itself",
    "not_authorized_to_designate",
    "already_major",
}


def test_every_rule_has_a_unique_snake_case_code_an_article_and_a_message() -> None:
    codes = [rule.code for rule in ALL_RULES]

    assert len(codes) == len(set(codes))
    assert set(codes) >= CODES_THE_CONTRACT_NAMES
    for rule in ALL_RULES:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", rule.code)
        assert rule.article.startswith("Art. ")
        assert rule.message


def test_a_violation_carries_the_rule_code_article_and_message() -> None:
    violation = APPEAL_WINDOW_CLOSED.violation("the window ended on 2026-05-01")

    assert violation.code == "appeal_window_closed"
    assert violation.article == "Art. 20"
    assert violation.message.endswith("(the window ended on 2026-05-01)")


def test_an_invalid_complaint_is_an_invalid_command_listing_its_fields() -> None:
    error = InvalidComplaint([FieldError("complainant.id_number", "invalid_resident_id", "bad")])

    assert isinstance(error, InvalidCommand)
    assert error.errors[0].field == "complainant.id_number"
