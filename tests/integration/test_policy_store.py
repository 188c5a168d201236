"""Institution policy with history on a real PostgreSQL (DOMAIN.md "Institution policy"): the
append-only store, resolution along the tree, and commands judged under the policy in force on
their business date, the version named in each event's metadata."""

from datetime import date, timedelta

import asyncpg
import pytest

from complaintcore.application.policy_store import (
    POLICY_STAMP_SQL,
    PolicyStore,
    UnknownPolicyInstitution,
)
from complaintcore.domain.policy import PolicyRefused, PolicySettings
from projection_support import STAFF, CaseDesk

# 2026-09-16 + 15 days is 2026-10-01, National Day; the next working day is 2026-10-08.
BEFORE_HOLIDAY = date(2026, 9, 16)
ROLLED_TO = date(2026, 10, 8)


async def test_a_version_is_stored_with_who_recorded_it_and_numbered_per_node(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    store = PolicyStore(pool)

    await store.append(
        "BR-A", BEFORE_HOLIDAY, PolicySettings(due_soon_days=5), "admin-1", BEFORE_HOLIDAY
    )
    history = await store.append(
        "BR-A", BEFORE_HOLIDAY, PolicySettings(retention_years=7), "admin-2", BEFORE_HOLIDAY
    )

    assert [(r.version.id, r.recorded_by) for r in history] == [
        ("BR-A/v1", "admin-1"),
        ("BR-A/v2", "admin-2"),
    ]
    assert history[1].version.settings == PolicySettings(retention_years=7)
    assert history[1].recorded_at >= history[0].recorded_at


async def test_the_same_version_sent_again_records_nothing_but_a_later_return_to_it_does(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    """A PUT retried after its answer was lost leaves the policy as one PUT did (RFC 9110
    9.2.2); going back to a setting after another version is a version of its own."""
    store = PolicyStore(pool)
    five_and_seven = PolicySettings(due_soon_days=5, retention_years=7)

    await store.append("BR-A", BEFORE_HOLIDAY, five_and_seven, "admin-1", BEFORE_HOLIDAY)
    again = await store.append("BR-A", BEFORE_HOLIDAY, five_and_seven, "admin-1", BEFORE_HOLIDAY)
    assert [r.version.id for r in again] == ["BR-A/v1"]

    later = BEFORE_HOLIDAY + timedelta(days=1)
    await store.append("BR-A", later, five_and_seven, "admin-1", BEFORE_HOLIDAY)
    await store.append("BR-A", later, PolicySettings(due_soon_days=2), "admin-1", BEFORE_HOLIDAY)
    back = await store.append("BR-A", later, five_and_seven, "admin-1", BEFORE_HOLIDAY)
    assert [r.version.id for r in back] == ["BR-A/v1", "BR-A/v2", "BR-A/v3", "BR-A/v4"]


async def test_a_past_effective_date_and_an_unknown_node_store_nothing(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    store = PolicyStore(pool)
    with pytest.raises(PolicyRefused):
        await store.append(
            "BR-A", BEFORE_HOLIDAY - timedelta(days=1), PolicySettings(), "admin-1", BEFORE_HOLIDAY
        )
    with pytest.raises(UnknownPolicyInstitution):
        await store.append("NOWHERE", BEFORE_HOLIDAY, PolicySettings(), "admin-1", BEFORE_HOLIDAY)
    assert await pool.fetchval("SELECT count(*) FROM institution_policy_versions") == 0


async def test_a_put_sent_again_after_midnight_answers_the_version_it_recorded(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    """A version effective today whose answer was lost just before midnight, sent again just
    after it, is the one PUT (the route's contract), not `effective_from_in_past`; another
    version dated yesterday is refused still. Found by a review pass."""
    store = PolicyStore(pool)
    settings = PolicySettings(staff_redress_limit_fen=10_000)
    first = await store.append("BR-A", BEFORE_HOLIDAY, settings, "admin-1", BEFORE_HOLIDAY)
    next_day = BEFORE_HOLIDAY + timedelta(days=1)

    again = await store.append("BR-A", BEFORE_HOLIDAY, settings, "admin-1", next_day)

    assert [r.version.id for r in again] == [r.version.id for r in first] == ["BR-A/v1"]
    with pytest.raises(PolicyRefused):
        await store.append("BR-A", BEFORE_HOLIDAY, PolicySettings(), "admin-1", next_day)
    assert await pool.fetchval("SELECT count(*) FROM institution_policy_versions") == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE institution_policy_versions SET due_soon_days = 9",
        "DELETE FROM institution_policy_versions",
        "TRUNCATE institution_policy_versions",
    ],
)
async def test_the_history_cannot_be_changed_in_the_database(
    pool: asyncpg.Pool, desk: CaseDesk, statement: str
) -> None:
    await PolicyStore(pool).append(
        "HO", BEFORE_HOLIDAY, PolicySettings(due_soon_days=5), "admin-1", BEFORE_HOLIDAY
    )

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(statement)


async def test_a_sub_branch_inherits_from_its_ancestors_and_sees_another_process_s_change(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    reader, writer = PolicyStore(pool), PolicyStore(pool)
    await writer.append(
        "HO",
        BEFORE_HOLIDAY,
        PolicySettings(due_soon_days=5, retention_years=8),
        "a",
        BEFORE_HOLIDAY,
    )
    before = await reader.in_force("SUB-A1", BEFORE_HOLIDAY)
    await writer.append(
        "BR-A", BEFORE_HOLIDAY, PolicySettings(due_soon_days=2), "a", BEFORE_HOLIDAY
    )

    after = await reader.in_force("SUB-A1", BEFORE_HOLIDAY)

    assert before.policy.due_soon_days == 5
    assert (after.policy.due_soon_days, after.policy.retention_years) == (2, 8)
    assert after.version == "HO/v1,BR-A/v1"
    assert (await reader.in_force("BR-B", BEFORE_HOLIDAY)).policy.due_soon_days == 5
    assert (await reader.in_force("NOWHERE", BEFORE_HOLIDAY)).version == "default"


async def test_a_receipt_is_judged_under_the_policy_of_its_own_date_not_a_later_one(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    """Rolling past holidays from tomorrow leaves today's receipt unrolled (its due date is in
    its event); tomorrow's receipt is rolled, and each event names the policy that judged it."""
    tomorrow = BEFORE_HOLIDAY + timedelta(days=1)
    await PolicyStore(pool).append(
        "BR-A", tomorrow, PolicySettings(roll_past_holidays=True), "admin-1", BEFORE_HOLIDAY
    )

    today_case = await desk.receive("SUB-A1", BEFORE_HOLIDAY)
    tomorrow_case = await desk.receive("SUB-A1", tomorrow)
    await desk.assign(today_case, tomorrow)

    today_state, _, _ = await desk.service.case(STAFF, today_case)
    tomorrow_state, _, _ = await desk.service.case(STAFF, tomorrow_case)
    assert today_state.clock.due_on == BEFORE_HOLIDAY + timedelta(days=15)
    assert tomorrow_state.clock.due_on == ROLLED_TO
    today_events = await desk.store.read_stream(today_case)
    tomorrow_events = await desk.store.read_stream(tomorrow_case)
    assert [e.metadata.policy_version for e in today_events] == ["default", "BR-A/v1"]
    assert tomorrow_events[0].metadata.policy_version == "BR-A/v1"


async def test_a_resolution_is_kept_until_a_new_version_is_recorded(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    store = PolicyStore(pool)
    lineage = ("SUB-A1", "BR-A", "HO")
    stamp = await pool.fetchval(POLICY_STAMP_SQL)
    first = await store.in_force_along(lineage, BEFORE_HOLIDAY, stamp)
    assert await store.in_force_along(lineage, BEFORE_HOLIDAY, stamp) is first
    assert await store.in_force_along(lineage, ROLLED_TO, stamp) is not first

    await store.append("BR-A", BEFORE_HOLIDAY, PolicySettings(due_soon_days=2), "a", BEFORE_HOLIDAY)
    stamp = await pool.fetchval(POLICY_STAMP_SQL)
    again = await store.in_force_along(lineage, BEFORE_HOLIDAY, stamp)
    assert (first.policy.due_soon_days, again.policy.due_soon_days) == (3, 2)
    assert await store.in_force_along(lineage, BEFORE_HOLIDAY, stamp) is again
