"""An oracle of the statistics, computed from case histories alone (test_statistics_oracle.py,
test_statistics_lifecycle_oracle.py): random histories, playing them through the command path,
and the figures DOMAIN.md's rules give for them, using none of the service's statistics code."""

import itertools
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from complaintcore.auth.principals import Principal
from complaintcore.domain.commands import Outcome, RootCause, Satisfaction
from complaintcore.projections.runner import ProjectionRunner
from projection_support import CaseDesk
from testsupport import examples

BASE = date(2025, 11, 10)
ROOT_NUMBERS = itertools.count(1)

OUTCOMES = [Outcome.UPHELD, Outcome.PARTIALLY_UPHELD, Outcome.REJECTED]
CAUSES = [RootCause.RULES_AND_PROCESS, RootCause.SYSTEMS, RootCause.THIRD_PARTY]
SATISFACTIONS = [None, Satisfaction.SATISFIED, Satisfaction.DISSATISFIED]


@dataclass
class Case:
    level: str  # "root", "branch", "sub"
    received: date
    channel: str
    business: str
    reason: str
    major: bool
    handler: str
    staff: tuple[str, ...]
    ext: list[date] = field(default_factory=list)
    pauses: list[tuple[date, date]] = field(default_factory=list)
    restart: date | None = None
    end: str = "open"  # open, decide, withdraw, decline, merge
    end_on: date | None = None
    outcome: Outcome | None = None
    redress: int = 0
    appeal: date | None = None
    review_on: date | None = None
    review_new: Outcome | None = None
    review_redress: int | None = None
    withdraw_in_review: date | None = None
    attributions: list[tuple[date, RootCause, tuple[date, ...]]] = field(default_factory=list)
    rectified: date | None = None
    follow_ups: list[tuple[date, Satisfaction | None]] = field(default_factory=list)
    # derived by the oracle
    id: str = ""
    inst: str = ""

    # --- the oracle's own rules (DOMAIN.md "Deadlines") ---------------------------------------
    def due_at(self, day: date) -> date:
        """Due date in force just before `day` (only steps dated before `day` count): the
        anchor (receipt, or the last restart) + 15/30/60 by level + the days paused since the
        anchor (a pause open at a restart counts from the restart day)."""
        level = sum(e < day for e in self.ext)
        anchor = self.received
        if self.restart is not None and self.restart < day:
            anchor = self.restart
        paused = sum(max(0, (q - max(p, anchor)).days) for p, q in self.pauses if q < day)
        return anchor + timedelta(days=(15, 30, 60)[level] + paused)

    @property
    def decided(self) -> date | None:
        return self.end_on if self.end == "decide" else None

    @property
    def on_time(self) -> bool:
        assert self.decided is not None
        return self.decided <= self.due_at(self.decided + timedelta(days=1))

    @property
    def handling_days(self) -> int:
        assert self.decided is not None
        return (self.decided - self.received).days - sum((q - p).days for p, q in self.pauses)

    @property
    def final_outcome(self) -> str | None:
        if self.decided is None:
            return None
        if self.review_on is not None and self.review_new is not None:
            return str(self.review_new)
        return str(self.outcome)

    @property
    def final_redress(self) -> int:
        changed = self.review_on is not None and self.review_new is not None
        if changed and self.review_redress is not None:
            return self.review_redress
        return self.redress

    @property
    def merged_on(self) -> date | None:
        return self.end_on if self.end == "merge" else None

    @property
    def withdrawn_on(self) -> date | None:
        if self.end == "withdraw":
            return self.end_on
        return self.withdraw_in_review

    def attribution(self) -> tuple[date, RootCause, tuple[date, ...]] | None:
        return self.attributions[-1] if self.attributions else None

    def is_open(self, today: date) -> bool:
        if self.end in ("withdraw", "decline", "merge") or self.withdraw_in_review:
            return False
        if self.end == "open":
            return True
        if self.review_on is not None:
            return False
        if self.appeal is not None:
            return True
        if self.level == "root":
            return False
        return today <= self.decided + timedelta(days=30)

    def is_overdue(self, today: date) -> bool:
        if not self.is_open(today):
            return False
        if self.end == "open":
            # the due date in force at the end of `today`: a resume or an extension that day counts
            return self.due_at(today + timedelta(days=1)) < today
        if self.appeal is not None and self.review_on is None:
            return self.appeal + timedelta(days=30) < today
        return False


@st.composite
def case_plans(draw: Any, index: int) -> Case:
    level = draw(st.sampled_from(["root", "branch", "sub"]))
    received = BASE + timedelta(days=draw(st.integers(0, 110)))
    case = Case(
        level=level,
        received=received,
        channel=draw(st.sampled_from(["phone", "online"])),
        business=draw(st.sampled_from(["credit_card", "loans"])),
        reason=draw(st.sampled_from(["pricing_and_fees", "service_attitude"])),
        major=draw(st.booleans()),
        handler=draw(st.sampled_from(["h-1", "h-2"])),
        staff=tuple(draw(st.sampled_from([(), ("s-1",), ("s-1", "s-2")]))),
    )
    last = received
    # extensions, each on or before the due date in force
    for _ in range(draw(st.integers(0, 2))):
        due = case.due_at(last + timedelta(days=1))
        if due < last:
            break
        day = last + timedelta(days=draw(st.integers(0, (due - last).days)))
        case.ext.append(day)
        last = day
    # pauses, each starting on or before the due date in force
    for _ in range(draw(st.integers(0, 2))):
        due = case.due_at(last + timedelta(days=1))
        if due < last:
            break
        start = last + timedelta(days=draw(st.integers(0, min(20, (due - last).days))))
        stop = start + timedelta(days=draw(st.integers(1, 25)))
        case.pauses.append((start, stop))
        last = stop
    if draw(st.booleans()):
        # new facts and reasons: the period restarts (maybe while a pause is open)
        if case.pauses and draw(st.booleans()):
            p, q = case.pauses[-1]
            if (q - p).days >= 2:
                case.restart = p + timedelta(days=draw(st.integers(1, (q - p).days - 1)))
        if case.restart is None:
            due = case.due_at(last + timedelta(days=1))
            if due >= last:
                case.restart = last + timedelta(
                    days=draw(st.integers(0, min(10, (due - last).days)))
                )
                last = case.restart
    case.end = draw(
        st.sampled_from(["open", "decide", "decide", "decide", "withdraw", "decline", "merge"])
    )
    if case.end != "open":
        case.end_on = last + timedelta(days=draw(st.integers(0, 40)))
        last = case.end_on
    if case.end == "decide":
        case.outcome = draw(st.sampled_from(OUTCOMES))
        case.redress = draw(st.sampled_from([0, 0, 1_000, 55_555]))
        if level != "root" and draw(st.booleans()):
            case.appeal = last + timedelta(days=draw(st.integers(0, 28)))
            last = case.appeal
            after = draw(st.sampled_from(["none", "kept", "changed", "changed_amount", "withdraw"]))
            day = last + timedelta(days=draw(st.integers(0, 40)))
            if after == "withdraw":
                case.withdraw_in_review = day
                last = day
            elif after != "none":
                case.review_on = day
                last = day
                # a changed outcome changes the outcome or the redress (review_changes_nothing)
                if after == "changed":
                    others = [o for o in OUTCOMES if o != case.outcome]
                    case.review_new = draw(st.sampled_from(others))
                elif after == "changed_amount":
                    case.review_new = draw(st.sampled_from(OUTCOMES))
                    other_amounts = [r for r in (0, 7_777) if r != case.redress]
                    case.review_redress = draw(st.sampled_from(other_amounts))
        for _ in range(draw(st.integers(0, 2))):
            day = last + timedelta(days=draw(st.integers(0, 30)))
            dues = tuple(
                day + timedelta(days=draw(st.integers(0, 60)))
                for _ in range(draw(st.integers(0, 2)))
            )
            case.attributions.append((day, draw(st.sampled_from(CAUSES)), dues))
            last = day
        if case.attributions and case.attributions[-1][2] and draw(st.booleans()):
            case.rectified = last + timedelta(days=draw(st.integers(0, 30)))
            last = case.rectified
        for _ in range(draw(st.integers(0, 2))):
            day = last + timedelta(days=draw(st.integers(0, 20)))
            case.follow_ups.append((day, draw(st.sampled_from(SATISFACTIONS))))
            last = day
    return case


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 9))
    cases = [draw(case_plans(i)) for i in range(n)]
    start = BASE + timedelta(days=draw(st.integers(-20, 200)))
    end = start + timedelta(days=draw(st.integers(0, 200)))
    return {"cases": cases, "random_range": (start, end), "as_of_after": draw(st.integers(0, 45))}


def last_day(cases: list[Case]) -> date:
    days = []
    for c in cases:
        days += [
            c.received,
            *c.ext,
            *(d for p in c.pauses for d in p),
            c.restart,
            c.end_on,
            c.appeal,
            c.review_on,
            c.withdraw_in_review,
            c.rectified,
            *(a[0] for a in c.attributions),
            *(f[0] for f in c.follow_ups),
        ]
    return max(d for d in days if d is not None)


# --- playing the histories --------------------------------------------------------------------


async def play(desk: CaseDesk, root: str, cases: list[Case]) -> str:
    codes = {"root": root, "branch": f"{root}-B", "sub": f"{root}-S"}
    await desk.institutions.put(root, "总行", "head_office", None)
    desk.actor = Principal(f"staff-{root}", "staff", root)
    await desk.institutions.put(codes["branch"], "分行", "branch", root)
    await desk.institutions.put(codes["sub"], "支行", "sub_branch", codes["branch"])
    # the anchor: the case duplicates merge into, open throughout, at the head office
    anchor = await desk.receive(root, BASE, channel="online", business="loans")
    steps: list[tuple[date, int, Any]] = []
    seq = itertools.count()

    def at(day: date, make: Any) -> None:
        steps.append((day, next(seq), make))

    for case in cases:
        case.inst = codes[case.level]
        head = case.level == "root"

        async def receive(c: Case = case) -> None:
            c.id = await desk.receive(
                c.inst,
                c.received,
                channel=c.channel,
                business=c.business,
                reason=c.reason,
                staff=c.staff,
            )
            await desk.assign(c.id, c.received, handler=c.handler)
            if c.major:
                await desk.flag_major(c.id, c.received)

        at(case.received, receive)
        for n, e in enumerate(case.ext):
            at(e, lambda c=case, e=e, n=n: desk.extend(c.id, e, approved=n == 1))
        for p, q in case.pauses:
            at(p, lambda c=case, p=p: desk.pause(c.id, p))
            at(q, lambda c=case, q=q: desk.resume(c.id, q))
        if case.restart:
            at(case.restart, lambda c=case: desk.supplement(c.id, c.restart, new_facts=True))
        if case.end == "decide":
            at(
                case.end_on,
                lambda c=case, h=head: desk.decide(
                    c.id,
                    c.end_on,
                    outcome=c.outcome,
                    redress_fen=c.redress,
                    head_office=h,
                    handler=c.handler,
                ),
            )
        elif case.end == "withdraw":
            at(case.end_on, lambda c=case: desk.withdraw(c.id, c.end_on))
        elif case.end == "decline":
            at(case.end_on, lambda c=case: desk.decline(c.id, c.end_on))
        elif case.end == "merge":
            at(case.end_on, lambda c=case: desk.merge(c.id, anchor, c.end_on))
        if case.appeal:
            at(case.appeal, lambda c=case: desk.appeal(c.id, c.appeal))
        if case.withdraw_in_review:
            at(case.withdraw_in_review, lambda c=case: desk.withdraw(c.id, c.withdraw_in_review))
        if case.review_on:
            at(
                case.review_on,
                lambda c=case: desk.decide_review(
                    c.id, c.review_on, new_outcome=c.review_new, new_redress_fen=c.review_redress
                ),
            )
        for day, cause, dues in case.attributions:
            at(
                day,
                lambda c=case, d=day, r=cause, u=dues: desk.attribute(
                    c.id, d, root_cause=r, responsible=root, due_on=u
                ),
            )
        if case.rectified:
            at(case.rectified, lambda c=case: desk.rectify(c.id, c.rectified))
        for day, sat in case.follow_ups:
            at(day, lambda c=case, d=day, s=sat: desk.follow_up(c.id, d, s))
    for _day, _n, make in sorted(steps, key=lambda s: (s[0], s[1])):
        await make()
    anchor_case = Case("root", BASE, "online", "loans", "pricing_and_fees", False, "h-1", ())
    anchor_case.id, anchor_case.inst = anchor, root
    cases.append(anchor_case)
    return anchor


# --- the oracle -------------------------------------------------------------------------------


def _round2(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def oracle(cases: list[Case], a: date, b: date, today: date) -> dict[str, Any]:
    def within(day: date | None) -> bool:
        return day is not None and a <= day <= b

    f: dict[str, Any] = {}
    counted = [c for c in cases if within(c.received) and c.merged_on is None]
    decided = [c for c in cases if within(c.decided)]
    f["received"] = len(counted)
    f["decided"] = len(decided)
    f["decided_on_time"] = sum(c.on_time for c in decided)
    f["decided_late"] = sum(not c.on_time for c in decided)
    f["open_now"] = sum(c.is_open(today) for c in counted)
    f["overdue_now"] = sum(c.is_overdue(today) for c in counted)
    f["withdrawn"] = sum(within(c.withdrawn_on) for c in cases)
    f["declined"] = sum(within(c.end_on) for c in cases if c.end == "decline")
    f["merged"] = sum(within(c.merged_on) for c in cases)
    f["extended_once"] = sum(len(c.ext) >= 1 and within(c.ext[0]) for c in cases)
    f["extended_twice"] = sum(len(c.ext) >= 2 and within(c.ext[1]) for c in cases)
    f["paused"] = sum(any(within(p) for p, _ in c.pauses) for c in cases)
    f["reviews_requested"] = sum(within(c.appeal) for c in cases)
    f["reviews_changed"] = sum(within(c.review_on) and c.review_new is not None for c in cases)
    f["major"] = sum(c.major for c in counted)
    f["redress_total_fen"] = sum(c.final_redress for c in decided)
    days = sorted(c.handling_days for c in decided)
    if days:
        f["handling_days_mean"] = _round2(Decimal(sum(days)) / Decimal(len(days)))
        f["handling_days_p90"] = days[-(-9 * len(days) // 10) - 1]
    else:
        f["handling_days_mean"] = f["handling_days_p90"] = None
    attributed = [c for c in cases if c.attribution() and within(c.attribution()[0])]
    f["attributed"] = len(attributed)
    f["third_party"] = sum(c.attribution()[1] is RootCause.THIRD_PARTY for c in attributed)
    rect = {"open": 0, "closed": 0, "overdue": 0}
    for c in attributed:
        dues = c.attribution()[2]
        for n, due in enumerate(dues):
            closed = c.rectified if n == 0 and c.rectified else None
            if closed is not None and closed <= today:
                rect["closed"] += 1
            elif due < today:
                rect["overdue"] += 1
            else:
                rect["open"] += 1
    f["rectification"] = rect
    follow = {"reached": 0, "satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0}
    for c in cases:
        if c.follow_ups and within(c.follow_ups[-1][0]):
            sat = c.follow_ups[-1][1]
            if sat is not None:
                follow["reached"] += 1
                follow[str(sat)] += 1
    f["follow_up"] = follow
    return f


def oracle_breakdowns(
    cases: list[Case], a: date, b: date, today: date, root: str
) -> dict[str, Any]:
    keys = {
        "business": lambda c: c.business,
        "reason": lambda c: c.reason,
        "channel": lambda c: c.channel,
        "outcome": lambda c: c.final_outcome,
        "root_cause": lambda c: str(c.attribution()[1]) if c.attribution() else "-",
        "responsible_institution": lambda c: root if c.attribution() else "-",
    }
    zero = oracle([], a, b, today)
    found: dict[str, Any] = {}
    for name, key_of in keys.items():
        groups: dict[Any, list[Case]] = {}
        for c in cases:
            key = key_of(c)
            if key == "-":
                continue
            groups.setdefault(key, []).append(c)
        entries = []
        for key, members in groups.items():
            figures = oracle(members, a, b, today)
            if figures != zero:
                entries.append({"key": key, "figures": figures})
        entries.sort(key=lambda e: (e["key"] is None, e["key"] or ""))
        found[f"by_{name}"] = entries
    return found


# --- the test ---------------------------------------------------------------------------------

RANGES = [
    (date(2025, 1, 1), date(2025, 12, 31), None),  # a year: the yearly rollups
    (date(2025, 1, 1), date(2025, 12, 31), "month"),
    (date(2026, 1, 1), date(2026, 12, 31), None),
    (date(2025, 10, 1), date(2026, 3, 31), "quarter"),
    (date(2025, 10, 1), date(2026, 3, 31), None),
    (date(2025, 7, 1), date(2026, 6, 30), "half_year"),
    (date(2025, 1, 1), date(2026, 12, 31), None),  # two whole years
    (date(2025, 11, 15), date(2026, 2, 10), "month"),
    (date(2026, 1, 1), date(2027, 12, 31), "quarter"),
    (date(2027, 1, 1), date(2027, 12, 31), None),
]

EXAMPLES = settings(
    max_examples=examples(int(os.environ.get("STATISTICS_ORACLE_EXAMPLES", "15"))),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


async def played(
    pool: asyncpg.Pool, database_url: str, world: dict[str, Any], prefix: str
) -> tuple[list[Case], str, CaseDesk, date]:
    """`world`'s cases played into a new subtree named from `prefix` and caught up by the
    runner: the cases, the subtree's root, the desk, and the day the figures are asked as of."""
    cases: list[Case] = world["cases"]
    root = f"{prefix}{next(ROOT_NUMBERS)}"
    desk = CaseDesk(pool)
    await play(desk, root, cases)
    await ProjectionRunner(database_url, desk.store, batch_size=5).catch_up()
    return cases, root, desk, last_day(cases) + timedelta(days=world["as_of_after"])
