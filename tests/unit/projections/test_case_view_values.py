"""The case view's row is made as a tuple in `COLUMNS`' order (a rebuild makes one a case, a
command one a write): each value must be the one its column names, checked here against a
mapping from column to value written apart from the module, over cases in every stage."""

from datetime import date
from typing import Any

import pytest

from complaintcore.crypto.blind_index import IndexKey
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.state import ComplaintState, closed_on
from complaintcore.projections.case_view import (
    COLUMNS,
    case_view_row,
    case_view_values,
    complainant_index,
    masked_complainant,
)
from unit.domain.builders import (
    Case,
    appeal,
    d,
    decided_case,
    erase,
    extend,
    pause,
    received_case,
    review_decision,
)

INDEX_KEY = IndexKey(b"\x07" * 32, suite_named("aes-256-gcm"))


def expected_row(state: ComplaintState) -> dict[str, Any]:
    decision, review = state.decision, state.review
    return {
        "case_id": state.id,
        "registration_no": state.registration_no,
        "version": state.version,
        "status": str(state.status),
        "respondent_institution": state.respondent_institution,
        "handler_id": state.handler_id,
        "channel": state.channel,
        "category_business": state.category.business,
        "category_reason": state.category.reason,
        "major": state.major_flag is not None,
        "received_on": state.received_on,
        "last_business_date": state.last_business_date,
        "due_on": state.clock.due_on,
        "level": state.clock.level,
        "paused_days": state.clock.paused_days,
        "paused_since": state.clock.paused_since,
        "clock_stopped_on": state.clock.stopped_on,
        "decided_on": decision.notice.notified_on if decision else None,
        "outcome": str(decision.outcome) if decision else None,
        "on_time": decision.on_time if decision else None,
        "review_requested_on": review.requested_on if review else None,
        "review_due_on": review.due_on if review else None,
        "review_decided_on": review.decision.notice.notified_on
        if review and review.decision
        else None,
        "review_window_ends_on": decision.review_window_ends_on if decision else None,
        "merged_into": state.merged_into,
        "complainant": masked_complainant(state),
        "closed_on": closed_on(state, date.max),
        "personal_data": state.personal_data,
        "complainant_index": complainant_index(state, INDEX_KEY),
    }


def paused_and_extended() -> Case:
    case = received_case(d("2026-03-02"))
    case.do(extend(d("2026-03-05")))
    case.do(pause(d("2026-03-06")))
    return case


def reviewed() -> Case:
    case = decided_case(d("2026-03-02"), d("2026-03-10"))
    case.do(appeal(d("2026-03-20")))
    case.do(review_decision(d("2026-04-01")))
    return case


def erased_after_review() -> Case:
    case = reviewed()
    case.do(erase(d("2031-05-01")))
    return case


@pytest.mark.parametrize(
    "make",
    [
        lambda: received_case(d("2026-03-02")),
        paused_and_extended,
        lambda: decided_case(d("2026-03-02"), d("2026-03-10")),
        reviewed,
        erased_after_review,
    ],
    ids=["received", "paused and extended", "decided", "reviewed", "erased"],
)
def test_each_value_is_the_one_its_column_names(make: Any) -> None:
    state = make().state

    values = case_view_values(state, INDEX_KEY)

    assert len(values) == len(COLUMNS)
    assert dict(zip(COLUMNS, values, strict=True)) == expected_row(state)
    assert case_view_row(state, INDEX_KEY) == expected_row(state)
