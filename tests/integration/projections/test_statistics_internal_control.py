"""Statistics of internal control (issue 14; DOMAIN.md "Responsibility, root cause and
rectification", "Follow-up", "Staff figures for appraisal") against figures computed by hand.

Tree HO → BR-A → SUB-A1, HO → BR-B; the first half of 2026, judged as of 2026-07-15.

- K1, SUB-A1, received 01-05 naming s-1; decided 01-15 upheld by h-1 (on time); attributed 01-20
  to staff_conduct, unit SUB-A1, actions due 02-10 (closed 02-05) and 08-31 (open); followed up
  01-25, satisfied.
- K2, BR-A, 02-01 naming s-1 and s-2; decided 02-10 rejected by h-2 (on time); attributed 03-03
  to a third party, unit BR-A, one action due 04-30 never closed (overdue); followed up 03-10,
  dissatisfied.
- K3, BR-B, 03-02; decided 03-12 rejected by h-1 (on time); review asked 03-20, changed 04-10 to
  upheld; attributed 04-20 to product_design (unit HO), then again 05-05 to systems, unit BR-B,
  one action due 05-31 closed 06-30 (closed); followed up 04-25, not reached.
- K4, SUB-A1, 04-01 naming s-2; decided 05-20 partially upheld by h-2 (late: due 04-16);
  followed up 06-01, basically satisfied.
- K5, HO, 2025-12-01; decided 2025-12-10 by h-1; attributed 2025-12-15 (external, unit HO, an
  action due 2026-01-31): all before the range.
"""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest

from complaintcore.domain.commands import Outcome, RootCause, Satisfaction
from complaintcore.infra.database import create_pool
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics.csv_return import statistics_csv
from complaintcore.projections.statistics.queries import institution_statistics
from complaintcore.projections.statistics.staff import staff_statistics
from projection_support import CaseDesk, scratch_database

FROM, TO, AS_OF = date(2026, 1, 1), date(2026, 6, 30), date(2026, 7, 15)
ALL = ["HO", "BR-A", "BR-B", "SUB-A1"]


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


async def play_scenario(desk: CaseDesk) -> None:
    await desk.plant_tree()
    k1 = await desk.receive("SUB-A1", d(1, 5), staff=("s-1",))
    await desk.assign(k1, d(1, 5), "h-1")
    await desk.decide(k1, d(1, 15), outcome=Outcome.UPHELD, handler="h-1")
    await desk.attribute(
        k1,
        d(1, 20),
        root_cause=RootCause.STAFF_CONDUCT,
        responsible="SUB-A1",
        due_on=(d(2, 10), d(8, 31)),
    )
    await desk.follow_up(k1, d(1, 25), Satisfaction.SATISFIED)
    await desk.rectify(k1, d(2, 5), "a-1")

    k2 = await desk.receive("BR-A", d(2, 1), staff=("s-1", "s-2"))
    await desk.assign(k2, d(2, 1), "h-2")
    await desk.decide(k2, d(2, 10), outcome=Outcome.REJECTED, handler="h-2")
    await desk.attribute(
        k2, d(3, 3), root_cause=RootCause.THIRD_PARTY, responsible="BR-A", due_on=(d(4, 30),)
    )
    await desk.follow_up(k2, d(3, 10), Satisfaction.DISSATISFIED)

    k3 = await desk.receive("BR-B", d(3, 2))
    await desk.assign(k3, d(3, 2), "h-1")
    await desk.decide(k3, d(3, 12), outcome=Outcome.REJECTED, handler="h-1")
    await desk.appeal(k3, d(3, 20))
    await desk.decide_review(k3, d(4, 10), new_outcome=Outcome.UPHELD)
    await desk.attribute(k3, d(4, 20), root_cause=RootCause.PRODUCT_DESIGN, responsible="HO")
    await desk.follow_up(k3, d(4, 25), None)
    await desk.attribute(
        k3, d(5, 5), root_cause=RootCause.SYSTEMS, responsible="BR-B", due_on=(d(5, 31),)
    )
    await desk.rectify(k3, d(6, 30), "a-1")

    k4 = await desk.receive("SUB-A1", d(4, 1), staff=("s-2",))
    await desk.assign(k4, d(4, 1), "h-2")
    await desk.decide(k4, d(5, 20), outcome=Outcome.PARTIALLY_UPHELD, handler="h-2")
    await desk.follow_up(k4, d(6, 1), Satisfaction.BASICALLY_SATISFIED)

    k5 = await desk.receive("HO", d(12, 1, 2025))
    await desk.assign(k5, d(12, 1, 2025), "h-1")
    await desk.decide(k5, d(12, 10, 2025), head_office=True, handler="h-1")
    await desk.attribute(k5, d(12, 15, 2025), root_cause=RootCause.EXTERNAL, due_on=(d(1, 31),))


@pytest.fixture(scope="module")
async def scenario(server_url: str, template_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(server_url) as database_url:
        pool = await create_pool(database_url, min_size=1, max_size=4)
        try:
            desk = CaseDesk(pool)
            await play_scenario(desk)
            await ProjectionRunner(database_url, desk.store).catch_up()
            yield pool
        finally:
            await pool.close()


def control(
    attributed: int = 0,
    third_party: int = 0,
    rectification: tuple[int, int, int] = (0, 0, 0),
    follow_up: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> dict[str, Any]:
    """The internal control figures: rectification (open, closed, overdue), follow-up (reached,
    satisfied, basically satisfied, dissatisfied)."""
    return {
        "attributed": attributed,
        "third_party": third_party,
        "rectification": dict(zip(("open", "closed", "overdue"), rectification, strict=True)),
        "follow_up": dict(
            zip(
                ("reached", "satisfied", "basically_satisfied", "dissatisfied"),
                follow_up,
                strict=True,
            )
        ),
    }


def of(figures: dict[str, Any]) -> dict[str, Any]:
    return {name: figures[name] for name in control()}


async def total(
    pool: asyncpg.Pool, code: str, institutions: list[str], from_on: date = FROM
) -> dict[str, Any]:
    answer, _ = await institution_statistics(pool, code, institutions, from_on, TO, None, AS_OF)
    return answer["total"]


async def test_head_office_rolled_up(scenario: asyncpg.Pool) -> None:
    block = await total(scenario, "HO", ALL)
    # K1 K2 K3 (at its second attribution); actions: K1 closed + open, K2 overdue, K3 closed
    assert of(block["figures"]) == control(3, 1, (1, 2, 1), (3, 1, 1, 1))

    def column(dimension: str) -> dict[str | None, int]:
        return {e["key"]: e["figures"]["attributed"] for e in block[f"by_{dimension}"]}

    # K3's first attribution (product_design, HO) is superseded
    assert column("root_cause") == {"staff_conduct": 1, "systems": 1, "third_party": 1}
    assert column("responsible_institution") == {"BR-A": 1, "BR-B": 1, "SUB-A1": 1}
    by_cause = {e["key"]: e["figures"] for e in block["by_root_cause"]}
    assert by_cause["third_party"]["rectification"] == {"open": 0, "closed": 0, "overdue": 1}
    assert by_cause["staff_conduct"]["decided"] == 1


async def test_branches_alone_and_rolled_up(scenario: asyncpg.Pool) -> None:
    branch_a = await total(scenario, "BR-A", ["BR-A", "SUB-A1"])
    assert of(branch_a["figures"]) == control(2, 1, (1, 1, 1), (3, 1, 1, 1))
    alone = await total(scenario, "BR-A", ["BR-A"])
    assert of(alone["figures"]) == control(1, 1, (0, 0, 1), (1, 0, 0, 1))
    branch_b = await total(scenario, "BR-B", ["BR-B"])
    assert of(branch_b["figures"]) == control(1, 0, (0, 1, 0), (0, 0, 0, 0))
    head_office = await total(scenario, "HO", ["HO"])
    assert of(head_office["figures"]) == control()  # K5 was attributed in 2025


async def test_by_quarter_and_from_a_partial_month(scenario: asyncpg.Pool) -> None:
    answer, _ = await institution_statistics(scenario, "HO", ALL, FROM, TO, "quarter", AS_OF)
    q1, q2 = (p["figures"] for p in answer["periods"])
    assert of(q1) == control(2, 1, (1, 1, 1), (2, 1, 0, 1))
    assert of(q2) == control(1, 0, (0, 1, 0), (1, 0, 1, 0))
    # from 01-21: K1 (attributed 01-20) and its follow-up (01-25 is in) — facts rows read
    later = await total(scenario, "HO", ALL, d(1, 21))
    assert of(later["figures"]) == control(2, 1, (0, 1, 1), (3, 1, 1, 1))


async def test_the_data_return_has_the_internal_control_columns(scenario: asyncpg.Pool) -> None:
    text = await statistics_csv(scenario, "HO", FROM, TO, None, AS_OF, True)
    header, first, *_ = (line.split(",") for line in text.splitlines())
    row = dict(zip(header, first, strict=True))
    assert header[-9:] == [
        "attributed",
        "third_party",
        "rectification_open",
        "rectification_closed",
        "rectification_overdue",
        "follow_up_reached",
        "follow_up_satisfied",
        "follow_up_basically_satisfied",
        "follow_up_dissatisfied",
    ]
    assert [row[name] for name in header[-9:]] == ["3", "1", "1", "2", "1", "3", "1", "1", "1"]


async def test_staff_figures(scenario: asyncpg.Pool) -> None:
    figures, _ = await staff_statistics(scenario, ALL, FROM, TO)
    assert figures["handlers"] == [
        {
            "staff_id": "h-1",  # K1 K3 (K5: 2025)
            "decided": 2,
            "on_time": 2,
            "review_changed": 1,  # K3
            "satisfaction": {"satisfied": 1, "basically_satisfied": 0, "dissatisfied": 0},
        },
        {
            "staff_id": "h-2",  # K2 K4
            "decided": 2,
            "on_time": 1,
            "review_changed": 0,
            "satisfaction": {"satisfied": 0, "basically_satisfied": 1, "dissatisfied": 1},
        },
    ]
    # s-1: K1 upheld, K2 rejected; s-2: K2 rejected, K4 partially upheld
    assert figures["respondent_staff"] == [
        {"staff_id": "s-1", "named": 2, "upheld": 1},
        {"staff_id": "s-2", "named": 2, "upheld": 1},
    ]
    branch_b, _ = await staff_statistics(scenario, ["BR-B"], FROM, TO)
    assert [h["staff_id"] for h in branch_b["handlers"]] == ["h-1"]
    assert branch_b["respondent_staff"] == []
