"""Receiving a complaint (Art. 12–14, 18, 29, 33 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from builders import (
    RESPONDENT_STAFF_ID,
    Case,
    agent,
    company,
    context,
    d,
    person,
    receive,
    received_case,
    roll_policy,
)

from complaintcore.domain import (
    AssignHandler,
    Category,
    ComplaintReceived,
    IdType,
    InvalidComplaint,
    JointComplaint,
    MajorCause,
    MarkedMajor,
    RegulatorTransfer,
    RegulatorTransferCheck,
    RespondentStaff,
    RuleViolation,
    decide,
)

RECEIVED_ON = d("2026-03-02")


def field_errors(command: Any, today: date = RECEIVED_ON) -> set[tuple[str, str]]:
    with pytest.raises(InvalidComplaint) as invalid:
        decide(None, command, context(today))
    return {(error.field, error.code) for error in invalid.value.errors}


def test_a_complete_complaint_is_received_with_its_due_date_15_days_later() -> None:
    events = decide(None, receive(RECEIVED_ON), context(RECEIVED_ON))

    assert len(events) == 1
    received = events[0]
    assert isinstance(received, ComplaintReceived)
    assert received.due_on == d("2026-03-17")  # Art. 18: receipt day not counted, day 15 included
    assert received.regulator_transfer is None


@pytest.mark.parametrize(
    ("article", "overrides", "expected"),
    [
        # Art. 13 (一): a natural person's name, identity and contact.
        ("Art. 13", {"complainant": person(name=" ")}, ("complainant.name", "required")),
        ("Art. 13", {"complainant": person(contact="")}, ("complainant.contact", "required")),
        ("Art. 13", {"complainant": person(id_type=None)}, ("complainant.id_type", "required")),
        ("Art. 13", {"complainant": person(id_number="")}, ("complainant.id_number", "required")),
        # GB 11643: the last character of 11010519491231002X is its check character.
        (
            "Art. 22",
            {"complainant": person(id_number="110105194912310021")},
            ("complainant.id_number", "invalid_resident_id"),
        ),
        # A birth date after the day of receipt is no real identity number.
        (
            "Art. 22",
            {"complainant": person(id_number="110105202712310022")},
            ("complainant.id_number", "invalid_resident_id"),
        ),
        # Art. 13 (一): a legal person's address, USCC, legal representative's name and contact.
        ("Art. 13", {"complainant": company(address="")}, ("complainant.address", "required")),
        (
            "Art. 13",
            {"complainant": company(unified_social_credit_code="")},
            ("complainant.unified_social_credit_code", "required"),
        ),
        (
            "Art. 13",
            {"complainant": company(unified_social_credit_code="91350100M000100Y44")},
            ("complainant.unified_social_credit_code", "invalid_credit_code"),
        ),
        (
            "Art. 13",
            {"complainant": company(legal_representative_name="")},
            ("complainant.legal_representative_name", "required"),
        ),
        (
            "Art. 13",
            {"complainant": company(legal_representative_contact="")},
            ("complainant.legal_representative_contact", "required"),
        ),
        # Art. 13 (三): claims and facts.
        ("Art. 13", {"claims": ""}, ("claims", "required")),
        ("Art. 13", {"facts": "  "}, ("facts", "required")),
        ("Art. 13", {"respondent_institution": ""}, ("respondent_institution", "required")),
        ("Art. 12", {"channel": "wechat"}, ("channel", "unknown_channel")),
        # Art. 14 ¶1: an agent's name, identity, contact and authorization letter.
        ("Art. 14", {"agent": agent(name="")}, ("agent.name", "required")),
        ("Art. 14", {"agent": agent(id_number="")}, ("agent.id_number", "required")),
        (
            "Art. 14",
            {"agent": agent(id_number="440301199001011235")},
            ("agent.id_number", "invalid_resident_id"),
        ),
        ("Art. 14", {"agent": agent(contact="")}, ("agent.contact", "required")),
        (
            "Art. 14",
            {"agent": agent(authorization_ref="")},
            ("agent.authorization_ref", "required"),
        ),
        # Art. 14 ¶2: an heir proves the inheritance.
        ("Art. 14", {"filed_by_heir": True}, ("heir_proof_ref", "required")),
        # Art. 13 (二): named respondent staff are identified.
        (
            "Art. 13",
            {"respondent_staff": (RespondentStaff("", "赵六"),)},
            ("respondent_staff[0].staff_id", "required"),
        ),
        # Taxonomy (JR/T 0169-2018): categories come from the institution's taxonomy.
        (
            "Art. 26",
            {"category": Category("crypto", "other")},
            ("category.business", "unknown_business"),
        ),
        (
            "Art. 26",
            {"category": Category("loans", "weather")},
            ("category.reason", "unknown_cause"),
        ),
    ],
)
def test_a_complaint_missing_what_art_13_and_14_require_is_refused_naming_the_field(
    article: str, overrides: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in field_errors(receive(RECEIVED_ON, **overrides))


def test_every_bad_field_is_listed_at_once() -> None:
    command = receive(
        RECEIVED_ON,
        claims="",
        complainant=person(contact="", id_number="110105194912310021"),
        agent=agent(authorization_ref=""),
    )

    assert field_errors(command) == {
        ("claims", "required"),
        ("complainant.contact", "required"),
        ("complainant.id_number", "invalid_resident_id"),
        ("agent.authorization_ref", "required"),
    }


def test_a_residence_permit_number_is_checked_as_a_citizen_identity_number() -> None:
    """港澳台居民居住证: a GB 11643 number under area 810000, 820000 or 830000."""
    valid = "810000199001011230"  # check character by MOD 11-2
    assert decide(
        None,
        receive(RECEIVED_ON, complainant=person(id_type=IdType.RESIDENCE_PERMIT, id_number=valid)),
        context(RECEIVED_ON),
    )
    wrong = receive(
        RECEIVED_ON,
        complainant=person(id_type=IdType.RESIDENCE_PERMIT, id_number=valid[:-1] + "1"),
    )
    assert field_errors(wrong) == {("complainant.id_number", "invalid_resident_id")}


def test_a_natural_person_gives_no_unified_social_credit_code() -> None:
    """An organisation's code is kept in clear; a person's number put there would be too, and
    would outlive an erasure."""
    command = receive(
        RECEIVED_ON, complainant=person(unified_social_credit_code="11010519491231002X")
    )

    assert field_errors(command) == {("complainant.unified_social_credit_code", "not_allowed")}


def test_a_passport_number_is_not_checked_as_a_resident_id() -> None:
    command = receive(
        RECEIVED_ON, complainant=person(id_type=IdType.PASSPORT, id_number="E1234567")
    )

    assert decide(None, command, context(RECEIVED_ON))


@pytest.mark.parametrize(
    "overrides",
    [
        {"complainant": company()},  # Art. 13 (一), legal person with a valid USCC
        {"agent": agent()},  # Art. 14 ¶1
        {"filed_by_heir": True, "heir_proof_ref": "继承公证书 (2026) 沪证字第1号"},  # Art. 14 ¶2
        {"respondent_staff": (RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)},  # Art. 13 (二)
    ],
)
def test_complete_complaints_of_every_shape_are_received(overrides: dict[str, Any]) -> None:
    (received,) = decide(None, receive(RECEIVED_ON, **overrides), context(RECEIVED_ON))

    assert isinstance(received, ComplaintReceived)


# --- joint complaints (Art. 12, 29) --------------------------------------------------------------


def joint(complainants: int, representatives: int) -> JointComplaint:
    names = tuple(f"代表{index}" for index in range(1, representatives + 1))
    return JointComplaint(complainants=complainants, representatives=names)


@pytest.mark.parametrize(
    ("article", "channel", "group", "expected"),
    [
        (
            "Art. 12",
            "in_person",
            joint(30, 6),
            ("joint.representatives", "too_many_representatives"),
        ),
        ("Art. 12", "in_person", joint(8, 0), ("joint.representatives", "required")),
        ("Art. 12", "in_person", joint(1, 1), ("joint.complainants", "too_few")),
        ("Art. 12", "in_person", joint(2, 3), ("joint.representatives", "more_than_complainants")),
        ("Art. 12", "letter", joint(5, 2), ("joint", "not_allowed")),
    ],
)
def test_a_joint_complaint_is_made_face_to_face_through_at_most_5_representatives(
    article: str, channel: str, group: JointComplaint, expected: tuple[str, str]
) -> None:
    assert expected in field_errors(receive(RECEIVED_ON, channel=channel, joint=group))


@pytest.mark.parametrize(
    ("complainants", "major"),
    [(19, False), (20, True), (57, True)],  # Art. 29 (二): 20名以上 includes 20 (Art. 43)
)
def test_20_or_more_complainants_face_to_face_make_the_case_major_automatically(
    complainants: int, major: bool
) -> None:
    case = Case()
    events = case.do(receive(RECEIVED_ON, channel="in_person", joint=joint(complainants, 5)))

    assert case.state.major is major
    assert case.state.joint == joint(complainants, 5)
    if major:
        assert isinstance(events[1], MarkedMajor)
        assert events[1].cause is MajorCause.GROUP_COMPLAINT
        assert events[1].marked_on == RECEIVED_ON


# --- regulator transfer (Art. 33) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("regulator_received_on", "forwarded_on", "working_days", "within_limit"),
    [
        # 2026 National Day: 10-01..10-07 off, Saturday 10-10 a working day (调休).
        # After Tue 09-29: 09-30, 10-08, 10-09, 10-10 (Sat), 10-12, 10-13 -> 6 in 14 calendar days.
        ("2026-09-29", "2026-10-13", 6, True),
        ("2026-09-29", "2026-10-14", 7, True),  # the 7th working day is still in time (Art. 43)
        ("2026-09-29", "2026-10-15", 8, False),
        # Without a holiday, 7 working days are 9 calendar days.
        ("2026-03-02", "2026-03-11", 7, True),
        ("2026-03-02", "2026-03-12", 8, False),
        ("2026-03-02", "2026-03-02", 0, True),  # forwarded the day it was received
    ],
)
def test_a_regulator_transfer_reports_whether_it_was_forwarded_within_7_working_days(
    regulator_received_on: str, forwarded_on: str, working_days: int, within_limit: bool
) -> None:
    transfer = RegulatorTransfer(d(regulator_received_on), d(forwarded_on))
    received_on = d("2026-10-20")
    case = Case()
    case.do(receive(received_on, channel="regulator_transfer", regulator_transfer=transfer))

    assert case.state.regulator_transfer == RegulatorTransferCheck(
        d(regulator_received_on), d(forwarded_on), working_days, within_limit
    )


@pytest.mark.parametrize(
    ("channel", "transfer", "expected"),
    [
        ("regulator_transfer", None, ("regulator_transfer", "required")),
        (
            "phone",
            RegulatorTransfer(d("2026-02-20"), d("2026-02-25")),
            ("regulator_transfer", "not_allowed"),
        ),
        (
            "regulator_transfer",
            RegulatorTransfer(d("2026-02-25"), d("2026-02-20")),
            ("regulator_transfer.forwarded_on", "before_regulator_received"),
        ),
        (
            "regulator_transfer",
            RegulatorTransfer(d("2026-02-25"), d("2026-03-03")),
            ("regulator_transfer.forwarded_on", "after_received_on"),
        ),
    ],
)
def test_a_regulator_transfer_records_consistent_dates(
    channel: str, transfer: RegulatorTransfer | None, expected: tuple[str, str]
) -> None:
    command = receive(RECEIVED_ON, channel=channel, regulator_transfer=transfer)

    assert expected in field_errors(command)


def test_a_transfer_spanning_a_year_without_calendar_data_is_an_explicit_error() -> None:
    # seeded_calendar() holds 2004-2026: 2027's holidays are not known, so no guess is made.
    transfer = RegulatorTransfer(d("2026-12-28"), d("2027-01-05"))
    command = receive(d("2027-01-06"), channel="regulator_transfer", regulator_transfer=transfer)

    assert ("regulator_transfer", "calendar_year_missing") in field_errors(command, d("2027-01-06"))


# --- business date and existence -----------------------------------------------------------------


def test_a_complaint_cannot_be_received_on_a_later_day_than_today() -> None:
    with pytest.raises(RuleViolation) as refused:
        decide(None, receive(d("2026-03-03")), context(d("2026-03-02")))

    assert refused.value.code == "business_date_in_future"


def test_a_paper_complaint_entered_days_later_gives_the_same_events() -> None:
    on_the_day = decide(None, receive(RECEIVED_ON), context(RECEIVED_ON))
    a_week_later = decide(None, receive(RECEIVED_ON), context(d("2026-03-09")))

    assert on_the_day == a_week_later


def test_a_case_id_cannot_be_received_twice() -> None:
    case = received_case(RECEIVED_ON)

    assert case.refuse(receive(RECEIVED_ON)) == "case_already_exists"


def test_a_command_on_a_case_that_does_not_exist_is_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        decide(None, AssignHandler("h-1"), context(RECEIVED_ON))

    assert refused.value.code == "case_not_found"


def test_a_due_date_needing_a_missing_calendar_year_is_refused_when_rolling() -> None:
    # Received 2026-12-20: due 2027-01-04, and 2027 is not loaded. Rolling would have to guess.
    command = receive(d("2026-12-20"))

    with pytest.raises(RuleViolation) as refused:
        decide(None, command, context(d("2026-12-20"), policy=roll_policy()))

    assert refused.value.code == "calendar_year_missing"
    assert decide(None, command, context(d("2026-12-20")))  # without rolling, no calendar needed
