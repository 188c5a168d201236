"""The bench's row for the cost of encryption on the rebuild (bench/run.py), from a same-run
pair of rebuilds: met at 0.9x the plaintext twin's rate (a cost of 10 % or less), and no ratio
when a rebuild failed or the twins' rebuilt projections differ; and the time the pair takes
from the large rebuild's budget."""

import pytest
from bench.rebuild_rows import RebuildRun
from bench.run import FULL, RebuildFailed, encryption_cost_row, encryption_pair_seconds


def _runs(seconds: list[float], events: int = 200_000) -> list[RebuildRun]:
    return [RebuildRun(events, s, 300.0) for s in seconds]


def test_the_ratio_is_the_median_of_each_rounds_sealed_over_plaintext_rate():
    pair = {
        "plaintext": _runs([4.0, 4.0, 5.0]),
        "sealed": _runs([5.0, 4.4, 5.0]),  # per round 0.80, 0.91, 1.00
        "disagree": None,
    }
    row = encryption_cost_row(pair)
    assert row.ratio == pytest.approx(4.0 / 4.4)
    assert row.met is True
    assert row.ratio_rounds == pytest.approx([0.8, 4.0 / 4.4, 1.0])
    assert "200,000 events each" in row.note


def test_a_cost_above_a_tenth_is_not_met():
    pair = {"plaintext": _runs([4.0] * 3), "sealed": _runs([4.8] * 3), "disagree": None}
    row = encryption_cost_row(pair)
    assert row.ratio == pytest.approx(4.0 / 4.8)
    assert row.met is False


def test_twins_that_rebuild_to_different_projections_are_not_compared():
    pair = {"plaintext": _runs([4.0] * 3), "sealed": _runs([4.0] * 3), "disagree": "case_view"}
    row = encryption_cost_row(pair)
    assert row.value is None and row.met is None
    assert "case_view differ" in row.note


def test_a_failed_rebuild_is_named_and_nothing_is_compared():
    failed = RebuildFailed("the master key is missing")
    pair = {"plaintext": _runs([4.0] * 3), "sealed": [failed], "disagree": None}
    row = encryption_cost_row(pair)
    assert row.value is None and row.met is None
    assert row.note == "rebuild failed: the master key is missing"


def test_no_pair_is_not_measured():
    row = encryption_cost_row(None)
    assert row.value is None and row.note == "not measured: no rebuild"


def test_the_pairs_time_is_its_copies_then_its_rounds_of_two_rebuilds():
    small = RebuildRun(100_000, 2.0, 300.0)  # 50,000 events/s
    # 4 copies of 45,000 events into each twin at 30,000 events/s: 2 x 6 s; then 5 rounds of
    # two rebuilds of 180,000 events at 50,000 events/s: 10 x 3.6 s
    seconds = encryption_pair_seconds(FULL, 45_000, 30_000.0, small)
    assert seconds == pytest.approx(12 + 36)
