"""The PRC working-day calendar used for the regulator's "7 working days" (Art. 33).

Art. 43 makes every other "day" in CBIRC Order 2020 No. 3 a calendar day; only Art. 33's
7个工作日 needs working days. Working days follow the State Council General Office's yearly
notice (国务院办公厅关于 N 年部分节假日安排的通知): a day is a working day when it is a Monday to
Friday outside the announced holiday periods, or a weekend day the notice makes a working day
(调休上班).

Each year is data (`YearCalendar`), loadable from a plain mapping so a new year's notice can be
added without a code change. A question that touches a year with no data raises
`CalendarYearMissing`: weekdays alone would be a silent guess, wrong around every holiday.
"""

from __future__ import annotations

import calendar as gregorian
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any

import chinese_calendar

_ONE_DAY = timedelta(days=1)
_SATURDAY = 5  # date.weekday(): Monday is 0
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAPPING_KEYS = frozenset({"year", "holidays", "adjusted_working_days"})


# The years a calendar may be loaded for (the `calendar_years` table holds the same range).
FIRST_YEAR = 1949
LAST_YEAR = 2100


class CalendarYearMissing(Exception):
    """A question touched a year for which no holiday calendar is loaded."""

    def __init__(self, year: int) -> None:
        super().__init__(year)
        self.year = year

    def __str__(self) -> str:
        return f"no holiday calendar loaded for {self.year}"


@dataclass(frozen=True)
class YearCalendar:
    """One calendar year of the State Council holiday arrangement.

    `holidays` are the days of the announced holiday periods (放假), including the weekend days
    inside a period; `adjusted_working_days` are the Saturdays and Sundays the notice makes working
    days (调休上班). Any iterable of dates is accepted and stored as a frozenset.
    """

    year: int
    holidays: frozenset[date]
    adjusted_working_days: frozenset[date]

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "adjusted_working_days", frozenset(self.adjusted_working_days))
        _check_year_number(self.year)
        _check_dates_in_year("holidays", self.holidays, self.year)
        _check_dates_in_year("adjusted_working_days", self.adjusted_working_days, self.year)
        _check_disjoint(self.holidays, self.adjusted_working_days)
        _check_weekend_only(self.adjusted_working_days)


class WorkingDayCalendar:
    """An immutable set of `YearCalendar`s answering working-day questions.

    Every method raises `CalendarYearMissing` for the earliest year it touches that is not
    loaded (the year of every date argument and of every day in between), and `TypeError` for a
    `datetime`: business dates are calendar dates in Asia/Shanghai, and a datetime would never
    match the stored dates.
    """

    __slots__ = ("_by_year",)

    def __init__(self, years: Iterable[YearCalendar]) -> None:
        by_year: dict[int, YearCalendar] = {}
        for year_calendar in years:
            if year_calendar.year in by_year:
                raise ValueError(f"two calendars given for {year_calendar.year}")
            by_year[year_calendar.year] = year_calendar
        self._by_year: Mapping[int, YearCalendar] = MappingProxyType(by_year)

    @property
    def years(self) -> frozenset[int]:
        return frozenset(self._by_year)

    def known_through(self, year: int) -> int:
        """The last year up to which every year from `year` on has data (`year - 1` when
        `year` itself has none): how far ahead dates can be computed without a refusal."""
        last = year - 1
        while last + 1 in self._by_year:
            last += 1
        return last

    def for_year(self, year: int) -> YearCalendar:
        try:
            return self._by_year[year]
        except KeyError:
            raise CalendarYearMissing(year) from None

    def with_year(self, year_calendar: YearCalendar) -> WorkingDayCalendar:
        """A new calendar with `year_calendar` added, replacing any data for that year."""
        kept = [known for known in self._by_year.values() if known.year != year_calendar.year]
        return WorkingDayCalendar([*kept, year_calendar])

    def is_working_day(self, day: date) -> bool:
        year_calendar = self._calendar_for(day)
        if day in year_calendar.adjusted_working_days:
            return True
        return day.weekday() < _SATURDAY and day not in year_calendar.holidays

    def is_public_holiday(self, day: date) -> bool:
        """Whether `day` lies in an announced holiday period; an ordinary weekend is not one."""
        return day in self._calendar_for(day).holidays

    def next_working_day(self, day: date) -> date:
        """`day` itself when it is a working day, else the first working day after it."""
        candidate = day
        while not self.is_working_day(candidate):
            candidate += _ONE_DAY
        return candidate

    def working_days_after(self, start: date, end: date) -> int:
        """Working days in (start, end]: `start` is not counted, `end` is.

        This is how Art. 33 is measured: the working days after the regulator received a
        complaint, up to and including the day it forwarded it, must be at most 7.
        """
        self._require_years(start, end)
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return sum(1 for day in _days_after(start, end) if self.is_working_day(day))

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself when `count` is 0)."""
        if count < 0:
            raise ValueError(f"count must be 0 or more, got {count}")
        self._calendar_for(day)
        current = day
        remaining = count
        while remaining:
            current += _ONE_DAY
            if self.is_working_day(current):
                remaining -= 1
        return current

    def _calendar_for(self, day: date) -> YearCalendar:
        _require_plain_date(day)
        return self.for_year(day.year)

    def _require_years(self, start: date, end: date) -> None:
        _require_plain_date(start)
        _require_plain_date(end)
        for year in range(min(start, end).year, max(start, end).year + 1):
            self.for_year(year)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkingDayCalendar):
            return NotImplemented
        return dict(self._by_year) == dict(other._by_year)

    def __hash__(self) -> int:
        return hash(frozenset(self._by_year.values()))

    def __repr__(self) -> str:
        return f"WorkingDayCalendar(years={sorted(self._by_year)})"


@cache
def seeded_calendar() -> WorkingDayCalendar:
    """Every year the installed `chinese_calendar` package has data for.

    The covered range is read from the package (chinesecalendar 1.11.0 covers 2004–2026), the
    same way the package itself decides which years it supports.
    """
    holidays = frozenset(chinese_calendar.holidays)
    adjusted_working_days = frozenset(chinese_calendar.workdays)
    first_year = min(holidays).year
    last_year = max(holidays).year
    return WorkingDayCalendar(
        YearCalendar(
            year=year,
            holidays=frozenset(day for day in holidays if day.year == year),
            adjusted_working_days=frozenset(
                day for day in adjusted_working_days if day.year == year
            ),
        )
        for year in range(first_year, last_year + 1)
    )


def year_calendar_from_mapping(data: Mapping[str, Any]) -> YearCalendar:
    """Load one year from `{"year": 2027, "holidays": [...], "adjusted_working_days": [...]}`.

    Dates are ISO `YYYY-MM-DD` strings (or `date` objects, as a YAML loader gives). All three keys
    are required, an empty list included, and no other key is accepted, so a misspelt key is an
    error rather than a year without 调休. Bad data raises `ValueError` naming the bad item.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"calendar data must be a mapping, got {type(data).__name__}")
    _check_mapping_keys(data)
    return YearCalendar(
        year=_parse_year(data["year"]),
        holidays=_parse_date_list("holidays", data["holidays"]),
        adjusted_working_days=_parse_date_list(
            "adjusted_working_days", data["adjusted_working_days"]
        ),
    )


def year_calendar_to_mapping(year_calendar: YearCalendar) -> dict[str, Any]:
    """The inverse of `year_calendar_from_mapping`, with dates sorted."""
    return {
        "year": year_calendar.year,
        "holidays": _sorted_iso(year_calendar.holidays),
        "adjusted_working_days": _sorted_iso(year_calendar.adjusted_working_days),
    }


def _require_plain_date(day: object) -> None:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")


def _days_after(start: date, end: date) -> Iterator[date]:
    day = start + _ONE_DAY
    while day <= end:
        yield day
        day += _ONE_DAY


def check_year_in_range(year: int) -> None:
    """A year a calendar may be loaded for: `FIRST_YEAR` to `LAST_YEAR`."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"year {year} is outside {FIRST_YEAR}..{LAST_YEAR}")


@dataclass(frozen=True)
class CalendarProblem:
    """One item of a year's lists that does not fit the year: `field` is `holidays.1`, say."""

    field: str
    code: str
    message: str


def year_calendar_problems(
    year: int, holidays: Sequence[date], adjusted_working_days: Sequence[date]
) -> list[CalendarProblem]:
    """Every item that `YearCalendar` would refuse, one entry each, for an answer that lists
    them all: a day outside the year or given twice, an adjusted working day that is not a
    weekend day or is also a holiday."""
    problems = [
        *_date_list_problems("holidays", holidays, year),
        *_date_list_problems("adjusted_working_days", adjusted_working_days, year),
    ]
    holiday_set = set(holidays)
    for index, day in enumerate(adjusted_working_days):
        field = f"adjusted_working_days.{index}"
        if not _is_weekend(day):
            problems.append(CalendarProblem(field, "not_weekend", _not_weekend(day)))
        if day in holiday_set:
            problems.append(CalendarProblem(field, "also_a_holiday", f"{day} is in holidays"))
    return problems


def _date_list_problems(name: str, days: Sequence[date], year: int) -> list[CalendarProblem]:
    problems = []
    seen: set[date] = set()
    for index, day in enumerate(days):
        field = f"{name}.{index}"
        if day.year != year:
            problems.append(CalendarProblem(field, "not_in_year", f"{day} is not in {year}"))
        if day in seen:
            problems.append(CalendarProblem(field, "duplicate", f"{day} is listed twice"))
        seen.add(day)
    return problems


def _is_weekend(day: date) -> bool:
    return day.weekday() >= _SATURDAY


def _not_weekend(day: date) -> str:
    return f"{day} is a {gregorian.day_name[day.weekday()]}, not a Saturday or Sunday"


def _check_year_number(year: object) -> None:
    if isinstance(year, bool) or not isinstance(year, int):
        raise ValueError(f"year must be an integer, got {year!r}")
    if not date.min.year <= year <= date.max.year:
        raise ValueError(f"year {year} is out of range")


def _check_dates_in_year(field: str, days: frozenset[date], year: int) -> None:
    not_dates = [day for day in days if isinstance(day, datetime) or not isinstance(day, date)]
    if not_dates:
        raise ValueError(f"{field}: {not_dates[0]!r} is not a date")
    outside = sorted(day for day in days if day.year != year)
    if outside:
        raise ValueError(f"{field}: {outside[0].isoformat()} is not in {year}")


def _check_disjoint(holidays: frozenset[date], adjusted_working_days: frozenset[date]) -> None:
    both = holidays & adjusted_working_days
    if both:
        first = min(both).isoformat()
        raise ValueError(f"{first} is both a holiday and an adjusted working day")


def _check_weekend_only(adjusted_working_days: frozenset[date]) -> None:
    weekdays = sorted(day for day in adjusted_working_days if not _is_weekend(day))
    if weekdays:
        raise ValueError(f"adjusted_working_days: {_not_weekend(weekdays[0])}")


def _check_mapping_keys(data: Mapping[str, Any]) -> None:
    missing = sorted(_MAPPING_KEYS - data.keys())
    if missing:
        raise ValueError(f"calendar data is missing {', '.join(missing)}")
    unknown = sorted(str(key) for key in data.keys() - _MAPPING_KEYS)
    if unknown:
        raise ValueError(f"calendar data has unknown key(s) {', '.join(unknown)}")


def _parse_year(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"year must be an integer, got {value!r}")
    return value


def _parse_date_list(field: str, values: object) -> frozenset[date]:
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise ValueError(f"{field} must be a list of dates, got {type(values).__name__}")
    days: set[date] = set()
    for index, value in enumerate(values):
        day = _parse_date(f"{field}[{index}]", value)
        if day in days:
            raise ValueError(f"{field}[{index}]: {day.isoformat()} is listed twice")
        days.add(day)
    return frozenset(days)


def _parse_date(where: str, value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"{where}: {value!r} is not a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a real date") from None


def _sorted_iso(days: frozenset[date]) -> list[str]:
    return [day.isoformat() for day in sorted(days)]
