"""The working-day calendar behind Art. 33's "7个工作日" (CBIRC Order 2020 No. 3).

Art. 33: the regulator forwards a complaint to the institution within 7 working days of receiving
it. Art. 43: "以内" includes the last day, and every other "日" is a calendar day. The day of
receipt is not counted (Civil Code Art. 201), so "forwarded in time" means
`working_days_after(received, forwarded) <= 7`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.domain.calendar import (
    CalendarYearMissing,
    WorkingDayCalendar,
    YearCalendar,
    seeded_calendar,
    year_calendar_from_mapping,
    year_calendar_to_mapping,
)

ART_33_WORKING_DAYS = 7
ONE_DAY = timedelta(days=1)


def d(iso: str) -> date:
    return date.fromisoformat(iso)


def days_from(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


# --- worked examples (Art. 33) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_by_regulator", "seventh_working_day"),
    [
        # 2026 National Day: 10-01..10-07 off; Sat 10-10 works. After Wed 09-30 the working days
        # are 10-08, 10-09, 10-10 (Sat), 10-12, 10-13, 10-14, 10-15.
        ("2026-09-30", "2026-10-15"),
        # Received on the first day of the holiday: same count, nothing before 10-08 works.
        ("2026-10-01", "2026-10-15"),
        # 2026 Mid-autumn 09-25..09-27 off; Sun 09-20 works (made up for National Day). After
        # Fri 09-18: 09-20 (Sun), 09-21, 09-22, 09-23, 09-24, then 09-28, 09-29.
        ("2026-09-18", "2026-09-29"),
        # Spring Festival 2025: 01-28..02-04 off; Sun 01-26 and Sat 02-08 work. After Fri 01-24:
        # 01-26 (Sun), 01-27, 02-05, 02-06, 02-07, 02-08 (Sat), 02-10.
        ("2025-01-24", "2025-02-10"),
        # Across New Year 2025 (01-01 off, no make-up day): 12-31, 01-02, 01-03, 01-06..01-09.
        ("2024-12-30", "2025-01-09"),
    ],
)
def test_the_seventh_working_day_after_receipt_is_the_last_day_to_forward(
    received_by_regulator: str, seventh_working_day: str
) -> None:
    calendar = seeded_calendar()
    received = d(received_by_regulator)
    last_day = d(seventh_working_day)

    assert calendar.add_working_days(received, ART_33_WORKING_DAYS) == last_day
    assert calendar.working_days_after(received, last_day) == ART_33_WORKING_DAYS
    assert calendar.working_days_after(received, last_day + ONE_DAY) == ART_33_WORKING_DAYS + 1


def test_a_complaint_forwarded_the_day_it_was_received_took_no_working_days() -> None:
    assert seeded_calendar().working_days_after(d("2026-09-30"), d("2026-09-30")) == 0


def test_2026_national_day_is_seven_holidays_and_the_saturday_after_is_a_working_day() -> None:
    calendar = seeded_calendar()

    for day in days_from(d("2026-10-01"), d("2026-10-07")):
        assert calendar.is_public_holiday(day), day
        assert not calendar.is_working_day(day), day
    assert calendar.is_working_day(d("2026-10-10"))  # Saturday, 调休上班
    assert not calendar.is_public_holiday(d("2026-10-10"))
    assert calendar.is_working_day(d("2026-09-20"))  # Sunday, 调休上班


def test_an_ordinary_weekend_is_neither_a_working_day_nor_a_public_holiday() -> None:
    calendar = seeded_calendar()

    assert not calendar.is_working_day(d("2026-10-17"))  # Saturday
    assert not calendar.is_public_holiday(d("2026-10-17"))


def test_spring_festival_2025_and_its_two_make_up_working_days() -> None:
    calendar = seeded_calendar()

    for day in days_from(d("2025-01-28"), d("2025-02-04")):
        assert calendar.is_public_holiday(day), day
        assert not calendar.is_working_day(day), day
    assert calendar.is_working_day(d("2025-01-26"))  # Sunday
    assert calendar.is_working_day(d("2025-02-08"))  # Saturday


@pytest.mark.parametrize(
    ("day", "next_working"),
    [
        ("2026-10-01", "2026-10-08"),  # first day of National Day
        ("2026-10-10", "2026-10-10"),  # a make-up Saturday is itself a working day
        ("2026-10-11", "2026-10-12"),  # ordinary Sunday
        ("2025-01-28", "2025-02-05"),  # Spring Festival eve
        ("2025-10-08", "2025-10-09"),  # last day of the 2025 National Day and Mid-autumn break
    ],
)
def test_next_working_day_skips_holidays_and_weekends(day: str, next_working: str) -> None:
    assert seeded_calendar().next_working_day(d(day)) == d(next_working)


# --- independence check: the State Council General Office notices, transcribed ------------------

SATURDAY, SUNDAY = 5, 6
STATED_WEEKDAY = {"周六": SATURDAY, "周日": SUNDAY}


@dataclass(frozen=True)
class Notice:
    """国务院办公厅关于 N 年部分节假日安排的通知, as its text reads."""

    reference: str
    # (first day, last day, the number of days the notice states: "共N天")
    holiday_periods: tuple[tuple[str, str, int], ...]
    # (date, the weekday the notice states in brackets): weekend days that are working days
    working_weekends: tuple[tuple[str, str], ...]


NOTICES = {
    2024: Notice(
        reference="国办发明电〔2023〕7号",
        holiday_periods=(
            ("2024-01-01", "2024-01-01", 1),  # 元旦：1月1日放假，与周末连休
            ("2024-02-10", "2024-02-17", 8),  # 春节：2月10日至17日放假调休，共8天
            ("2024-04-04", "2024-04-06", 3),  # 清明节：4月4日至6日放假调休，共3天
            ("2024-05-01", "2024-05-05", 5),  # 劳动节：5月1日至5日放假调休，共5天
            ("2024-06-10", "2024-06-10", 1),  # 端午节：6月10日放假，与周末连休
            ("2024-09-15", "2024-09-17", 3),  # 中秋节：9月15日至17日放假调休，共3天
            ("2024-10-01", "2024-10-07", 7),  # 国庆节：10月1日至7日放假调休，共7天
        ),
        working_weekends=(
            ("2024-02-04", "周日"),
            ("2024-02-18", "周日"),
            ("2024-04-07", "周日"),
            ("2024-04-28", "周日"),
            ("2024-05-11", "周六"),
            ("2024-09-14", "周六"),
            ("2024-09-29", "周日"),
            ("2024-10-12", "周六"),
        ),
    ),
    2025: Notice(
        reference="国办发明电〔2024〕12号",
        holiday_periods=(
            ("2025-01-01", "2025-01-01", 1),  # 元旦：1月1日（周三）放假1天，不调休
            ("2025-01-28", "2025-02-04", 8),  # 春节：1月28日至2月4日放假调休，共8天
            ("2025-04-04", "2025-04-06", 3),  # 清明节：4月4日至6日放假，共3天
            ("2025-05-01", "2025-05-05", 5),  # 劳动节：5月1日至5日放假调休，共5天
            ("2025-05-31", "2025-06-02", 3),  # 端午节：5月31日至6月2日放假，共3天
            ("2025-10-01", "2025-10-08", 8),  # 国庆节、中秋节：10月1日至8日放假调休，共8天
        ),
        working_weekends=(
            ("2025-01-26", "周日"),
            ("2025-02-08", "周六"),
            ("2025-04-27", "周日"),
            ("2025-09-28", "周日"),
            ("2025-10-11", "周六"),
        ),
    ),
    2026: Notice(
        reference="国办发明电〔2025〕7号",
        holiday_periods=(
            ("2026-01-01", "2026-01-03", 3),  # 元旦：1月1日至3日放假调休，共3天
            ("2026-02-15", "2026-02-23", 9),  # 春节：2月15日至23日放假调休，共9天
            ("2026-04-04", "2026-04-06", 3),  # 清明节：4月4日至6日放假，共3天
            ("2026-05-01", "2026-05-05", 5),  # 劳动节：5月1日至5日放假调休，共5天
            ("2026-06-19", "2026-06-21", 3),  # 端午节：6月19日至21日放假，共3天
            ("2026-09-25", "2026-09-27", 3),  # 中秋节：9月25日至27日放假，共3天
            ("2026-10-01", "2026-10-07", 7),  # 国庆节：10月1日至7日放假调休，共7天
        ),
        working_weekends=(
            ("2026-01-04", "周日"),
            ("2026-02-14", "周六"),
            ("2026-02-28", "周六"),
            ("2026-05-09", "周六"),
            ("2026-09-20", "周日"),
            ("2026-10-10", "周六"),
        ),
    ),
}
NOTICE_YEARS = sorted(NOTICES)


def notice_holidays(year: int) -> set[date]:
    periods = NOTICES[year].holiday_periods
    return {day for first, last, _ in periods for day in days_from(d(first), d(last))}


def notice_working_weekends(year: int) -> set[date]:
    return {d(day) for day, _ in NOTICES[year].working_weekends}


def notice_says_working(day: date) -> bool:
    if day in notice_working_weekends(day.year):
        return True
    return day.weekday() < SATURDAY and day not in notice_holidays(day.year)


def every_day_of(year: int) -> list[date]:
    return days_from(date(year, 1, 1), date(year, 12, 31))


@pytest.mark.parametrize("year", NOTICE_YEARS)
def test_the_transcribed_notices_agree_with_their_own_day_counts_and_weekdays(year: int) -> None:
    for first, last, stated_days in NOTICES[year].holiday_periods:
        assert (d(last) - d(first)).days + 1 == stated_days, (first, last)
    for day, stated_weekday in NOTICES[year].working_weekends:
        assert d(day).weekday() == STATED_WEEKDAY[stated_weekday], day


@pytest.mark.parametrize("year", NOTICE_YEARS)
def test_every_day_of_the_year_is_a_working_day_exactly_when_the_notice_says_so(
    year: int,
) -> None:
    calendar = seeded_calendar()

    disagreements = [
        day
        for day in every_day_of(year)
        if calendar.is_working_day(day) != notice_says_working(day)
    ]

    assert disagreements == []


@pytest.mark.parametrize("year", NOTICE_YEARS)
def test_every_day_of_the_year_is_a_public_holiday_exactly_when_the_notice_says_so(
    year: int,
) -> None:
    calendar = seeded_calendar()
    holidays = notice_holidays(year)

    disagreements = [
        day for day in every_day_of(year) if calendar.is_public_holiday(day) != (day in holidays)
    ]

    assert disagreements == []


@pytest.mark.parametrize("year", NOTICE_YEARS)
def test_working_days_in_every_month_agree_with_a_naive_count(year: int) -> None:
    calendar = seeded_calendar()
    for month in range(1, 13):
        first = date(year, month, 1)
        last = date(year + month // 12, month % 12 + 1, 1) - ONE_DAY
        naive = sum(notice_says_working(day) for day in days_from(first, last))

        assert calendar.working_days_after(first - ONE_DAY, last) == naive, (year, month)


def test_the_art_33_last_day_agrees_with_the_notices_for_every_day_of_2024_to_2026() -> None:
    calendar = seeded_calendar()

    def naive_seventh_working_day_after(received: date) -> date:
        day, counted = received, 0
        while counted < ART_33_WORKING_DAYS:
            day += ONE_DAY
            counted += notice_says_working(day)
        return day

    disagreements = [
        received
        for received in days_from(d("2024-01-01"), d("2026-12-15"))
        if calendar.add_working_days(received, ART_33_WORKING_DAYS)
        != naive_seventh_working_day_after(received)
    ]

    assert disagreements == []


# --- coverage of the seeded data -----------------------------------------------------------------


def test_the_seeded_calendar_covers_every_year_the_package_has_data_for() -> None:
    first_year = min(chinese_calendar.holidays).year
    last_year = max(chinese_calendar.holidays).year

    assert seeded_calendar().years == frozenset(range(first_year, last_year + 1))
    assert {2024, 2025, 2026} <= seeded_calendar().years


def test_the_seeded_calendar_is_built_once() -> None:
    assert seeded_calendar() is seeded_calendar()


# --- years without data: never a silent guess ----------------------------------------------------

FIRST_SEEDED_YEAR = min(seeded_calendar().years)
LAST_SEEDED_YEAR = max(seeded_calendar().years)
UNSEEDED_YEAR = LAST_SEEDED_YEAR + 1


@pytest.mark.parametrize(
    "ask",
    [
        lambda calendar: calendar.is_working_day(date(UNSEEDED_YEAR, 3, 2)),
        lambda calendar: calendar.is_public_holiday(date(UNSEEDED_YEAR, 10, 1)),
        lambda calendar: calendar.next_working_day(date(UNSEEDED_YEAR, 1, 1)),
        lambda calendar: calendar.working_days_after(
            date(UNSEEDED_YEAR, 3, 1), date(UNSEEDED_YEAR, 3, 31)
        ),
        lambda calendar: calendar.add_working_days(date(UNSEEDED_YEAR, 3, 2), 0),
        lambda calendar: calendar.for_year(UNSEEDED_YEAR),
    ],
    ids=[
        "is_working_day",
        "is_public_holiday",
        "next_working_day",
        "working_days_after",
        "add_working_days",
        "for_year",
    ],
)
def test_every_question_about_a_year_without_data_raises(
    ask: Callable[[WorkingDayCalendar], object],
) -> None:
    with pytest.raises(CalendarYearMissing) as raised:
        ask(seeded_calendar())

    assert raised.value.year == UNSEEDED_YEAR
    assert str(raised.value) == f"no holiday calendar loaded for {UNSEEDED_YEAR}"


def test_a_year_before_the_data_raises_too() -> None:
    with pytest.raises(CalendarYearMissing) as raised:
        seeded_calendar().is_working_day(date(FIRST_SEEDED_YEAR - 1, 6, 1))

    assert raised.value.year == FIRST_SEEDED_YEAR - 1


def test_a_count_running_into_a_year_without_data_raises() -> None:
    calendar = seeded_calendar()
    late_december = date(LAST_SEEDED_YEAR, 12, 20)

    with pytest.raises(CalendarYearMissing) as raised:
        calendar.working_days_after(late_december, date(UNSEEDED_YEAR, 1, 10))
    assert raised.value.year == UNSEEDED_YEAR

    with pytest.raises(CalendarYearMissing) as raised:
        calendar.add_working_days(late_december, 30)
    assert raised.value.year == UNSEEDED_YEAR


def test_a_count_across_a_gap_in_the_data_names_the_missing_year() -> None:
    seeded = seeded_calendar()
    with_a_gap = WorkingDayCalendar([seeded.for_year(2024), seeded.for_year(2026)])

    with pytest.raises(CalendarYearMissing) as raised:
        with_a_gap.working_days_after(d("2024-12-01"), d("2026-01-10"))

    assert raised.value.year == 2025


def test_a_range_with_several_missing_years_names_the_earliest() -> None:
    only_2024 = WorkingDayCalendar([seeded_calendar().for_year(2024)])

    with pytest.raises(CalendarYearMissing) as raised:
        only_2024.working_days_after(d("2024-12-01"), d("2026-01-10"))

    assert raised.value.year == 2025


def test_an_empty_calendar_answers_nothing() -> None:
    with pytest.raises(CalendarYearMissing):
        WorkingDayCalendar([]).is_working_day(d("2026-10-08"))


# --- loading new years as data -------------------------------------------------------------------

# Invented for the test (no 2027 notice is assumed): New Year's Day on Fri 01-01, a break from
# Fri 02-05 to Fri 02-12, and Sat 02-20 made a working day.
INVENTED_2027 = {
    "year": 2027,
    "holidays": ["2027-01-01", *[f"2027-02-{day:02d}" for day in range(5, 13)]],
    "adjusted_working_days": ["2027-02-20"],
}


def test_a_new_year_loaded_from_data_answers_questions_and_the_old_calendar_is_unchanged() -> None:
    seeded = seeded_calendar()

    extended = seeded.with_year(year_calendar_from_mapping(INVENTED_2027))

    assert extended.years == seeded.years | {2027}
    assert extended.is_public_holiday(d("2027-02-08"))  # a Monday in the break
    assert not extended.is_working_day(d("2027-02-08"))
    assert extended.is_working_day(d("2027-02-20"))  # the make-up Saturday
    # After Thu 2026-12-31: 01-01 is off, 01-02/03 the weekend, then Mon 01-04 to Fri 01-08.
    assert extended.working_days_after(d("2026-12-31"), d("2027-01-08")) == 5
    with pytest.raises(CalendarYearMissing):
        seeded.is_working_day(d("2027-02-20"))


def test_with_year_replaces_the_data_for_a_year_already_loaded() -> None:
    seeded = seeded_calendar()
    no_holidays_in_2026 = YearCalendar(2026, frozenset(), frozenset())

    replaced = seeded.with_year(no_holidays_in_2026)

    assert replaced.years == seeded.years
    assert replaced.is_working_day(d("2026-10-01"))  # a Thursday, no longer a holiday
    assert not replaced.is_working_day(d("2026-10-10"))  # a Saturday, no longer made up
    assert not seeded.is_working_day(d("2026-10-01"))


@pytest.mark.parametrize("year", NOTICE_YEARS)
def test_a_seeded_year_survives_a_round_trip_through_json(year: int) -> None:
    original = seeded_calendar().for_year(year)

    reloaded = year_calendar_from_mapping(
        json.loads(json.dumps(year_calendar_to_mapping(original)))
    )

    assert reloaded == original


def test_the_mapping_format_lists_iso_dates_in_order() -> None:
    year_calendar = YearCalendar(2027, frozenset({d("2027-02-05"), d("2027-01-01")}), frozenset())

    assert year_calendar_to_mapping(year_calendar) == {
        "year": 2027,
        "holidays": ["2027-01-01", "2027-02-05"],
        "adjusted_working_days": [],
    }


def test_date_objects_are_accepted_in_the_mapping_as_a_yaml_loader_gives_them() -> None:
    loaded = year_calendar_from_mapping(
        {"year": 2027, "holidays": [date(2027, 1, 1)], "adjusted_working_days": []}
    )

    assert loaded.holidays == frozenset({date(2027, 1, 1)})


def with_changes(**changes: object) -> dict[str, object]:
    return {**INVENTED_2027, **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["2027-01-01"], r"calendar data must be a mapping, got list"),
        ({"holidays": [], "adjusted_working_days": []}, r"missing year"),
        (with_changes(source="国办发明电"), r"unknown key\(s\) source"),
        (with_changes(year="2027"), r"year must be an integer, got '2027'"),
        (with_changes(year=True), r"year must be an integer"),
        (with_changes(holidays="2027-01-01"), r"holidays must be a list of dates, got str"),
        (with_changes(holidays=["2027-02-30"]), r"holidays\[0\]: '2027-02-30' is not a real date"),
        (
            with_changes(holidays=["2027-01-01", "2027/01/02"]),
            r"holidays\[1\]: '2027/01/02' is not a YYYY-MM-DD date",
        ),
        (with_changes(holidays=["20270101"]), r"holidays\[0\]: '20270101' is not a YYYY-MM-DD"),
        (with_changes(holidays=[20270101]), r"holidays\[0\]: 20270101 is not a YYYY-MM-DD date"),
        (
            with_changes(holidays=[datetime(2027, 1, 1)]),
            r"holidays\[0\]: datetime.datetime\(2027, 1, 1, 0, 0\) is not a YYYY-MM-DD date",
        ),
        (
            with_changes(holidays=["2027-01-01", "2027-01-01"]),
            r"holidays\[1\]: 2027-01-01 is listed twice",
        ),
        (with_changes(holidays=["2026-12-31"]), r"holidays: 2026-12-31 is not in 2027"),
        (
            with_changes(adjusted_working_days=["2027-01-04"]),
            r"adjusted_working_days: 2027-01-04 is a Monday, not a Saturday or Sunday",
        ),
        (
            with_changes(holidays=["2027-02-20"], adjusted_working_days=["2027-02-20"]),
            r"2027-02-20 is both a holiday and an adjusted working day",
        ),
    ],
)
def test_bad_calendar_data_is_refused_naming_the_bad_item(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        year_calendar_from_mapping(data)  # type: ignore[arg-type]


def test_two_calendars_for_the_same_year_are_refused() -> None:
    empty_2027 = YearCalendar(2027, frozenset(), frozenset())

    with pytest.raises(ValueError, match="two calendars given for 2027"):
        WorkingDayCalendar([empty_2027, empty_2027])


def test_a_datetime_is_refused_rather_than_silently_missing_every_holiday() -> None:
    with pytest.raises(TypeError, match="expected a date, got datetime"):
        seeded_calendar().is_working_day(datetime(2026, 10, 1, 9, 30))


# --- properties ----------------------------------------------------------------------------------

# Margins at both ends keep every range these properties look at (40 days back, about 30 days
# forward) inside the seeded data.
seeded_days = st.dates(
    min_value=date(FIRST_SEEDED_YEAR, 3, 1), max_value=date(LAST_SEEDED_YEAR, 11, 15)
)
working_day_counts = st.integers(min_value=0, max_value=20)


@given(start=seeded_days, count=working_day_counts)
def test_counting_the_working_days_to_the_nth_working_day_gives_n(start: date, count: int) -> None:
    calendar = seeded_calendar()

    assert calendar.working_days_after(start, calendar.add_working_days(start, count)) == count


@given(start=seeded_days, span=st.integers(min_value=0, max_value=40))
def test_adding_the_working_days_up_to_a_day_lands_on_its_last_working_day(
    start: date, span: int
) -> None:
    calendar = seeded_calendar()
    end = start + timedelta(days=span)

    landed = calendar.add_working_days(start, calendar.working_days_after(start, end))

    assert start <= landed <= end
    assert calendar.working_days_after(landed, end) == 0
    if calendar.is_working_day(end):
        assert landed == end


@given(start=seeded_days, count=st.integers(min_value=1, max_value=20))
def test_the_nth_working_day_is_a_working_day(start: date, count: int) -> None:
    assert seeded_calendar().is_working_day(seeded_calendar().add_working_days(start, count))


@given(day=seeded_days)
def test_next_working_day_is_idempotent_never_earlier_and_skips_only_non_working_days(
    day: date,
) -> None:
    calendar = seeded_calendar()

    found = calendar.next_working_day(day)

    assert found >= day
    assert calendar.is_working_day(found)
    assert calendar.next_working_day(found) == found
    assert calendar.working_days_after(day - ONE_DAY, found - ONE_DAY) == 0


@given(
    first=seeded_days,
    gap_one=st.integers(min_value=0, max_value=30),
    gap_two=st.integers(min_value=0, max_value=15),
)
def test_working_day_counts_over_adjacent_ranges_add_up(
    first: date, gap_one: int, gap_two: int
) -> None:
    calendar = seeded_calendar()
    middle = first + timedelta(days=gap_one)
    last = middle + timedelta(days=gap_two)

    assert calendar.working_days_after(first, middle) + calendar.working_days_after(
        middle, last
    ) == calendar.working_days_after(first, last)


@given(start=seeded_days, span=st.integers(min_value=1, max_value=40))
def test_a_range_ending_before_it_starts_is_refused(start: date, span: int) -> None:
    with pytest.raises(ValueError, match="before start"):
        seeded_calendar().working_days_after(start, start - timedelta(days=span))


def test_known_through_is_the_end_of_the_unbroken_run_of_years_from_the_one_asked() -> None:
    def year(number: int) -> YearCalendar:
        return YearCalendar(number, frozenset(), frozenset())

    calendar = WorkingDayCalendar([year(2025), year(2026), year(2027), year(2029)])
    assert calendar.known_through(2025) == 2027  # 2028 is missing: 2029 does not count
    assert calendar.known_through(2029) == 2029
    assert calendar.known_through(2028) == 2027  # the year asked for itself has no data
