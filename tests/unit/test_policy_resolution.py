"""Institution policy with history (DOMAIN.md "Institution policy"): the policy in force on a day
at a node, from the versions set along its lineage (`domain.policy.resolve_policy`)."""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.application.policies import (
    command_business_date,
    limit_lineage,
    redress_authority,
)
from complaintcore.domain.commands import ApproveRedress
from complaintcore.domain.policy import (
    DEFAULT_POLICY,
    POLICY_VALUE_NAMES,
    DueSoonDays,
    InstitutionPolicy,
    PolicyRefused,
    PolicySettings,
    PolicyVersion,
    RedressLimits,
    check_effective_from,
    due_soon_days_on,
    resolve_policy,
)
from complaintcore.domain.taxonomy import DEFAULT_TAXONOMY, Taxonomy, TaxonomyItem

LINEAGE = ("HO", "BR", "SUB")  # head office first
DAY = date(2027, 1, 1)


def version(node: str, number: int, effective_from: date, **values: object) -> PolicyVersion:
    return PolicyVersion(node, number, effective_from, PolicySettings(**values))  # type: ignore[arg-type]


def test_with_no_version_every_value_is_the_default() -> None:
    resolved = resolve_policy(LINEAGE, [], DAY)

    assert resolved.policy == DEFAULT_POLICY
    assert resolved.version == "default"
    assert {value.source for value in resolved.values} == {"default"}
    assert [value.name for value in resolved.values] == list(POLICY_VALUE_NAMES)


def test_a_value_set_at_the_head_office_is_inherited_and_a_branch_overrides_it() -> None:
    versions = [
        version("HO", 1, DAY, due_soon_days=5, roll_past_holidays=True),
        version("BR", 1, DAY, due_soon_days=7),
    ]

    resolved = resolve_policy(LINEAGE, versions, DAY)

    assert resolved.policy.due_soon_days == 7
    assert resolved.policy.roll_past_holidays is True
    by_name = {value.name: value for value in resolved.values}
    assert (by_name["due_soon_days"].source, by_name["due_soon_days"].version) == ("BR", "BR/v1")
    assert by_name["roll_past_holidays"].source == "HO"
    assert by_name["retention_years"].source == "default"
    assert resolved.version == "HO/v1,BR/v1"


def test_a_version_applies_from_its_effective_day_not_before() -> None:
    versions = [version("BR", 1, DAY, due_soon_days=9)]

    assert resolve_policy(LINEAGE, versions, DAY - timedelta(days=1)).policy.due_soon_days == 3
    assert resolve_policy(LINEAGE, versions, DAY).policy.due_soon_days == 9


def test_a_newer_version_replaces_the_node_whole_so_a_value_left_out_is_inherited_again() -> None:
    versions = [
        version("HO", 1, DAY, due_soon_days=4),
        version("BR", 1, DAY, due_soon_days=9),
        version("BR", 2, DAY + timedelta(days=10), retention_years=8),
    ]

    resolved = resolve_policy(LINEAGE, versions, DAY + timedelta(days=10))

    assert resolved.policy.due_soon_days == 4
    assert resolved.policy.retention_years == 8


def test_a_version_scheduled_later_wins_from_its_day_over_one_recorded_after_it() -> None:
    versions = [
        version("BR", 1, DAY + timedelta(days=5), due_soon_days=6),
        version("BR", 2, DAY, due_soon_days=8),
    ]

    assert resolve_policy(LINEAGE, versions, DAY).policy.due_soon_days == 8
    assert resolve_policy(LINEAGE, versions, DAY + timedelta(days=5)).policy.due_soon_days == 6


def test_versions_of_nodes_outside_the_lineage_are_ignored() -> None:
    versions = [version("BR-OTHER", 1, DAY, due_soon_days=9)]

    assert resolve_policy(LINEAGE, versions, DAY).policy == DEFAULT_POLICY


def test_redress_limits_are_inherited_per_role() -> None:
    versions = [
        version("HO", 1, DAY, staff_redress_limit_fen=1, supervisor_redress_limit_fen=2),
        version("SUB", 1, DAY, staff_redress_limit_fen=3),
    ]

    limits = resolve_policy(LINEAGE, versions, DAY).policy.redress_limits_fen

    assert limits == RedressLimits(staff=3, supervisor=2)


@pytest.mark.parametrize(
    "values",
    [
        {"due_soon_days": -1},
        {"retention_years": 0},
        {"staff_redress_limit_fen": -1},
        {"supervisor_redress_limit_fen": True},
        {"roll_past_holidays": 1},
    ],
)
def test_a_bad_value_is_refused_when_the_version_is_made(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PolicySettings(**values)  # type: ignore[arg-type]


def test_redress_limits_are_non_negative_integers() -> None:
    with pytest.raises(ValueError):
        RedressLimits(staff=-1)
    with pytest.raises(ValueError):
        RedressLimits(supervisor=1.5)  # type: ignore[arg-type]
    assert InstitutionPolicy().redress_limits_fen == RedressLimits(100_000, 5_000_000)


def test_a_change_effective_before_today_is_refused_with_a_stable_code() -> None:
    check_effective_from(DAY, DAY)
    with pytest.raises(PolicyRefused) as refused:
        check_effective_from(DAY - timedelta(days=1), DAY)
    assert refused.value.code == "effective_from_in_past"


def test_redress_authority_by_role() -> None:
    resolved = resolve_policy(LINEAGE, [version("BR", 1, DAY, staff_redress_limit_fen=7)], DAY)

    assert redress_authority(resolved, "staff", False) == (
        7,
        "redress_limits_fen.staff of policy BR/v1",
    )
    assert redress_authority(resolved, "supervisor", False)[0] == 5_000_000
    assert redress_authority(resolved, "supervisor", True)[0] is None
    assert redress_authority(resolved, "staff", True)[0] == 7
    assert redress_authority(DEFAULT_POLICY, "staff", False)[0] == 100_000


def test_a_command_is_judged_at_its_own_date_else_its_notices_else_today() -> None:
    later = DAY + timedelta(days=3)
    notice = SimpleNamespace(notified_on=DAY + timedelta(days=1))

    assert command_business_date(SimpleNamespace(received_on=DAY), later) == DAY
    assert command_business_date(SimpleNamespace(notice=notice), later) == notice.notified_on
    assert command_business_date(SimpleNamespace(), later) == later


# --- the property: resolution agrees with a plain statement of the rule ----------------------

OWN_TAXONOMIES = [
    Taxonomy(
        business=(TaxonomyItem(business, "业务", "business"),),
        causes=(TaxonomyItem("other", "其他", "other"),),
    )
    for business in ("mortgage", "surrender")
]
_DAYS = st.integers(min_value=0, max_value=20).map(lambda n: DAY + timedelta(days=n))
_SETTINGS = st.builds(
    PolicySettings,
    roll_past_holidays=st.none() | st.booleans(),
    due_soon_days=st.none() | st.integers(0, 30),
    retention_years=st.none() | st.integers(1, 30),
    staff_redress_limit_fen=st.none() | st.integers(0, 10**9),
    supervisor_redress_limit_fen=st.none() | st.integers(0, 10**9),
    taxonomy=st.none() | st.sampled_from(OWN_TAXONOMIES),
)


@st.composite
def histories(draw: st.DrawFn) -> list[PolicyVersion]:
    """Versions at the lineage's nodes and one outside it, numbered per node in order."""
    nodes = draw(st.lists(st.sampled_from((*LINEAGE, "ELSEWHERE")), max_size=12))
    numbers: dict[str, int] = {}
    versions = []
    for node in nodes:
        numbers[node] = numbers.get(node, 0) + 1
        versions.append(PolicyVersion(node, numbers[node], draw(_DAYS), draw(_SETTINGS)))
    return versions


def _expected(versions: list[PolicyVersion], on: date) -> dict[str, tuple[object, str]]:
    """Each value and its source, the rule read plainly: nearest node first, its newest version
    by (effective_from, number) among those effective on `on`."""
    defaults = dict(
        zip(POLICY_VALUE_NAMES, (False, 3, 5, 100_000, 5_000_000, DEFAULT_TAXONOMY), strict=True)
    )
    expected = {name: (value, "default") for name, value in defaults.items()}
    for node in LINEAGE:  # head office first: nearer nodes come later and win
        effective = [v for v in versions if v.institution == node and v.effective_from <= on]
        if not effective:
            continue
        newest = max(effective, key=lambda v: (v.effective_from, v.number))
        for name, value in newest.settings.values().items():
            expected[name] = (value, node)
    return expected


@given(histories(), _DAYS)
def test_each_value_comes_from_the_nearest_node_whose_version_in_force_sets_it(
    versions: list[PolicyVersion], on: date
) -> None:
    resolved = resolve_policy(LINEAGE, versions, on)

    actual = {value.name: (value.value, value.source) for value in resolved.values}
    assert actual == _expected(versions, on)
    assert resolved.policy.due_soon_days == actual["due_soon_days"][0]
    assert resolved.policy.redress_limits_fen.staff == actual["redress_limits_fen.staff"][0]
    assert resolved.policy.taxonomy == actual["taxonomy"][0]
    for name, (value, source) in actual.items():
        named = resolved.value_named(name)
        assert (named.name, named.value, named.source) == (name, value, source)


@given(histories(), _DAYS)
def test_versions_effective_later_change_nothing_on_the_day(
    versions: list[PolicyVersion], on: date
) -> None:
    later = [v for v in versions if v.effective_from > on]
    earlier = [v for v in versions if v.effective_from <= on]

    assert resolve_policy(LINEAGE, versions, on) == resolve_policy(LINEAGE, earlier, on)
    named = resolve_policy(LINEAGE, versions, on).version.split(",")
    assert not {v.id for v in later} & set(named)


# --- due_soon_days of many institutions at once (the case list's and deadlines' clock filter) --

TREE = {
    "HO": None,
    "BR-A": "HO",
    "BR-B": "HO",
    "SUB-A1": "BR-A",
    "SUB-A2": "BR-A",
    "SUB-B1": "BR-B",
}


def lineage_of(code: str) -> tuple[str, ...]:
    """Head office first, as `resolve_policy` reads it."""
    lineage = [code]
    while (parent := TREE[lineage[-1]]) is not None:
        lineage.append(parent)
    return tuple(reversed(lineage))


due_soon_versions = st.lists(
    st.builds(
        version,
        st.sampled_from(sorted(TREE)),
        st.integers(min_value=1, max_value=4),
        st.dates(min_value=DAY - timedelta(days=3), max_value=DAY + timedelta(days=3)),
        due_soon_days=st.none() | st.integers(min_value=0, max_value=10),
        retention_years=st.none() | st.integers(min_value=1, max_value=9),
    ),
    max_size=8,
    unique_by=lambda v: (v.institution, v.number),
)


@given(
    due_soon_versions,
    st.dates(min_value=DAY - timedelta(days=4), max_value=DAY + timedelta(days=4)),
)
def test_due_soon_days_of_every_institution_is_each_ones_resolved_policy(
    versions: list[PolicyVersion], on: date
) -> None:
    days = due_soon_days_on(TREE, versions, on)

    for code in TREE:
        resolved = resolve_policy(lineage_of(code), versions, on)
        assert days.of(code) == resolved.policy.due_soon_days
    for value, codes in days.others().items():
        assert value != days.default and all(days.of(code) == value for code in codes)


def test_with_no_version_setting_it_every_institution_has_the_default() -> None:
    days = due_soon_days_on(TREE, [version("BR-A", 1, DAY, retention_years=3)], DAY)

    assert days == DueSoonDays() and days.others() == {}


CASE_LINEAGE = ("SUB-A1", "BR-A", "HO")


@pytest.mark.parametrize(
    ("approver", "limit_from"),
    [("SUB-A1", CASE_LINEAGE), ("BR-A", ("BR-A", "HO")), ("HO", ("HO",)), ("BR-B", CASE_LINEAGE)],
)
def test_an_approver_is_judged_by_the_policy_of_their_own_institution(
    approver: str, limit_from: tuple[str, ...]
) -> None:
    """DOMAIN.md "Redress authority": "a principal whose own limit covers the amount"; one not
    at or above the case is refused for that, whatever the limit (the case's lineage, then)."""
    approval = ApproveRedress(up_to_fen=1, note="n", approved_on=date(2026, 11, 2))
    assert limit_lineage(approval, approver, CASE_LINEAGE) == limit_from


def test_a_decider_is_judged_by_the_policy_at_the_case_wherever_they_sit() -> None:
    decision = SimpleNamespace(decided_on=date(2026, 11, 2))
    assert limit_lineage(decision, "BR-A", CASE_LINEAGE) == CASE_LINEAGE
