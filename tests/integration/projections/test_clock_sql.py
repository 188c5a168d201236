"""The SQL mirrors of the clock rules (projections/clock_sql.py) select exactly the cases the
domain's own rules pick, on PostgreSQL.

Cases are generated through the domain's commands (`decide`, `evolve`): received on random days,
then assigned, extended, paused and resumed, restarted by new facts, decided on time or late,
reviewed (kept or changed), withdrawn, declined or merged, under random `due_soon_days` and
`roll_past_holidays` policies, at institutions with a superior (a review window) or without
(none). Their real rows go to `case_view` (the case list) and `case_statistics` (the statistics
facts, with their buckets).

As of a day of judgement (only the commands dated on or before it made), through the real reads:
- each clock status selects, in the case list (`list_cases`) and in the facts rows, exactly the
  cases whose `domain.deadlines.clock_status` is that status, and a case_view row reads
  (`clock_reading`) as the domain reads the case;
- "open" selects exactly the cases `domain.state.is_closed` finds open, in both its forms;
- "overdue" exactly those whose handling clock or review clock (`review_clock_status`) is
  overdue, and the statistics' `open_now` and `overdue_now` count exactly those of them that are
  not merged duplicates.

And on every day on which some case's reading turns (a due date, the first day due soon, a
review window's or a review's last day) and the days either side, every condition judges every
case as the domain does: the off-by-one days, which random days seldom hit.
"""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaintcore.crypto.blind_index import IndexKey
from complaintcore.crypto.suites import AES_256_GCM, suite_named
from complaintcore.domain.calendar import seeded_calendar
from complaintcore.domain.commands import (
    Approval,
    ApproverRole,
    AssignHandler,
    Command,
    DecideComplaint,
    DecideReview,
    DeclineComplaint,
    ExtendDeadline,
    MergeComplaint,
    Notice,
    NoticeMethod,
    Outcome,
    PauseClock,
    PauseKind,
    ReceiveComplaint,
    Remedy,
    RequestReview,
    ResumeClock,
    ReviewOutcome,
    SupplementComplaint,
    WithdrawComplaint,
)
from complaintcore.domain.deadlines import ClockStatus, clock_status, review_clock_status
from complaintcore.domain.decider import DecisionContext, decide
from complaintcore.domain.policy import DEFAULT_POLICY, DueSoonDays, InstitutionPolicy
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.domain.state import (
    CaseStatus,
    ComplaintState,
    action_status,
    evolve,
    is_closed,
)
from complaintcore.projections import clock_sql
from complaintcore.projections.case_queries import (
    CaseFilter,
    ClockFromRow,
    clock_reading,
    list_cases,
)
from complaintcore.projections.case_view import upsert_case_view
from complaintcore.projections.statistics import TABLE
from complaintcore.projections.statistics import buckets as statistics_buckets
from complaintcore.projections.statistics.buckets import write_statistics
from complaintcore.projections.statistics.facts import statistics_row
from complaintcore.projections.statistics.queries import query_figures
from projection_support import receipt_command
from testsupport import examples

CALENDAR = seeded_calendar()
INDEX_KEY = IndexKey(b"k" * 32, suite_named(AES_256_GCM))  # the rows' blind index: not judged here
INSTITUTION = "SB-1"
HANDLER = "h-1"
FIRST_JUDGEMENT = date(2025, 9, 1)
FACTS = clock_sql.statistics_columns("f")


def _notice(on: date) -> Notice:
    return Notice(notified_on=on, method=NoticeMethod.SMS, proof_ref=f"sms-{on.isoformat()}")


def _command(action: str, on: date, flag: bool, superior: str | None) -> Command:
    """The command `action` dated `on`; `flag` picks a variant (approved, new facts, changed)."""
    match action:
        case "assign":
            return AssignHandler(HANDLER)
        case "extend":
            approval = Approval("m-sun", ApproverRole.HEAD_OFFICE_SENIOR_MANAGER) if flag else None
            return ExtendDeadline(reason="情况复杂", notice=_notice(on), approval=approval)
        case "pause":
            return PauseClock(PauseKind.APPRAISAL, on, "委托外部机构鉴定", _notice(on))
        case "resume":
            return ResumeClock(on)
        case "supplement":
            return SupplementComplaint(on, new_facts_and_reasons=flag, summary="补充材料")
        case "decide":
            remedies = (Remedy.MEDIATION, Remedy.LITIGATION)
            return DecideComplaint(
                handler_id=HANDLER,
                outcome=Outcome.PARTIALLY_UPHELD,
                findings="年费扣收有误",
                basis="信用卡领用合约第5条",
                remedies=(Remedy.REVIEW, *remedies) if superior else remedies,
                notice=_notice(on),
            )
        case "appeal":
            return RequestReview(received_on=on, grounds="退款金额不足")
        case "review":
            changed = ReviewOutcome.CHANGED if flag else ReviewOutcome.KEPT
            return DecideReview(
                reviewer_id="r-1",
                outcome=changed,
                findings="经核查",
                notice=_notice(on),
                new_outcome=Outcome.UPHELD if flag else None,
            )
        case "withdraw":
            return WithdrawComplaint(received_on=on, reason="已协商解决")
        case "decline":
            return DeclineComplaint(reason="非投诉人本人提出", notice=_notice(on))
        case "merge":
            return MergeComplaint("some-other-case")
    raise AssertionError(action)


def _receipt(number: int, on: date) -> ReceiveComplaint:
    return receipt_command(
        f"00000000-0000-4000-8000-{number:012d}",
        f"{INSTITUTION}-{on:%Y%m}-{number:06d}",
        INSTITUTION,
        on,
    )


def live(
    number: int,
    received_on: date,
    steps: list[tuple[str, int, bool]],
    superior: str | None,
    policy: InstitutionPolicy,
    today: date = date.max,
) -> ComplaintState | None:
    """The case as of `today`: its commands in order, each entered on its own date, those the
    rules refuse storing nothing, those dated after `today` not yet made (None: not received
    yet)."""
    state: ComplaintState | None = None
    on = received_on
    for action, days_later, flag in [("receive", 0, False), *steps]:
        on += timedelta(days=days_later)
        if on > today:
            break
        command = (
            _receipt(number, on) if action == "receive" else _command(action, on, flag, superior)
        )
        context = DecisionContext(
            today=on,
            calendar=CALENDAR,
            policy=policy,
            actor_id="actor-1",
            actor_role="staff",
            superior_of_respondent=superior,
        )
        try:
            events = decide(state, command, context)
        except (RuleViolation, InvalidCommand):
            continue
        for event in events:
            state = evolve(state, event)
    return state


days_later = st.integers(0, 20)


@st.composite
def case_life(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, bool]], str | None]:
    """(days received before the day of judgement, the steps after the receipt as (action, days
    after the previous step, variant), the respondent's superior: None, no review)."""
    life = [("assign", 0, False)] if draw(st.integers(0, 5)) else []
    middle = st.sampled_from(("extend", "extend", "pause", "resume", "supplement"))
    life += draw(st.lists(st.tuples(middle, days_later, st.booleans()), max_size=4))
    ending = draw(st.sampled_from(("open", "decide", "decide", "withdraw", "decline", "merge")))
    if ending == "decide":
        life.append(("decide", draw(days_later), False))
        if draw(st.booleans()):
            life.append(("appeal", draw(st.integers(0, 35)), False))
            if draw(st.booleans()):
                life.append(("review", draw(st.integers(0, 35)), draw(st.booleans())))
        if draw(st.integers(0, 4)) == 0:
            life.append(("withdraw", draw(days_later), False))
    elif ending != "open":
        life.append((ending, draw(days_later), False))
    superior = draw(st.sampled_from((None, "BR-1", "BR-1")))
    return draw(st.integers(0, 100)), life, superior


Lives = list[tuple[int, date, list[tuple[str, int, bool]], str | None]]


@st.composite
def drawn_lives(draw: st.DrawFn) -> tuple[Lives, InstitutionPolicy, date]:
    """Case lives (number, receipt, steps, superior), a policy, and a day they are around."""
    policy = replace(
        DEFAULT_POLICY,
        due_soon_days=draw(st.integers(0, 5)),
        roll_past_holidays=draw(st.booleans()),
    )
    base = FIRST_JUDGEMENT + timedelta(days=draw(st.integers(0, 200)))
    lives = [
        (number, base - timedelta(days=before), life, superior)
        for number, (before, life, superior) in enumerate(
            draw(st.lists(case_life(), min_size=1, max_size=12))
        )
    ]
    return lives, policy, base


def _turning_days(lives: Lives, policy: InstitutionPolicy) -> list[date]:
    """The days on which a reading of one of the cases (lived out in full) changes, and the
    days before and after them: a due date, the first day due soon, a review window's or a
    review's last day."""
    days = set()
    for state in (live(*drawn, policy) for drawn in lives):
        assert state is not None
        turning = [state.clock.due_on, state.clock.due_on - timedelta(days=policy.due_soon_days)]
        if state.decision is not None and state.decision.review_window_ends_on is not None:
            turning.append(state.decision.review_window_ends_on)
        if state.review is not None:
            turning.append(state.review.due_on)
        days |= {day + timedelta(days=offset) for day in turning for offset in (-1, 0, 1)}
    return sorted(days)


@st.composite
def judged_cases(draw: st.DrawFn) -> tuple[list[ComplaintState], date, InstitutionPolicy]:
    """The cases as of a day of judgement (often a turning day of one of them): only the
    commands dated on or before it made, the cases received after it left out."""
    lives, policy, base = draw(drawn_lives())
    today = draw(st.sampled_from([base, *_turning_days(lives, policy)]))
    states = [live(*drawn, policy, today) for drawn in lives]
    return [state for state in states if state is not None], today, policy


async def _write(pool: asyncpg.Pool, states: list[ComplaintState]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        for table in ("case_view", TABLE, *statistics_buckets.TABLES):
            await connection.execute(f"DELETE FROM {table}")
        for state in states:
            await upsert_case_view(connection, state, INDEX_KEY)
        await write_statistics(connection, [statistics_row(state) for state in states])


async def _selected(pool: asyncpg.Pool, table: str, condition: Any, *days: date) -> set[str]:
    """The case ids of `table` (alias f) that `condition` selects; `condition` is SQL, or a
    function of a parameter-taking callable (`param(value) -> placeholder`)."""
    parameters: list[Any] = []

    def param(value: Any) -> str:
        parameters.append(value)
        return f"${len(parameters)}::date"

    sql = condition(param) if callable(condition) else condition
    rows = await pool.fetch(f"SELECT case_id FROM {table} f WHERE {sql}", *parameters, *days)
    return {row["case_id"] for row in rows}


def _overdue(state: ComplaintState, today: date, policy: InstitutionPolicy) -> bool:
    review = review_clock_status(state, today, policy)
    return clock_status(state, today, policy).status is ClockStatus.OVERDUE or (
        review is not None and review.status is ClockStatus.OVERDUE
    )


@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(judged=judged_cases())
async def test_each_clock_sql_selects_exactly_the_cases_the_domain_rule_picks(
    pool: asyncpg.Pool, judged: tuple[list[ComplaintState], date, InstitutionPolicy]
) -> None:
    states, today, policy = judged
    soon_days = policy.due_soon_days
    await _write(pool, states)

    views = {row["case_id"]: row for row in await pool.fetch("SELECT * FROM case_view")}
    for state in states:
        reading = clock_status(state, today, policy)
        expected_reading = ClockFromRow(reading.status.value, reading.days_left)
        assert clock_reading(views[state.id], today, soon_days) == expected_reading

    for status in ClockStatus:
        expected = {
            state.id for state in states if clock_status(state, today, policy).status is status
        }
        listed, _ = await list_cases(
            pool, CaseFilter(clock=status), today, DueSoonDays(soon_days), 1000, None
        )
        assert {row["case_id"] for row in listed} == expected, status

        def facts_condition(param: Any, status: ClockStatus = status) -> str:
            conditions = clock_sql.handling_clock_is(
                status,
                FACTS,
                today=lambda: param(today),
                soon=lambda: param(today + timedelta(days=soon_days)),
            )
            return " AND ".join(conditions)

        assert await _selected(pool, TABLE, facts_condition) == expected, status

    open_cases = {state.id for state in states if not is_closed(state, today)}
    for form in (clock_sql.is_open, clock_sql.is_open_indexed):
        assert await _selected(pool, TABLE, form(FACTS, "$1::date"), today) == open_cases, form
    overdue_cases = {state.id for state in states if _overdue(state, today, policy)}
    assert await _selected(pool, TABLE, clock_sql.overdue(FACTS, "$1::date"), today) == (
        overdue_cases
    )

    counted = [state for state in states if state.status is not CaseStatus.MERGED]
    figures = await query_figures(
        pool,
        [(INSTITUTION, INSTITUTION)],
        min((state.received_on for state in states), default=today),
        today,
        None,
        today,
        breakdowns=False,
    )
    total = figures.block(INSTITUTION, None).figures
    assert total["open_now"] == sum(state.id in open_cases for state in counted)
    assert total["overdue_now"] == sum(state.id in overdue_cases for state in counted)


def _judged_sql(columns: clock_sql.ClockColumns, *, handling_only: bool) -> str:
    """Every condition of clock_sql as a column, judged on the day `d.day` ($2: due_soon_days)."""
    today, soon = "d.day", "(d.day + $2::int)"
    conditions = {
        status.value: " AND ".join(
            clock_sql.handling_clock_is(status, columns, lambda: today, lambda: soon)
        )
        for status in ClockStatus
    }
    if not handling_only:
        conditions["open"] = clock_sql.is_open(columns, today)
        conditions["open_indexed"] = clock_sql.is_open_indexed(columns, today)
        conditions["overdue"] = clock_sql.overdue(columns, today)
    return ", ".join(f"coalesce(({sql}), false) AS {name}" for name, sql in conditions.items())


def _judged_by_domain(
    state: ComplaintState, day: date, policy: InstitutionPolicy, *, handling_only: bool
) -> dict[str, bool]:
    status = clock_status(state, day, policy).status
    judged = {each.value: status is each for each in ClockStatus}
    if not handling_only:
        judged["open"] = judged["open_indexed"] = not is_closed(state, day)
        judged["overdue"] = _overdue(state, day, policy)
    return judged


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=drawn_lives())
async def test_on_every_day_a_reading_turns_the_sql_and_the_domain_judge_each_case_alike(
    pool: asyncpg.Pool, drawn: tuple[Lives, InstitutionPolicy, date]
) -> None:
    # The cases lived out in full, judged on every day one of them turns and the days either
    # side: the rules are functions of (case, day), the SQL must agree on each pair.
    lives, policy, _ = drawn
    states = {state.id: state for state in (live(*life, policy) for life in lives) if state}
    days = _turning_days(lives, policy)
    await _write(pool, list(states.values()))

    for table, columns, handling_only in (
        ("case_view", clock_sql.case_view_columns("f"), True),
        (TABLE, FACTS, False),
    ):
        rows = await pool.fetch(
            f"SELECT d.day, f.case_id, {_judged_sql(columns, handling_only=handling_only)}"
            f" FROM {table} f CROSS JOIN unnest($1::date[]) AS d (day)",
            days,
            policy.due_soon_days,
        )
        in_sql = {
            (row["day"], row["case_id"]): {
                k: v for k, v in row.items() if k not in ("day", "case_id")
            }
            for row in rows
        }
        by_domain = {
            (day, case_id): _judged_by_domain(state, day, policy, handling_only=handling_only)
            for day in days
            for case_id, state in states.items()
        }
        assert in_sql == by_domain, table


# --- a rectification action's status: clock_sql.action_status mirrors domain action_status ---

_DAYS = st.dates(date(2025, 12, 1), date(2026, 3, 31))


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    actions=st.lists(st.tuples(_DAYS, st.none() | _DAYS), min_size=1, max_size=20),
    on=_DAYS,
)
async def test_the_action_status_sql_judges_each_action_as_the_domain_does(
    pool: asyncpg.Pool, actions: list[tuple[date, date | None]], on: date
) -> None:
    status = clock_sql.action_status("a.due_on", "a.closed_on", "$3::date")
    rows = await pool.fetch(
        f"SELECT {status} AS status FROM unnest($1::date[], $2::date[])"
        " WITH ORDINALITY AS a (due_on, closed_on, n) ORDER BY n",
        [due for due, _ in actions],
        [closed for _, closed in actions],
        on,
    )
    assert [row["status"] for row in rows] == [
        str(action_status(due, closed, on)) for due, closed in actions
    ]
