"""Major complaints (Art. 29 重大消费投诉 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

import pytest
from builders import Case, d, decided_case, receive, received_case

from complaintcore.domain import FlagMajor, JointComplaint, MajorCause, MarkedMajor

RECEIVED_ON = d("2026-03-02")
TODAY = d("2026-03-05")


@pytest.mark.parametrize(
    ("article", "role", "cause"),
    [
        ("Art. 29 (一)", "staff", MajorCause.DISASTER),
        ("Art. 29 (一)", "supervisor", MajorCause.ACCIDENT),
        ("Art. 29 (一)", "staff", MajorCause.PUBLIC_HEALTH),
        ("Art. 29 (三)", "regulator", MajorCause.REGULATOR),
        ("Art. 29 (一)", "regulator", MajorCause.DISASTER),
    ],
)
def test_a_case_is_flagged_major_with_its_cause(article: str, role: str, cause: MajorCause) -> None:
    case = received_case(RECEIVED_ON)

    (marked,) = case.do(FlagMajor(cause, "台风“海葵”致营业网点停业"), today=TODAY, actor_role=role)

    assert marked == MarkedMajor(cause, "台风“海葵”致营业网点停业", TODAY)
    assert case.state.major


@pytest.mark.parametrize(
    ("role", "cause"),
    [
        ("staff", MajorCause.REGULATOR),  # only the regulator designates (Art. 29 (三))
        ("supervisor", MajorCause.REGULATOR),
        ("admin", MajorCause.DISASTER),  # admins manage reference data, not cases
    ],
)
def test_only_a_regulator_designates_a_case_major_on_its_own_authority(
    role: str, cause: MajorCause
) -> None:
    case = received_case(RECEIVED_ON)

    refusal = case.refuse(FlagMajor(cause, "认定为重大投诉"), today=TODAY, actor_role=role)

    assert refusal == "not_authorized_to_designate"


def test_a_major_case_is_not_flagged_again() -> None:
    case = Case()
    case.do(
        receive(
            RECEIVED_ON,
            channel="in_person",
            joint=JointComplaint(complainants=25, representatives=("甲", "乙")),
        )
    )

    refusal = case.refuse(
        FlagMajor(MajorCause.REGULATOR, "认定"), today=TODAY, actor_role="regulator"
    )

    assert refusal == "already_major"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (FlagMajor(MajorCause.DISASTER, " "), [("detail", "required")]),
        # Art. 29 (二) is decided by the headcount at receipt, never by hand.
        (FlagMajor(MajorCause.GROUP_COMPLAINT, "群体性投诉"), [("cause", "not_allowed")]),
    ],
)
def test_a_flag_states_an_allowed_cause_and_its_detail(
    command: FlagMajor, expected: list[tuple[str, str]]
) -> None:
    case = received_case(RECEIVED_ON)

    assert case.invalid(command, today=TODAY) == expected


def test_a_decided_case_within_its_review_window_can_still_be_flagged() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-16"))

    case.do(FlagMajor(MajorCause.REGULATOR, "认定"), today=d("2026-03-20"), actor_role="regulator")

    assert case.state.major_flag is not None
    assert case.state.major_flag.cause is MajorCause.REGULATOR
