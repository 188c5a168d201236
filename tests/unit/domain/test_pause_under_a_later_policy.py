"""An institution policy version changing mid-case must not let a pause pull the due
date in.

DOMAIN.md "Deadlines" (Art. 18 ¶2, Art. 23): "Days from `paused_on` (inclusive) to `resumed_on`
(exclusive) are not counted: the due date moves out by that many days." DOMAIN.md "Institution
policy": a change takes effect from its `effective_from`, "so a rule is judged under the policy in
force on the command's business date" -- a pause is not a re-judgement of the receipt.

Received Fri 2025-08-01 under `roll_past_holidays` on: 08-01 + 15 = Sat 08-16, rolled to Mon
08-18. The institution's next policy version (roll off) takes effect on 08-10.
"""

from __future__ import annotations

from builders import assigned_case, d, pause, resume, roll_policy

from complaintcore.domain import DEFAULT_POLICY, ClockStatus, clock_status


def test_a_pause_of_no_days_under_a_later_policy_does_not_move_the_due_date_earlier() -> None:
    case = assigned_case(d("2025-08-01"), policy=roll_policy())
    assert case.state.due_on == d("2025-08-18")

    # Mediation agreed and ended the same day, after the policy changed: 0 days not counted.
    case.do(pause(d("2025-08-12")), policy=DEFAULT_POLICY)
    case.do(resume(d("2025-08-12")), policy=DEFAULT_POLICY)

    assert case.state.due_on >= d("2025-08-18")


def test_a_case_on_its_due_day_is_not_made_overdue_by_a_same_day_pause() -> None:
    case = assigned_case(d("2025-08-01"), policy=roll_policy())
    case.do(pause(d("2025-08-18")), policy=DEFAULT_POLICY)
    case.do(resume(d("2025-08-18")), policy=DEFAULT_POLICY)

    reading = clock_status(case.state, d("2025-08-18"), DEFAULT_POLICY)
    assert reading.status is not ClockStatus.OVERDUE
