"""A rebuild from the events alone gets exactly the rows the live projections hold: random
histories through the command path, then `rebuild`, row for row (DOMAIN.md "Statistics": "a
batch job rebuilds them from the events alone and gets exactly the figures that the live
projection shows").

Each generated case follows a plausible life (assignment, recusal, extensions, pauses, new facts,
then open, decided and perhaps reviewed and changed, withdrawn, declined or merged) on random
days, so decisions fall on time or late; the cases' commands are interleaved by date. A step
the rules refuse (a review asked after its window, a merge into a decided case…) stores nothing,
as on the real command path.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rebuild_support import every_row

from complaintcore.application.complaint_service import CaseNotFound, NotPermitted
from complaintcore.domain.commands import Outcome, RootCause, Satisfaction
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.projections.rebuild import RebuildSettings, rebuild
from complaintcore.projections.runner import ProjectionRunner
from projection_support import CaseDesk
from testsupport import examples

REFUSED = (RuleViolation, InvalidCommand, CaseNotFound, NotPermitted)
FIRST_DAY = date(2025, 11, 3)
CATEGORIES = (
    ("credit_card", "pricing_and_fees"),
    ("loans", "service_attitude"),
    ("wealth_management", "marketing"),
)


@dataclass(frozen=True)
class Step:
    day: int  # days after the case's receipt
    action: str
    params: dict[str, Any]


@st.composite
def case_life(draw: st.DrawFn) -> list[Step]:
    day = 0

    def later(most: int) -> int:
        nonlocal day
        day += draw(st.integers(0, most))
        return day

    business, reason = draw(st.sampled_from(CATEGORIES))
    receipt = {
        "institution": draw(st.sampled_from(("HO", "BR-A", "BR-B", "SUB-A1"))),
        "channel": draw(st.sampled_from(("phone", "online", "letter", "in_person", "email"))),
        "business": business,
        "reason": reason,
    }
    life = [Step(0, "receive", receipt)]
    handler = "h-1"
    if draw(st.integers(0, 9)) > 0:
        life.append(Step(later(2), "assign", {"handler": handler}))
        if draw(st.integers(0, 5)) == 0:
            life.append(Step(later(3), "recuse", {"handler": handler}))
            handler = "h-2"
            life.append(Step(later(1), "assign", {"handler": handler}))
    if draw(st.integers(0, 5)) == 0:
        life.append(Step(later(5), "flag_major", {}))
    for level in range(draw(st.integers(0, 2))):
        life.append(Step(later(14), "extend", {"approved": level == 1}))
    if draw(st.booleans()):
        life.append(Step(later(10), "pause", {}))
        if draw(st.integers(0, 4)) > 0:
            life.append(Step(later(10) + 1, "resume", {}))
    if draw(st.integers(0, 4)) == 0:
        life.append(Step(later(10), "supplement", {"new_facts": draw(st.booleans())}))
    ending = draw(st.sampled_from(("open", "decide", "decide", "decide", "withdraw", "decline")))
    if draw(st.integers(0, 6)) == 0:
        ending = "merge"
    if ending == "decide":
        life.append(
            Step(
                later(30),
                "decide",
                {
                    "handler": handler,
                    "outcome": draw(st.sampled_from(list(Outcome))),
                    "redress_fen": draw(st.integers(0, 500_000)),
                    "head_office": receipt["institution"] == "HO",
                },
            )
        )
        if draw(st.booleans()):
            life.append(Step(later(35), "appeal", {}))
            review = draw(st.sampled_from(("none", "kept", "changed")))
            if review != "none":
                changed = {
                    "new_outcome": draw(st.sampled_from(list(Outcome))),
                    "new_redress_fen": draw(st.none() | st.integers(0, 500_000)),
                }
                life.append(Step(later(35), "review", changed if review == "changed" else {}))
        life.extend(internal_control(draw, later))
        if draw(st.integers(0, 5)) == 0:
            life.append(Step(later(20), "withdraw", {}))
    elif ending == "merge":
        life.append(Step(later(5), "merge", {"into": draw(st.integers(0, 7))}))
    elif ending != "open":
        life.append(Step(later(20), ending, {}))
    return life


def internal_control(draw: st.DrawFn, later: Any) -> list[Step]:
    """After a decision: perhaps attributions (a later one superseding), actions closed, and
    follow-ups, on random days (issue 14)."""
    steps = []
    for _ in range(draw(st.integers(0, 2))):
        dues = draw(st.lists(st.integers(0, 60), max_size=3))
        steps.append(
            Step(
                later(20),
                "attribute",
                {
                    "root_cause": draw(st.sampled_from(list(RootCause))),
                    "responsible": draw(st.sampled_from(("HO", "BR-A", "BR-B", "SUB-A1"))),
                    "due_after": dues,
                },
            )
        )
        for action in draw(st.lists(st.integers(1, 3), max_size=2, unique=True)):
            steps.append(Step(later(40), "rectify", {"action_id": f"a-{action}"}))
    for _ in range(draw(st.integers(0, 2))):
        satisfaction = draw(st.none() | st.sampled_from(list(Satisfaction)))
        steps.append(Step(later(20), "follow_up", {"satisfaction": satisfaction}))
    return steps


histories = st.lists(st.tuples(st.integers(0, 120), case_life()), min_size=1, max_size=8)


async def play(desk: CaseDesk, history: list[tuple[int, list[Step]]]) -> None:
    """Every case's steps, interleaved by business date (each case's own order kept)."""
    timeline = sorted(
        (start + step.day, case, index, step)
        for case, (start, life) in enumerate(history)
        for index, step in enumerate(life)
    )
    ids: dict[int, str] = {}
    for day_number, case, _, step in timeline:
        on = FIRST_DAY + timedelta(days=day_number)
        if step.action == "receive":
            ids[case] = await desk.receive(on=on, **step.params)
            continue
        with suppress(*REFUSED):  # refused by the rules: nothing stored, as on the command path
            await act(desk, ids[case], on, step, ids)


async def act(desk: CaseDesk, case_id: str, on: date, step: Step, ids: dict[int, str]) -> None:
    params = step.params
    match step.action:
        case "assign":
            await desk.assign(case_id, on, params["handler"])
        case "recuse":
            await desk.recuse(case_id, on, params["handler"])
        case "flag_major":
            await desk.flag_major(case_id, on)
        case "extend":
            await desk.extend(case_id, on, approved=params["approved"])
        case "pause":
            await desk.pause(case_id, on)
        case "resume":
            await desk.resume(case_id, on)
        case "supplement":
            await desk.supplement(case_id, on, new_facts=params["new_facts"])
        case "decide":
            await desk.decide(case_id, on, **params)
        case "appeal":
            await desk.appeal(case_id, on)
        case "review":
            await desk.decide_review(case_id, on, **params)
        case "withdraw":
            await desk.withdraw(case_id, on)
        case "decline":
            await desk.decline(case_id, on)
        case "attribute":
            dues = tuple(on + timedelta(days=days) for days in params["due_after"])
            await desk.attribute(
                case_id,
                on,
                root_cause=params["root_cause"],
                responsible=params["responsible"],
                due_on=dues,
            )
        case "rectify":
            await desk.rectify(case_id, on, params["action_id"])
        case "follow_up":
            await desk.follow_up(case_id, on, params["satisfaction"])
        case "merge":
            into = ids.get(params["into"] % len(ids), case_id)
            await desk.merge(case_id, into, on)


# Two scan worker processes over three ranges of the cases (one worker scans two), a few pages
# and batches each.
IN_WORKERS = RebuildSettings(page_events=7, flush_rows=3, scan_workers=2, scan_partitions=3)


async def live_and_rebuilt(pool: asyncpg.Pool, database_url: str) -> None:
    """Catch the runner up, then rebuild both projections and compare them row for row, the
    statistics' monthly buckets too."""
    await ProjectionRunner(database_url, CaseDesk(pool).store).catch_up()
    live = await every_row(pool)
    await rebuild(database_url, settings=IN_WORKERS)
    assert await every_row(pool) == live


@settings(
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
async def test_rebuilt_tables_equal_the_live_ones_row_for_row(
    pool: asyncpg.Pool, database_url: str, history: list[tuple[int, list[Step]]]
) -> None:
    # One database for every example: the histories pile up, and each rebuild starts from the
    # tables the previous one swapped in, so the runner must carry on after a swap too.
    desk = CaseDesk(pool)
    if await pool.fetchval("SELECT count(*) FROM institutions") == 0:
        await desk.plant_tree()
    await play(desk, history)
    await live_and_rebuilt(pool, database_url)
