"""`complaintcore demo`: a bank's institution tree, tokens and realistic cases, for a first look.

Cases are written through `ComplaintService`, so every domain rule applies, registration numbers
are allocated as in production and the case projection is written. Each command runs with the
service's `today` set to its business date, so a case's history is dated in the past (see
`demo_data`). Running it again upserts the tree, creates new tokens and adds new cases. Its
arguments: `cli/parsers/demo.py`.
"""

import argparse
from collections import Counter
from dataclasses import dataclass
from datetime import date

import asyncpg

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.complaint_service import ComplaintService, Rendered, RequestInfo
from complaintcore.auth.tokens import InvalidTokenRequest, create_token
from complaintcore.cli.common import (
    KEY_REFUSALS,
    checked_case_keys,
    database_url,
    fail,
    run_with_pool,
)
from complaintcore.cli.demo_data import (
    BANK_NAME,
    DEMO_PRINCIPALS,
    SITES,
    CaseStory,
    DemoPrincipal,
    Site,
    demo_stories,
    institution_nodes,
)
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import MergeComplaint
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.domain.state import CaseStatus, ComplaintState
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings
from complaintcore.projections.case_view import load_index_key
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import HierarchyRefused, InstitutionDirectory

CLIENT = "complaintcore demo"
STATUS_ORDER = tuple(CaseStatus)


@dataclass(frozen=True)
class DemoResult:
    tokens: list[tuple[DemoPrincipal, str]]
    cases: list[ComplaintState]


def demo(args: argparse.Namespace, settings: Settings) -> int:
    today = shanghai_today()
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            result = run_with_pool(
                url, lambda pool: _seed_with_keys(pool, settings, args.seed, args.cases, today)
            )
        except DemoStoryRefused as refused:
            return fail(str(refused))
        except KEY_REFUSALS as error:
            return fail(str(error))
        except (HierarchyRefused, InvalidTokenRequest) as clash:
            # the database holds a tree or principals the demo's clash with (found by a review
            # pass: a traceback); its tree upserted before is the demo's own, kept on any run
            return fail(
                f"the demo cannot be played on this database: {clash}; play it on a new one"
            )
    print(render_result(result, args.seed, today))
    return 0


async def _seed_with_keys(
    pool: asyncpg.Pool, settings: Settings, seed: int, case_count: int, today: date
) -> DemoResult:
    async with pool.acquire() as connection:
        case_keys = await checked_case_keys(settings, connection)
    return await seed_demo(pool, case_keys, seed, case_count, today)


async def seed_demo(
    pool: asyncpg.Pool, case_keys: CaseKeys, seed: int, case_count: int, today: date
) -> DemoResult:
    """Upsert the tree, create the tokens, then play `case_count` stories (their personal data
    sealed under `case_keys`, as the service seals it); what was created."""
    directory = InstitutionDirectory(pool)
    await directory.put_many(institution_nodes())
    tokens = [(principal, await _token_for(pool, principal)) for principal in DEMO_PRINCIPALS]
    calendar = await CalendarRepository(pool).working_day_calendar()
    stories = demo_stories(seed, case_count, today, calendar.years)
    async with pool.acquire() as connection:
        index_key = await load_index_key(connection, case_keys.provider, case_keys.suite.name)
    player = _StoryPlayer(pool, directory, calendar, case_keys, index_key)
    cases = [await player.play(story) for story in stories]
    return DemoResult(tokens, cases)


async def _token_for(pool: asyncpg.Pool, demo_principal: DemoPrincipal) -> str:
    principal = demo_principal.principal
    return await create_token(pool, principal.id, principal.role, principal.institution)


class DemoStoryRefused(Exception):
    """A generated story broke a domain rule: a bug in `demo_data`, reported with the story."""


class _LoadedCalendar:
    """The calendar read once for the whole run (reference data does not change meanwhile)."""

    def __init__(self, calendar: WorkingDayCalendar) -> None:
        self._calendar = calendar

    async def working_day_calendar(self) -> WorkingDayCalendar:
        return self._calendar


class _StoryPlayer:
    """Plays stories through one `ComplaintService` whose `today` is the step's business date."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        directory: InstitutionDirectory,
        calendar: WorkingDayCalendar,
        case_keys: CaseKeys,
        index_key: IndexKey,
    ) -> None:
        self._business_date = date.min
        self._service = ComplaintService(
            pool,
            PostgresEventStore(pool),
            directory,
            _LoadedCalendar(calendar),
            case_keys,
            index_key,
            today=lambda: self._business_date,
        )
        self._case_ids: list[str] = []

    async def play(self, story: CaseStory) -> ComplaintState:
        try:
            state = await self._play(story)
        except (RuleViolation, InvalidCommand) as error:
            raise DemoStoryRefused(
                f"demo case ({story.fate}, received {story.received_on} at {story.institution})"
                f" was refused: {error}"
            ) from error
        self._case_ids.append(state.id)
        return state

    async def _play(self, story: CaseStory) -> ComplaintState:
        self._business_date = story.received_on
        rendered = await self._service.receive(
            story.receiver,
            story.institution,
            story.received_on,
            story.receipt_for,
            RequestInfo(client=CLIENT),
            _state_of,
        )
        state: ComplaintState = rendered.body
        for step in story.steps:
            command = step.command
            if isinstance(command, MergeComplaint) and story.merge_into is not None:
                command = MergeComplaint(into=self._case_ids[story.merge_into])
            self._business_date = step.on
            rendered = await self._service.handle(
                step.actor, state.id, command, None, RequestInfo(client=CLIENT), _state_of
            )
            state = rendered.body
        return state


def _state_of(state: ComplaintState, today: date, policy: InstitutionPolicy) -> Rendered:
    return Rendered(200, state, {})


# --- what is printed -----------------------------------------------------------------------


def render_result(result: DemoResult, seed: int, today: date) -> str:
    lines = [f"Demo data for {BANK_NAME} (seed {seed}, business dates up to {today}).", ""]
    lines += _tree_lines()
    lines += ["", "Tokens (new on every run, stored hashed: this is the only time they are shown):"]
    for demo_principal, token in result.tokens:
        principal = demo_principal.principal
        where = f" at {principal.institution}" if principal.institution else ""
        lines.append(f"  {principal.role} {principal.id}{where}: {demo_principal.title}")
        lines.append(f"    token   {token}")
        lines.append(f"    can     {demo_principal.can}")
    lines += ["", *_summary_lines(result.cases), "", *_try_it_lines(result)]
    return "\n".join(lines)


def _tree_lines() -> list[str]:
    depth = {"head_office": 0, "branch": 1, "sub_branch": 2}
    lines = [f"Institutions ({len(SITES)} nodes, created or updated):"]
    for site in _tree_order():
        lines.append(f"  {'  ' * depth[site.kind]}{site.code}  {site.name}")
    return lines


def _tree_order() -> list[Site]:
    ordered: list[Site] = []

    def visit(parent: str | None) -> None:
        for site in SITES:
            if site.parent == parent:
                ordered.append(site)
                visit(site.code)

    visit(None)
    return ordered


def _summary_lines(cases: list[ComplaintState]) -> list[str]:
    by_status = Counter(str(case.status) for case in cases)
    lines = [f"Cases added: {len(cases)}, by status:"]
    for status in STATUS_ORDER:
        if by_status[status]:
            lines.append(f"  {status:<15}{by_status[status]:>5}")
    return lines


def _try_it_lines(result: DemoResult) -> list[str]:
    staff_token = next(
        token for principal, token in result.tokens if principal.principal.role == "staff"
    )
    regulator_token = next(
        token for principal, token in result.tokens if principal.principal.role == "regulator"
    )
    lines = [
        "Try it:",
        "  make run    # serves the API on http://127.0.0.1:8000, on this same database",
        f'  curl -H "Authorization: Bearer {staff_token}" '
        '"http://127.0.0.1:8000/v1/complaints?limit=5"',
        f'  curl -H "Authorization: Bearer {staff_token}" '
        '"http://127.0.0.1:8000/v1/deadlines?clock=overdue"',
    ]
    if result.cases:
        case_id = max(result.cases, key=lambda case: case.version).id  # the longest history
        lines += [
            f'  curl -H "Authorization: Bearer {regulator_token}" '
            f'"http://127.0.0.1:8000/v1/complaints/{case_id}/audit"',
            f"  complaintcore audit {case_id}",
        ]
    return lines
