"""The pure parts of the bench's interleaved rounds (bench/rounds.py) and of how a run cuts its
work into rounds (bench/run.py), and the header's slow-machine verdict (bench/probes.py)."""

import math
from itertools import pairwise

import pytest
from bench.probes import SLOW_LOOP_S, header_lines, is_slow
from bench.report import ratio_row, table
from bench.rounds import (
    RoundRatio,
    describe_spread,
    median,
    per_round_ratios,
    run_rounds,
    schedule,
)
from bench.run import read_window, shares, sum_statuses


def test_schedule_alternates_baseline_and_figure_round_by_round():
    assert schedule(3, ["raw_append", "store_append"]) == [
        (0, "raw_append"),
        (0, "store_append"),
        (1, "raw_append"),
        (1, "store_append"),
        (2, "raw_append"),
        (2, "store_append"),
    ]


def test_schedule_keeps_every_step_of_a_round_together_in_the_given_order():
    steps = ["raw_append", "store_append", "peer"]
    order = schedule(2, steps)
    assert [step for _, step in order] == steps * 2
    assert [number for number, _ in order] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(("rounds", "steps"), [(0, ["a", "b"]), (3, []), (3, ["a", "a"])], ids=str)
def test_schedule_refuses_no_round_no_step_or_a_step_twice(rounds, steps):
    with pytest.raises(ValueError):
        schedule(rounds, steps)


def test_run_rounds_calls_the_steps_interleaved_and_groups_their_results():
    calls = []

    def step(name):
        def measure(number):
            calls.append((number, name))
            return f"{name}-{number}"

        return measure

    results = run_rounds(3, {"baseline": step("baseline"), "figure": step("figure")})

    assert calls == schedule(3, ["baseline", "figure"])
    assert results == {
        "baseline": ["baseline-0", "baseline-1", "baseline-2"],
        "figure": ["figure-0", "figure-1", "figure-2"],
    }


def test_median_of_odd_and_even_counts_and_without_nan():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([1.0, float("nan"), 5.0, 3.0]) == 3.0
    assert math.isnan(median([]))
    assert math.isnan(median([float("nan")]))


def test_per_round_ratios_pair_each_figure_with_its_own_round_baseline():
    assert per_round_ratios([50.0, 90.0, 40.0], [100.0, 100.0, 50.0]) == [0.5, 0.9, 0.8]
    ratios = per_round_ratios([10.0, 10.0], [0.0, 20.0])
    assert math.isnan(ratios[0])
    assert ratios[1] == 0.5
    with pytest.raises(ValueError):
        per_round_ratios([1.0, 2.0], [1.0])


def test_round_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    # baselines swing 2x from round to round, each figure follows its own round's baseline
    measured = RoundRatio.of([4_000.0, 2_400.0, 5_000.0], [4_000.0, 2_000.0, 5_000.0])
    assert measured.ratios == [1.0, 1.2, 1.0]
    assert measured.ratio == 1.0
    assert measured.figure == 4_000.0
    assert measured.baseline == 4_000.0
    assert measured.low == 1.0
    assert measured.high == 1.2
    assert measured.spread_pct == pytest.approx(10.0)


def test_spread_is_half_the_range_in_percent_of_the_median():
    measured = RoundRatio.of([0.9, 1.0, 1.1], [1.0, 1.0, 1.0])
    assert measured.spread_pct == pytest.approx(10.0)
    assert describe_spread(measured) == "±10 % over 3 rounds (0.90-1.10x)"
    steady = RoundRatio.of([2.0, 2.0], [4.0, 4.0])
    assert steady.spread_pct == 0.0
    assert describe_spread(steady) == "±0 % over 2 rounds (0.50-0.50x)"


def test_a_round_without_baseline_is_left_out_of_median_and_spread():
    measured = RoundRatio.of([1.0, 2.0, 3.0], [0.0, 4.0, 4.0])
    assert measured.ratio == pytest.approx(0.625)
    assert (measured.low, measured.high) == (0.5, 0.75)
    nothing = RoundRatio.of([1.0], [0.0])
    assert math.isnan(nothing.ratio)
    assert math.isnan(nothing.spread_pct)
    assert describe_spread(nothing) == "no spread: 1 rounds"


def test_ratio_row_reports_median_spread_and_rounds_and_judges_the_median():
    row = ratio_row(
        "store append",
        RoundRatio.of([90.0, 120.0, 80.0], [100.0, 100.0, 100.0]),
        "events/s",
        "raw append",
        1.0,
    )
    assert row.ratio == 0.9
    assert row.met is False
    assert row.value == 90.0
    assert row.baseline == 100.0
    assert row.ratio_rounds == [0.9, 1.2, 0.8]
    assert (row.ratio_low, row.ratio_high) == (0.8, 1.2)
    assert row.ratio_spread_pct == pytest.approx(20 / 0.9)
    assert row.note == "±22 % over 3 rounds (0.80-1.20x)"
    printed = table([row])
    assert "0.90x ±22%" in printed
    assert "- store append: 0.90, 1.20, 0.80 (median 0.90x ±22%)" in printed


def test_shares_cut_consecutively_and_cover_everything():
    assert shares(10, 3) == [(0, 3), (3, 3), (6, 4)]
    assert shares(1_000_000, 3) == [(0, 333_333), (333_333, 333_333), (666_666, 333_334)]
    for total, rounds in [(7, 2), (2_000, 3), (5, 5)]:
        cut = shares(total, rounds)
        assert sum(count for _, count in cut) == total
        assert all(first + count == nxt for (first, count), (nxt, _) in pairwise(cut))


def test_read_windows_are_a_share_each_spread_over_the_table_or_all_of_a_small_one():
    assert [read_window(r, 3, 1_000_000, 100_000) for r in range(3)] == [
        (0, 333_333),
        (333_333, 333_333),
        (666_667, 333_333),
    ]
    # too few rows for a share of at least 100,000 a round: every round reads them all
    assert [read_window(r, 3, 100_000, 100_000) for r in range(3)] == [(0, 100_000)] * 3
    # windows of at least 100,000 rows overlap a little, the last ends at the last row
    windows = [read_window(r, 3, 250_000, 100_000) for r in range(3)]
    assert windows == [(0, 100_000), (75_000, 100_000), (150_000, 100_000)]
    assert read_window(0, 1, 500, 100) == (0, 500)


def test_statuses_of_the_rounds_add_up():
    assert sum_statuses([{"200": 5, "409": 1}, {"200": 7}, {}]) == {"200": 12, "409": 1}


def test_slow_machine_by_the_loop_time():
    assert SLOW_LOOP_S == 3.0
    assert is_slow(3.6)
    assert is_slow(3.0)
    assert not is_slow(2.0)


def test_header_names_loop_fsync_and_the_verdict():
    machine = {
        "cores": 2,
        "cpu": "AMD EPYC",
        "memory_gib": 23.5,
        "load_average_at_start": [0.7, 0.5, 0.4],
        "python": "3.11.7",
        "postgresql": {"server_version": "18.6", "fsync": "on", "synchronous_commit": "on"},
        "python_loop_s": 3.61,
        "fsync_us": 1234.5,
        "fsync_folder": "/work/main",
    }
    lines = header_lines(machine)
    assert lines[0].startswith("machine: 2 cores, AMD EPYC, 23.5 GiB")
    assert "3.61 s: a slow machine (slow from 3 s" in lines[1]
    assert lines[2].startswith("fsync probe: 1,234 µs median per 8 KiB write + fsync")
    assert "not a slow machine" in header_lines(machine | {"python_loop_s": 2.0})[1]
    assert table([], machine).splitlines()[:3] == lines
