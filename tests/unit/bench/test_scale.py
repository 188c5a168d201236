"""The pure parts of the scale run (bench/scale.py): how it cuts growth into steps, and when the
disk or the time budget stops growth."""

from itertools import pairwise

import pytest
from bench.scale import (
    DISK_RESERVE_BYTES,
    QUERIES_S,
    REBUILD_MARGIN,
    REBUILD_TIMEOUT_S,
    RebuildFigure,
    copy_steps,
    disk_allows,
    finishing_seconds,
    rebuild_failures,
    stopped_note,
    time_allows,
)

GIB = 2**30


def test_copy_steps_reach_five_million_cases_in_ten_even_steps():
    steps = copy_steps(5_000_000, 10_000, 10)

    assert len(steps) == 10
    assert steps[0] == (1, 49)
    assert steps[-1] == (450, 499)
    # the seed plus 499 copies: 500 x 10,000 cases
    assert (1 + steps[-1][1]) * 10_000 == 5_000_000
    assert {last - first + 1 for first, last in steps[1:]} == {50}


def test_copy_steps_follow_on_without_gap_or_overlap():
    steps = copy_steps(20_000, 2_000, 4)

    assert steps == [(1, 2), (3, 4), (5, 6), (7, 9)]
    for (_, last), (first, _) in pairwise(steps):
        assert first == last + 1


def test_copy_steps_round_a_partial_copy_up():
    assert copy_steps(25_001, 10_000, 1) == [(1, 2)]


def test_copy_steps_leave_out_empty_steps_when_there_are_fewer_copies_than_steps():
    assert copy_steps(30_000, 10_000, 10) == [(1, 1), (2, 2)]


def test_copy_steps_make_no_step_when_the_seed_is_enough():
    assert copy_steps(5_000, 10_000, 10) == []


def test_disk_allows_a_step_that_leaves_the_reserve_free():
    # 20 GiB free, 10 million events at 1,000 bytes: about 9.3 GiB, leaving 10.7 GiB
    assert disk_allows(20 * GIB, 1_000, 10_000_000)


def test_disk_refuses_a_step_that_would_eat_into_the_reserve():
    # 20 GiB free, 11 million events at 1,000 bytes: about 10.2 GiB, leaving 9.8 GiB
    assert not disk_allows(20 * GIB, 1_000, 11_000_000)


def test_disk_refuses_any_step_once_below_the_reserve():
    assert not disk_allows(DISK_RESERVE_BYTES - 1, 1_000, 1)
    assert disk_allows(DISK_RESERVE_BYTES, 1_000, 0)


def test_finishing_time_is_the_rebuild_with_its_margin_and_the_queries():
    assert finishing_seconds(10_000_000, 50_000) == pytest.approx(200 * REBUILD_MARGIN + QUERIES_S)


def test_time_allows_a_step_whose_rebuild_and_queries_fit_the_budget():
    # 100,000 events/s: a rebuild of 10 million events is 100 s (x margin), then the queries
    finish = 100 * REBUILD_MARGIN + QUERIES_S
    assert time_allows(1_000, 1_000 + 300 + finish, 300, 10_000_000, 100_000)


def test_time_refuses_a_step_whose_finishing_work_would_overrun_the_budget():
    finish = 100 * REBUILD_MARGIN + QUERIES_S
    assert not time_allows(1_000, 1_000 + 300 + finish - 1, 300, 10_000_000, 100_000)


def test_time_refuses_a_step_whose_final_rebuild_would_outlast_the_rebuild_timeout():
    # a budget of days, but the rebuild alone would pass the child's timeout
    too_many = int(REBUILD_TIMEOUT_S / REBUILD_MARGIN * 10_000) + 10_000
    assert not time_allows(0, 10**6, 60, too_many, 10_000)
    assert time_allows(0, 10**6, 60, too_many - 20_000, 10_000)


def test_the_report_says_when_growth_stopped_early_and_why():
    assert stopped_note(None) == "Growth reached the target."
    assert stopped_note("disk: too full") == "Growth stopped early: disk: too full"


def test_the_report_names_each_failed_rebuild_and_only_those():
    rebuilt = RebuildFigure(2_000_000, 500_000, 60.0, 33_333, 560)
    failed = RebuildFigure(20_000_000, 5_000_000, None, None, None, "no such table")

    assert rebuild_failures(rebuilt, rebuilt) == []
    assert rebuild_failures(None, rebuilt) == []
    (line,) = rebuild_failures(rebuilt, failed)
    assert line.startswith("The final rebuild of 20,000,000 events failed (no such table)")
