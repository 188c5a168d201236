"""Statistics against figures computed by hand for a fixed scenario (DOMAIN.md "Statistics").

The tree has three levels: HO → BR-A → SUB-A1, and HO → BR-B. Every case goes through the
command path, the runner applies the feed, and the figures are read back for the first half of
2026, judged as of 2026-07-15. Due dates: receipt + 15 days (Art. 18), + 30 after a first
extension, + 60 after a second, plus paused days.

- C1, SUB-A1, received 01-05 by phone, credit_card / pricing_and_fees: decided 01-15 upheld
  with 100 yuan (due 01-20: on time, 10 days).
- C2, SUB-A1, 01-10 online, loans / service_attitude: extended 01-20 (due 02-09), paused 01-22
  to 01-27 (due 02-14), decided 02-20 rejected (late; 41 − 5 = 36 days); review asked 03-01,
  changed 03-20 to partially upheld with 50 yuan.
- C3, SUB-A1, 02-03 phone, credit_card / pricing_and_fees: withdrawn 02-10.
- C5, SUB-A1, 03-02 phone, debt_collection / collection_methods: assigned, never decided (due
  03-17: overdue).
- C6, SUB-A1, 03-03, the same: a duplicate, merged into C5 on 03-04.
- C7, BR-A, 04-01 letter, savings / rules_and_processes: extended 04-10 (due 05-01) and again
  04-25 (due 05-31), decided 05-20 partially upheld with 200 yuan (on time, 49 days); review
  asked 06-01, kept 06-15.
- C8, BR-A, 04-15 phone, credit_card / marketing: declined 04-16.
- C9, BR-A, 05-05 in person, wealth_management / marketing: flagged major 05-05, paused 05-10
  and still paused.
- C10, BR-B, 06-10 email, credit_card / pricing_and_fees: decided 06-30 upheld with 30 yuan
  (due 06-25: late, 20 days); its review window is open until 07-30.
- C11, BR-B, 06-28 in person, loans / service_attitude: nothing yet (due 07-13: overdue).
- C12, HO, 2025-12-20 phone, credit_card / pricing_and_fees: decided 2026-01-08 upheld, no
  redress (due 01-04: late, 19 days); a head office's decision has no review: closed.
"""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest

from complaintcore.domain.commands import Outcome
from complaintcore.infra.database import create_pool
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics.csv_return import statistics_csv
from complaintcore.projections.statistics.periods import periods_between
from complaintcore.projections.statistics.queries import institution_statistics, query_figures
from projection_support import CaseDesk, scratch_database

FROM, TO, AS_OF = date(2026, 1, 1), date(2026, 6, 30), date(2026, 7, 15)
ALL = ["HO", "BR-A", "BR-B", "SUB-A1"]


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


async def play_scenario(desk: CaseDesk) -> None:
    await desk.plant_tree()
    c1 = await desk.receive("SUB-A1", d(1, 5))
    await desk.assign(c1, d(1, 5))
    await desk.decide(c1, d(1, 15), outcome=Outcome.UPHELD, redress_fen=10_000)

    c2 = await desk.receive(
        "SUB-A1", d(1, 10), channel="online", business="loans", reason="service_attitude"
    )
    await desk.assign(c2, d(1, 10))
    await desk.extend(c2, d(1, 20))
    await desk.pause(c2, d(1, 22))
    await desk.resume(c2, d(1, 27))
    await desk.decide(c2, d(2, 20), outcome=Outcome.REJECTED)
    await desk.appeal(c2, d(3, 1))
    await desk.decide_review(
        c2, d(3, 20), new_outcome=Outcome.PARTIALLY_UPHELD, new_redress_fen=5_000
    )

    c3 = await desk.receive("SUB-A1", d(2, 3))
    await desk.withdraw(c3, d(2, 10))

    c5 = await desk.receive(
        "SUB-A1", d(3, 2), business="debt_collection", reason="collection_methods"
    )
    await desk.assign(c5, d(3, 2))
    c6 = await desk.receive(
        "SUB-A1", d(3, 3), business="debt_collection", reason="collection_methods"
    )
    await desk.merge(c6, c5, d(3, 4))

    c7 = await desk.receive(
        "BR-A", d(4, 1), channel="letter", business="savings", reason="rules_and_processes"
    )
    await desk.assign(c7, d(4, 1))
    await desk.extend(c7, d(4, 10))
    await desk.extend(c7, d(4, 25), approved=True)
    await desk.decide(c7, d(5, 20), outcome=Outcome.PARTIALLY_UPHELD, redress_fen=20_000)
    await desk.appeal(c7, d(6, 1))
    await desk.decide_review(c7, d(6, 15))

    c8 = await desk.receive("BR-A", d(4, 15), reason="marketing")
    await desk.decline(c8, d(4, 16))

    c9 = await desk.receive(
        "BR-A", d(5, 5), channel="in_person", business="wealth_management", reason="marketing"
    )
    await desk.flag_major(c9, d(5, 5))
    await desk.assign(c9, d(5, 5))
    await desk.pause(c9, d(5, 10))

    c10 = await desk.receive("BR-B", d(6, 10), channel="email")
    await desk.assign(c10, d(6, 10))
    await desk.decide(c10, d(6, 30), outcome=Outcome.UPHELD, redress_fen=3_000)

    await desk.receive(
        "BR-B", d(6, 28), channel="in_person", business="loans", reason="service_attitude"
    )

    c12 = await desk.receive("HO", d(12, 20, 2025))
    await desk.assign(c12, d(12, 20, 2025))
    await desk.decide(c12, d(1, 8), outcome=Outcome.UPHELD, head_office=True)


@pytest.fixture(scope="module")
async def scenario_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    async with scratch_database(server_url) as database_url:
        pool = await create_pool(database_url, min_size=1, max_size=4)
        try:
            desk = CaseDesk(pool)
            await play_scenario(desk)
            await ProjectionRunner(database_url, desk.store).catch_up()
        finally:
            await pool.close()
        yield database_url


@pytest.fixture(scope="module")
async def scenario(scenario_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(scenario_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def figures(**given: Any) -> dict[str, Any]:
    """A figures block: every count 0 unless given, no handling days unless given."""
    block: dict[str, Any] = {
        "received": 0,
        "decided": 0,
        "decided_on_time": 0,
        "decided_late": 0,
        "open_now": 0,
        "overdue_now": 0,
        "withdrawn": 0,
        "declined": 0,
        "merged": 0,
        "extended_once": 0,
        "extended_twice": 0,
        "paused": 0,
        "reviews_requested": 0,
        "reviews_changed": 0,
        "major": 0,
        "redress_total_fen": 0,
        "handling_days_mean": None,
        "handling_days_p90": None,
        # internal control: none in this scenario (test_statistics_internal_control.py)
        "attributed": 0,
        "third_party": 0,
        "rectification": {"open": 0, "closed": 0, "overdue": 0},
        "follow_up": {"reached": 0, "satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0},
    }
    assert set(given) <= set(block), set(given) - set(block)
    return block | given


HEAD_OFFICE_HALF_YEAR = figures(
    received=9,  # C1 C2 C3 C5 C7 C8 C9 C10 C11; not C6 (merged), not C12 (2025)
    decided=5,  # C12 C1 C2 C7 C10
    decided_on_time=2,  # C1 C7
    decided_late=3,  # C12 C2 C10
    open_now=4,  # C5 C9 C10 (review window open) C11
    overdue_now=2,  # C5 C11 (C9 is paused)
    withdrawn=1,
    declined=1,
    merged=1,
    extended_once=2,  # C2 C7
    extended_twice=1,  # C7
    paused=2,  # C2 C9
    reviews_requested=2,  # C2 C7
    reviews_changed=1,  # C2
    major=1,  # C9
    redress_total_fen=38_000,  # 0 + 10,000 + 5,000 (after review) + 20,000 + 3,000
    handling_days_mean=26.8,  # (19 + 10 + 36 + 49 + 20) / 5
    handling_days_p90=49,  # of 10 19 20 36 49, the first with 90% at or below it
)


async def test_head_office_rolled_up_over_the_half_year(scenario: asyncpg.Pool) -> None:
    answer, _ = await institution_statistics(scenario, "HO", ALL, FROM, TO, None, AS_OF)
    assert answer["total"]["figures"] == HEAD_OFFICE_HALF_YEAR
    assert [p["period"] for p in answer["periods"]] == ["2026-01-01/2026-06-30"]
    assert answer["periods"][0]["figures"] == HEAD_OFFICE_HALF_YEAR


async def test_the_two_reads_side_by_side_answer_as_one_after_the_other(scenario_url: str) -> None:
    # With a connection to spare the counts and the handling days are read at once, on two
    # connections sharing one snapshot; a pool of one reads them in turn on its connection.
    answers = []
    for size in (2, 1):
        pool = await create_pool(scenario_url, min_size=1, max_size=size)
        try:
            answer, _ = await institution_statistics(pool, "HO", ALL, FROM, TO, "quarter", AS_OF)
            answers.append(answer)
            assert pool.get_size() == size  # the wider pool did open its second connection
        finally:
            await pool.close()
    side_by_side, in_turn = answers
    assert side_by_side == in_turn
    assert side_by_side["total"]["figures"] == HEAD_OFFICE_HALF_YEAR


@pytest.mark.parametrize("kind", [None, "month", "quarter"])
async def test_one_node_read_with_a_filter_answers_as_the_join_of_many_nodes(
    scenario: asyncpg.Pool, kind: str | None
) -> None:
    # A scope of one node is read with its institutions as a filter, a scope of several by
    # joining each row to its node: branch A's subtree comes out the same either way. From
    # mid-January, so whole months and partial ones are both read.
    start, subtree = date(2026, 1, 15), [("BR-A", "BR-A"), ("BR-A", "SUB-A1")]
    alone = await query_figures(scenario, subtree, start, TO, kind, AS_OF)
    beside = await query_figures(scenario, [*subtree, ("BR-B", "BR-B")], start, TO, kind, AS_OF)
    for period in [None, *(p.key for p in periods_between(start, TO, kind))]:
        assert alone.block("BR-A", period) == beside.block("BR-A", period)
    everyone = await query_figures(scenario, [("BR-A", i) for i in ALL], start, TO, kind, AS_OF)
    received = [q.block("BR-A", None).figures["received"] for q in (alone, everyone)]
    assert 0 < received[0] < received[1]


async def test_head_office_by_quarter(scenario: asyncpg.Pool) -> None:
    answer, _ = await institution_statistics(scenario, "HO", ALL, FROM, TO, "quarter", AS_OF)
    q1, q2 = answer["periods"]
    assert (q1["period"], q1["from"], q1["to"]) == ("2026-Q1", d(1, 1), d(3, 31))
    assert q1["figures"] == figures(
        received=4,  # C1 C2 C3 C5
        decided=3,  # C12 C1 C2
        decided_on_time=1,
        decided_late=2,
        open_now=1,  # C5
        overdue_now=1,
        withdrawn=1,
        merged=1,
        extended_once=1,
        paused=1,
        reviews_requested=1,
        reviews_changed=1,
        redress_total_fen=15_000,
        handling_days_mean=21.67,  # (19 + 10 + 36) / 3
        handling_days_p90=36,
    )
    assert q2["figures"] == figures(
        received=5,  # C7 C8 C9 C10 C11
        decided=2,  # C7 C10
        decided_on_time=1,
        decided_late=1,
        open_now=3,  # C9 C10 C11
        overdue_now=1,  # C11
        declined=1,
        extended_once=1,
        extended_twice=1,
        paused=1,
        reviews_requested=1,
        major=1,
        redress_total_fen=23_000,
        handling_days_mean=34.5,
        handling_days_p90=49,
    )
    assert answer["total"]["figures"] == HEAD_OFFICE_HALF_YEAR


async def test_each_figure_counts_in_the_month_of_its_own_date(scenario: asyncpg.Pool) -> None:
    answer, _ = await institution_statistics(scenario, "HO", ALL, FROM, TO, "month", AS_OF)
    by_month = {p["period"]: p["figures"] for p in answer["periods"]}
    assert list(by_month) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    jan, feb, mar, apr, may, jun = by_month.values()
    assert (jan["received"], jan["decided"], jan["extended_once"], jan["paused"]) == (2, 2, 1, 1)
    assert (feb["received"], feb["decided"], feb["decided_late"], feb["withdrawn"]) == (1, 1, 1, 1)
    assert (mar["received"], mar["merged"], mar["reviews_requested"]) == (1, 1, 1)
    assert mar["reviews_changed"] == 1
    assert (apr["received"], apr["extended_once"], apr["extended_twice"], apr["declined"]) == (
        2,
        1,
        1,
        1,
    )
    assert (may["received"], may["decided"], may["major"], may["paused"]) == (1, 1, 1, 1)
    assert (jun["received"], jun["decided"], jun["reviews_requested"]) == (2, 1, 1)
    # the redress of C2 is counted where C2 was decided (February), at its final amount
    assert (jan["redress_total_fen"], feb["redress_total_fen"]) == (10_000, 5_000)


async def test_branches_alone_and_rolled_up(scenario: asyncpg.Pool) -> None:
    async def total(code: str, institutions: list[str]) -> dict[str, Any]:
        answer, _ = await institution_statistics(
            scenario, code, institutions, FROM, TO, None, AS_OF
        )
        return answer["total"]["figures"]

    assert await total("BR-A", ["BR-A", "SUB-A1"]) == figures(
        received=7,
        decided=3,  # C1 C2 C7
        decided_on_time=2,
        decided_late=1,
        open_now=2,  # C5 C9
        overdue_now=1,
        withdrawn=1,
        declined=1,
        merged=1,
        extended_once=2,
        extended_twice=1,
        paused=2,
        reviews_requested=2,
        reviews_changed=1,
        major=1,
        redress_total_fen=35_000,
        handling_days_mean=31.67,  # (10 + 36 + 49) / 3
        handling_days_p90=49,
    )
    assert await total("BR-A", ["BR-A"]) == figures(
        received=3,
        decided=1,
        decided_on_time=1,
        open_now=1,
        declined=1,
        extended_once=1,
        extended_twice=1,
        paused=1,
        reviews_requested=1,
        major=1,
        redress_total_fen=20_000,
        handling_days_mean=49.0,
        handling_days_p90=49,
    )
    assert await total("SUB-A1", ["SUB-A1"]) == figures(
        received=4,
        decided=2,
        decided_on_time=1,
        decided_late=1,
        open_now=1,
        overdue_now=1,
        withdrawn=1,
        merged=1,
        extended_once=1,
        paused=1,
        reviews_requested=1,
        reviews_changed=1,
        redress_total_fen=15_000,
        handling_days_mean=23.0,
        handling_days_p90=36,
    )
    assert await total("BR-B", ["BR-B"]) == figures(
        received=2,
        decided=1,
        decided_late=1,
        open_now=2,
        overdue_now=1,
        redress_total_fen=3_000,
        handling_days_mean=20.0,
        handling_days_p90=20,
    )
    assert await total("HO", ["HO"]) == figures(
        decided=1, decided_late=1, handling_days_mean=19.0, handling_days_p90=19
    )


async def test_breakdowns_by_channel_outcome_and_category(scenario: asyncpg.Pool) -> None:
    answer, _ = await institution_statistics(scenario, "HO", ALL, FROM, TO, None, AS_OF)
    total = answer["total"]

    def column(dimension: str, figure: str) -> dict[str | None, int]:
        return {e["key"]: e["figures"][figure] for e in total[f"by_{dimension}"]}

    assert column("channel", "received") == {
        "email": 1,
        "in_person": 2,
        "letter": 1,
        "online": 1,
        "phone": 4,  # C1 C3 C5 C8; and C6 (merged) shows under merged only:
    }
    assert column("channel", "merged")["phone"] == 1
    assert column("channel", "decided") == {
        "email": 1,
        "in_person": 0,
        "letter": 1,
        "online": 1,
        "phone": 2,
    }
    # final outcomes: C2 was rejected, then changed to partially upheld on review
    assert column("outcome", "decided") == {"partially_upheld": 2, "upheld": 3, None: 0}
    assert column("outcome", "received") == {"partially_upheld": 2, "upheld": 2, None: 5}
    assert column("outcome", "reviews_changed") == {"partially_upheld": 1, "upheld": 0, None: 0}
    assert column("business", "received") == {
        "credit_card": 4,
        "debt_collection": 1,
        "loans": 2,
        "savings": 1,
        "wealth_management": 1,
    }
    assert column("reason", "received") == {
        "collection_methods": 1,
        "marketing": 2,
        "pricing_and_fees": 3,
        "rules_and_processes": 1,
        "service_attitude": 2,
    }
    assert column("reason", "redress_total_fen")["pricing_and_fees"] == 13_000  # C12 C1 C10
    by_business = {e["key"]: e["figures"] for e in total["by_business"]}
    assert by_business["wealth_management"]["major"] == 1
    assert by_business["loans"]["handling_days_p90"] == 36


async def test_the_data_return_has_one_row_per_institution_and_period(
    scenario: asyncpg.Pool,
) -> None:
    text = await statistics_csv(scenario, "HO", FROM, TO, "quarter", AS_OF, True)
    lines = text.splitlines()
    header = lines[0].split(",")
    assert header[:6] == ["institution", "institution_name", "rollup", "period", "from", "to"]
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [(r["institution"], r["period"]) for r in rows] == [
        ("HO", "2026-Q1"),
        ("HO", "2026-Q2"),
        ("BR-A", "2026-Q1"),
        ("BR-A", "2026-Q2"),
        ("BR-B", "2026-Q1"),
        ("BR-B", "2026-Q2"),
        ("SUB-A1", "2026-Q1"),
        ("SUB-A1", "2026-Q2"),
    ]
    ho_q1, _, br_a_q1, br_a_q2, br_b_q1, br_b_q2, sub_q1, _ = rows
    assert (ho_q1["received"], ho_q1["redress_total_fen"], ho_q1["handling_days_mean"]) == (
        "4",
        "15000",
        "21.67",
    )
    assert (br_a_q1["received"], br_a_q1["decided"], sub_q1["received"]) == ("4", "2", "4")
    assert (br_a_q2["received"], br_a_q2["extended_twice"], br_a_q2["major"]) == ("3", "1", "1")
    assert (br_b_q1["received"], br_b_q1["handling_days_p90"]) == ("0", "")
    assert (br_b_q2["received"], br_b_q2["overdue_now"]) == ("2", "1")

    alone = await statistics_csv(scenario, "BR-A", FROM, TO, None, AS_OF, False)
    rows = [line.split(",") for line in alone.splitlines()[1:]]
    assert [(r[0], r[2], r[6]) for r in rows] == [("BR-A", "false", "3"), ("SUB-A1", "false", "4")]


def test_periods_are_clipped_to_the_range() -> None:
    periods = periods_between(d(2, 15), d(11, 10), "quarter")
    assert [(p.label, p.starts_on, p.ends_on) for p in periods] == [
        ("2026-Q1", d(2, 15), d(3, 31)),
        ("2026-Q2", d(4, 1), d(6, 30)),
        ("2026-Q3", d(7, 1), d(9, 30)),
        ("2026-Q4", d(10, 1), d(11, 10)),
    ]
    halves = periods_between(d(5, 1, 2025), d(2, 1), "half_year")
    assert [p.label for p in halves] == ["2025-H1", "2025-H2", "2026-H1"]
    months = periods_between(d(12, 31, 2025), d(1, 1), "month")
    assert [(p.label, p.starts_on, p.ends_on) for p in months] == [
        ("2025-12", d(12, 31, 2025), d(12, 31, 2025)),
        ("2026-01", d(1, 1), d(1, 1)),
    ]
