"""Stored calendar years on PostgreSQL, laid over the seeded ones."""

from datetime import date

import asyncpg
import pytest

from complaintcore.domain.calendar import CalendarYearMissing, YearCalendar, seeded_calendar
from complaintcore.reference.calendars import CalendarRepository

# 2027 is beyond the seed (chinesecalendar 1.11 covers 2004–2026): a made-up arrangement.
YEAR_2027 = YearCalendar(
    year=2027,
    holidays=frozenset({date(2027, 1, 1), date(2027, 2, 8), date(2027, 2, 9)}),
    adjusted_working_days=frozenset({date(2027, 2, 20)}),
)


@pytest.fixture
def calendars(pool: asyncpg.Pool) -> CalendarRepository:
    return CalendarRepository(pool)


def first_unseeded_year() -> int:
    return max(seeded_calendar().years) + 1


async def test_a_stored_year_reads_back_equal(calendars: CalendarRepository) -> None:
    assert await calendars.put_year(YEAR_2027) is True
    assert await calendars.stored_year(2027) == YEAR_2027
    assert await calendars.stored_years() == [YEAR_2027]


async def test_storing_a_year_again_replaces_it_whole(calendars: CalendarRepository) -> None:
    await calendars.put_year(YEAR_2027)
    corrected = YearCalendar(2027, frozenset({date(2027, 1, 1)}), frozenset())
    assert await calendars.put_year(corrected) is False
    assert await calendars.stored_years() == [corrected]


async def test_the_effective_calendar_is_the_seed_until_a_year_is_stored(
    calendars: CalendarRepository,
) -> None:
    assert await calendars.working_day_calendar() == seeded_calendar()
    with pytest.raises(CalendarYearMissing):
        (await calendars.working_day_calendar()).is_working_day(date(first_unseeded_year(), 1, 4))


async def test_a_stored_year_extends_the_seed(calendars: CalendarRepository) -> None:
    await calendars.put_year(YEAR_2027)
    effective = await calendars.working_day_calendar()
    assert effective.years == seeded_calendar().years | {2027}
    assert not effective.is_working_day(date(2027, 2, 8))  # a Monday inside the holiday
    assert effective.is_working_day(date(2027, 2, 20))  # a Saturday made a working day


async def test_a_stored_year_overrides_the_seeded_one(calendars: CalendarRepository) -> None:
    national_day_2025 = date(2025, 10, 1)
    assert not seeded_calendar().is_working_day(national_day_2025)
    await calendars.put_year(YearCalendar(2025, frozenset(), frozenset()))
    effective = await calendars.working_day_calendar()
    assert effective.is_working_day(national_day_2025)
    assert effective.for_year(2024) == seeded_calendar().for_year(2024)


async def test_put_years_stores_all_or_nothing(calendars: CalendarRepository) -> None:
    assert await calendars.put_years([YEAR_2027]) == 1
    out_of_range = YearCalendar(2101, frozenset(), frozenset())
    with pytest.raises(ValueError):
        await calendars.put_years([YearCalendar(2028, frozenset(), frozenset()), out_of_range])
    assert [year.year for year in await calendars.stored_years()] == [2027]


async def test_a_year_outside_1949_to_2100_is_refused(calendars: CalendarRepository) -> None:
    with pytest.raises(ValueError):
        await calendars.put_year(YearCalendar(1948, frozenset(), frozenset()))
    assert await calendars.stored_years() == []


async def test_a_kept_calendar_gives_way_to_a_year_stored_by_another_process(
    pool: asyncpg.Pool,
) -> None:
    serving, loading = CalendarRepository(pool), CalendarRepository(pool)
    before = await serving.working_day_calendar()
    assert await serving.working_day_calendar() is before  # kept while nothing changed

    await loading.put_year(YEAR_2027)
    assert 2027 in (await serving.working_day_calendar()).years

    corrected = YearCalendar(2027, frozenset({date(2027, 1, 1)}), frozenset())
    await loading.put_year(corrected)
    assert (await serving.working_day_calendar()).is_working_day(date(2027, 2, 8))


async def test_a_removed_year_is_no_longer_in_the_kept_calendar(
    pool: asyncpg.Pool, calendars: CalendarRepository
) -> None:
    await calendars.put_year(YEAR_2027)
    assert 2027 in (await calendars.working_day_calendar()).years
    await pool.execute("DELETE FROM calendar_years WHERE year = 2027")
    assert 2027 not in (await calendars.working_day_calendar()).years


async def test_the_stamp_a_caller_read_decides_whether_the_calendar_is_built_again(
    pool: asyncpg.Pool, calendars: CalendarRepository
) -> None:
    async with pool.acquire() as connection, connection.transaction():
        stamp = await connection.fetchval(calendars.stamp_sql)
        kept = await calendars.working_day_calendar(stamp=stamp, connection=connection)
        assert await calendars.working_day_calendar(stamp=stamp, connection=connection) is kept
    await calendars.put_year(YEAR_2027)
    new_stamp = await pool.fetchval(calendars.stamp_sql)
    assert new_stamp != stamp
    assert 2027 in (await calendars.working_day_calendar(stamp=new_stamp)).years
