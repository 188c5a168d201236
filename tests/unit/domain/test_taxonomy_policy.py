"""The default taxonomy (DOMAIN.md "Taxonomy", JR/T 0169-2018) and the institution policy."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.domain.policy import DEFAULT_POLICY, InstitutionPolicy
from complaintcore.domain.taxonomy import (
    BANK_BUSINESS,
    CHANNELS,
    DEFAULT_TAXONOMY,
    INSURANCE_BUSINESS,
    Taxonomy,
    TaxonomyItem,
    is_channel,
)

# Transcribed from DOMAIN.md.
SPEC_CHANNELS = {"phone", "online", "in_person", "letter", "email", "regulator_transfer"}
SPEC_BANK_BUSINESS = {
    "debit card", "credit card", "loans", "payment settlement", "debt collection",
    "foreign exchange", "savings", "agency business", "other intermediary business",
    "personal financial information", "precious metals", "RMB management",
    "wealth management", "treasury",
}  # fmt: skip
SPEC_INSURANCE_BUSINESS = {
    "property insurance claims", "life insurance claims", "sales", "surrender", "policy service",
}  # fmt: skip
SPEC_CAUSES = {
    "rules and processes", "pricing and fees", "facilities and systems", "service attitude",
    "collection methods", "disclosure", "fund safety", "marketing", "information security",
    "other",
}  # fmt: skip


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= character <= "\u9fff" for character in text)


# --- taxonomy ------------------------------------------------------------------------------------


def test_the_channels_are_the_six_of_domain_md() -> None:
    assert {item.code for item in CHANNELS} == SPEC_CHANNELS
    assert all(is_channel(code) for code in SPEC_CHANNELS)
    assert not is_channel("fax")


def test_the_default_business_types_are_the_bank_and_insurer_lists_plus_other() -> None:
    assert {item.label_en for item in BANK_BUSINESS} == SPEC_BANK_BUSINESS
    assert {item.label_en for item in INSURANCE_BUSINESS} == SPEC_INSURANCE_BUSINESS
    assert {item.label_en for item in DEFAULT_TAXONOMY.business} == (
        SPEC_BANK_BUSINESS | SPEC_INSURANCE_BUSINESS | {"other"}
    )


def test_the_default_causes_are_the_list_of_domain_md() -> None:
    assert {item.label_en for item in DEFAULT_TAXONOMY.causes} == SPEC_CAUSES


def test_every_default_item_has_a_chinese_label() -> None:
    items = [*CHANNELS, *DEFAULT_TAXONOMY.business, *DEFAULT_TAXONOMY.causes]

    assert [item.code for item in items if not has_chinese(item.label_zh)] == []


def test_the_taxonomy_answers_by_code_not_by_label() -> None:
    assert DEFAULT_TAXONOMY.has_business("credit_card")
    assert DEFAULT_TAXONOMY.has_business("surrender")
    assert not DEFAULT_TAXONOMY.has_business("credit card")
    assert not DEFAULT_TAXONOMY.has_business("marketing")  # a cause, not a business type
    assert DEFAULT_TAXONOMY.has_cause("marketing")
    assert not DEFAULT_TAXONOMY.has_cause("credit_card")


def test_an_institution_can_bring_its_own_taxonomy() -> None:
    mortgage = TaxonomyItem("mortgage", "住房按揭", "mortgage")
    delay = TaxonomyItem("processing_delay", "办理时效", "processing delay")
    policy = InstitutionPolicy(taxonomy=Taxonomy(business=(mortgage,), causes=(delay,)))

    assert policy.taxonomy.has_business("mortgage")
    assert policy.taxonomy.has_cause("processing_delay")
    assert not policy.taxonomy.has_business("credit_card")


def test_a_taxonomy_with_a_code_listed_twice_is_refused() -> None:
    card = TaxonomyItem("credit_card", "信用卡", "credit card")

    other = TaxonomyItem("other", "其他", "other")

    with pytest.raises(ValueError, match="business: code 'credit_card' is listed twice"):
        Taxonomy(business=(card, card), causes=(other,))


def test_a_taxonomy_lists_at_least_one_business_type_and_one_cause() -> None:
    card = TaxonomyItem("credit_card", "信用卡", "credit card")

    for business, causes in (((), (card,)), ((card,), ())):
        with pytest.raises(ValueError, match="at least one business type and one cause"):
            Taxonomy(business=business, causes=causes)


@pytest.mark.parametrize(
    ("code", "label_zh", "label_en", "message"),
    [
        ("Credit Card", "信用卡", "credit card", "'Credit Card' is not snake_case"),
        ("credit-card", "信用卡", "credit card", "not snake_case"),
        ("credit_card_", "信用卡", "credit card", "not snake_case"),
        ("", "信用卡", "credit card", "not snake_case"),
        ("credit_card", " ", "credit card", "empty label_zh"),
        ("credit_card", "信用卡", "", "empty label_en"),
    ],
)
def test_a_malformed_taxonomy_item_is_refused(
    code: str, label_zh: str, label_en: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TaxonomyItem(code, label_zh, label_en)


# --- policy --------------------------------------------------------------------------------------


def test_the_default_policy_has_the_defaults_domain_md_gives() -> None:
    assert DEFAULT_POLICY.roll_past_holidays is False
    assert DEFAULT_POLICY.due_soon_days == 3
    assert DEFAULT_POLICY.taxonomy == DEFAULT_TAXONOMY


@pytest.mark.parametrize(
    ("institution", "month", "serial", "number"),
    [
        ("BJ0101", date(2026, 3, 1), 1, "BJ0101-202603-000001"),
        ("BJ0101", date(2026, 3, 31), 1, "BJ0101-202603-000001"),  # only the month counts
        ("SH02", date(2025, 12, 15), 123456, "SH02-202512-123456"),
        ("SH02", date(2025, 12, 15), 1234567, "SH02-202512-1234567"),  # widens, never wraps
    ],
)
def test_the_default_registration_number_is_institution_month_and_serial(
    institution: str, month: date, serial: int, number: str
) -> None:
    assert DEFAULT_POLICY.registration_number(institution, month, serial) == number


def test_an_institution_can_choose_its_own_registration_format() -> None:
    policy = InstitutionPolicy(registration_format="TS{yyyymm}{institution}{serial:04d}")

    assert policy.registration_number("0451", date(2026, 7, 9), 42) == "TS20260704510042"


@pytest.mark.parametrize("serial", [0, -1, True, 1.0])
def test_a_serial_below_one_or_not_an_integer_is_refused(serial: object) -> None:
    with pytest.raises(ValueError, match="serial must be an integer of 1 or more"):
        DEFAULT_POLICY.registration_number("BJ0101", date(2026, 3, 1), serial)  # type: ignore[arg-type]


@pytest.mark.parametrize("institution", ["", "BJ 0101", "BJ0101\n"])
def test_an_empty_or_spaced_institution_code_is_refused(institution: str) -> None:
    with pytest.raises(ValueError, match="institution code"):
        DEFAULT_POLICY.registration_number(institution, date(2026, 3, 1), 1)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{institution}-{yyyymm}", "exactly the fields institution, serial, yyyymm"),
        ("{institution}-{serial:06d}", "found institution, serial"),
        ("{institution}-{yyyymm}-{serial}-{branch}", "found branch, institution"),
        ("{}-{yyyymm}-{serial}", "exactly the fields"),
        ("no fields at all", "found none"),
        ("{institution-{yyyymm}-{serial}", "malformed: unexpected"),
        ("{institution}-{yyyymm}-{serial:q}", "malformed"),
    ],
)
def test_a_registration_format_that_could_repeat_or_cannot_be_filled_is_refused(
    template: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        InstitutionPolicy(registration_format=template)


@pytest.mark.parametrize("due_soon_days", [-1, 2.5, True])
def test_due_soon_days_must_be_a_whole_number_of_days_not_below_zero(
    due_soon_days: object,
) -> None:
    with pytest.raises(ValueError, match="due_soon_days"):
        InstitutionPolicy(due_soon_days=due_soon_days)  # type: ignore[arg-type]


def test_a_policy_cannot_be_changed_in_place() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_POLICY.due_soon_days = 5  # type: ignore[misc]


institution_codes = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_"),
    min_size=1,
    max_size=8,
)
registrations = st.tuples(
    institution_codes,
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)).map(
        lambda day: day.replace(day=1)
    ),
    st.integers(min_value=1, max_value=10_000_000),
)


@given(first=registrations, second=registrations)
def test_different_institution_month_or_serial_never_give_the_same_number(
    first: tuple[str, date, int], second: tuple[str, date, int]
) -> None:
    if first != second:
        assert DEFAULT_POLICY.registration_number(*first) != DEFAULT_POLICY.registration_number(
            *second
        )
