"""Holiday calendars as loaded data (DOMAIN.md: "the calendar is data that can be loaded for new
years").

The effective calendar is the seed shipped with the `chinesecalendar` package with every year
stored in `calendar_years` laid over it: a stored year replaces the seed's year whole, so a
correction to a year the seed got wrong is one load, and a year neither has stays missing
(`CalendarYearMissing`), never guessed.

Files for `complaintcore calendar load`:

- JSON: one `{"year": 2027, "holidays": [...], "adjusted_working_days": [...]}` or a list of them.
- CSV: `date,kind` rows (header optional), `kind` being `holiday` or `working_day` (a weekend day
  made a working day, 调休); rows are grouped by the year of their date.
"""

import csv
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import asyncpg

from complaintcore.domain.calendar import (
    FIRST_YEAR,
    LAST_YEAR,
    CalendarYearMissing,
    WorkingDayCalendar,
    YearCalendar,
    check_year_in_range,
    seeded_calendar,
    year_calendar_from_mapping,
)
from complaintcore.reference.files import read_json_or_csv

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "CalendarRepository",
    "CalendarYearMissing",
    "EffectiveSource",
    "check_year_in_range",
    "read_calendar_file",
]

EffectiveSource = Literal["stored", "seeded"]
CSV_HOLIDAY = "holiday"
CSV_WORKING_DAY = "working_day"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Changes whenever a stored year is added, replaced or removed (every write of a row gives it a
# new xmin), so a process can keep the effective calendar until the stamp it reads differs. Cheap:
# the table holds at most one row a year.
CALENDAR_STAMP_SQL = """
SELECT coalesce(md5(string_agg(year || ':' || xmin::text, ',' ORDER BY year)), '')
FROM calendar_years
"""


class CalendarRepository:
    """Stored calendar years (table `calendar_years`) and the effective calendar they make."""

    stamp_sql = CALENDAR_STAMP_SQL

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._effective: tuple[str, WorkingDayCalendar] | None = None

    async def put_year(self, year_calendar: YearCalendar) -> bool:
        """Store a year, replacing any stored data for it; True when none was stored before."""
        return await _upsert_year(self._pool, year_calendar)

    async def store_year(self, year_calendar: YearCalendar) -> bool:
        """Store a year over whatever it had; True when it had no calendar at all before,
        neither stored nor seeded."""
        newly_stored = await self.put_year(year_calendar)
        return newly_stored and year_calendar.year not in seeded_calendar().years

    async def effective_year(self, year: int) -> tuple[YearCalendar, EffectiveSource]:
        """A year as the effective calendar has it: stored if loaded, else seeded (a stored
        year replaces the seed's whole, as in `working_day_calendar`). Raises
        `CalendarYearMissing` when neither has it."""
        stored = await self.stored_year(year)
        if stored is not None:
            return stored, "stored"
        return seeded_calendar().for_year(year), "seeded"

    async def put_years(self, year_calendars: Iterable[YearCalendar]) -> int:
        """Store several years in one transaction (all or nothing); returns how many."""
        stored = 0
        async with self._pool.acquire() as connection, connection.transaction():
            for year_calendar in year_calendars:
                await _upsert_year(connection, year_calendar)
                stored += 1
        return stored

    async def stored_years(
        self, *, connection: asyncpg.Connection | None = None
    ) -> list[YearCalendar]:
        rows = await (connection or self._pool).fetch(
            "SELECT year, holidays, adjusted_working_days FROM calendar_years ORDER BY year"
        )
        return [_year_calendar(row) for row in rows]

    async def stored_year(self, year: int) -> YearCalendar | None:
        row = await self._pool.fetchrow(
            "SELECT year, holidays, adjusted_working_days FROM calendar_years WHERE year = $1",
            year,
        )
        return _year_calendar(row) if row else None

    async def working_day_calendar(
        self, *, stamp: str | None = None, connection: asyncpg.Connection | None = None
    ) -> WorkingDayCalendar:
        """The seed with every stored year applied over it, built again only when the stored
        years changed: `stamp` is what `stamp_sql` gave the caller (read here when None).

        The years are read after the stamp, so a calendar kept under a stamp is never older than
        the stamp; a year stored in between only costs one more build later.
        """
        executor = connection or self._pool
        if stamp is None:
            stamp = await executor.fetchval(CALENDAR_STAMP_SQL)
        effective = self._effective
        if effective is not None and effective[0] == stamp:
            return effective[1]
        years = await self.stored_years(connection=connection)
        calendar = reduce(WorkingDayCalendar.with_year, years, seeded_calendar())
        self._effective = (stamp, calendar)
        return calendar


async def _upsert_year(
    executor: asyncpg.Pool | asyncpg.Connection, year_calendar: YearCalendar
) -> bool:
    check_year_in_range(year_calendar.year)
    return await executor.fetchval(
        """
        INSERT INTO calendar_years (year, holidays, adjusted_working_days)
        VALUES ($1, $2, $3)
        ON CONFLICT (year) DO UPDATE
            SET holidays = EXCLUDED.holidays,
                adjusted_working_days = EXCLUDED.adjusted_working_days,
                loaded_at = now()
        -- a freshly inserted row version has no deleting transaction (xmax 0)
        RETURNING (xmax = 0) AS inserted
        """,
        year_calendar.year,
        sorted(year_calendar.holidays),
        sorted(year_calendar.adjusted_working_days),
    )


def read_calendar_file(path: Path, max_bytes: int | None = None) -> list[YearCalendar]:
    """The years in a JSON or CSV calendar file (see the module's docstring)."""
    return read_json_or_csv(path, calendars_from_json, calendars_from_csv, max_bytes)


def calendars_from_json(data: Any) -> list[YearCalendar]:
    items = data if isinstance(data, list) else [data]
    years = []
    for index, item in enumerate(items):
        try:
            years.append(year_calendar_from_mapping(item))
        except ValueError as error:
            where = f"item {index}: " if isinstance(data, list) else ""
            raise ValueError(f"{where}{error}") from None
    return _checked(years)


def calendars_from_csv(lines: Iterable[str]) -> list[YearCalendar]:
    by_year: dict[int, dict[str, list[str]]] = defaultdict(
        lambda: {"holidays": [], "adjusted_working_days": []}
    )
    for line_number, row in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (line_number == 1 and cells == ["date", "kind"]):
            continue
        day, kind = _csv_row(cells, line_number)
        field = "holidays" if kind == CSV_HOLIDAY else "adjusted_working_days"
        by_year[day.year][field].append(day.isoformat())
    years = []
    for year, fields in sorted(by_year.items()):
        try:
            years.append(year_calendar_from_mapping({"year": year, **fields}))
        except ValueError as error:
            raise ValueError(f"{year}: {error}") from None
    return _checked(years)


def _csv_row(cells: list[str], line_number: int) -> tuple[date, str]:
    if len(cells) != 2:
        raise ValueError(f"line {line_number}: expected date,kind")
    text, kind = cells
    if kind not in (CSV_HOLIDAY, CSV_WORKING_DAY):
        raise ValueError(
            f"line {line_number}: kind {kind!r} is not {CSV_HOLIDAY} or {CSV_WORKING_DAY}"
        )
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text), kind
    except ValueError:
        raise ValueError(f"line {line_number}: {text!r} is not a YYYY-MM-DD date") from None


def _checked(years: list[YearCalendar]) -> list[YearCalendar]:
    seen: set[int] = set()
    for year_calendar in years:
        check_year_in_range(year_calendar.year)
        if year_calendar.year in seen:
            raise ValueError(f"{year_calendar.year} is given twice")
        seen.add(year_calendar.year)
    return years


def _year_calendar(row: asyncpg.Record) -> YearCalendar:
    return YearCalendar(
        year=row["year"],
        holidays=frozenset(row["holidays"]),
        adjusted_working_days=frozenset(row["adjusted_working_days"]),
    )
