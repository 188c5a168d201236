"""The emulated slow machine (bench/slow_machine.py): the neighbours' nice it chooses, and a
cgroup's CPU quota read for the bench header."""

from pathlib import Path

import pytest
from bench import slow_machine
from hypothesis import given
from hypothesis import strategies as st


def test_a_version_1_quota_is_its_quota_over_its_period():
    assert slow_machine.quota_of_v1("1000\n", "4545\n") == pytest.approx(0.22, abs=1e-3)
    assert slow_machine.quota_of_v1("-1\n", "100000\n") is None


def test_a_version_2_quota_is_read_from_cpu_max():
    assert slow_machine.quota_of_v2("50000 100000\n") == 0.5
    assert slow_machine.quota_of_v2("max 100000\n") is None


def test_the_quota_of_the_group_a_process_is_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    group = tmp_path / "cpu" / "complaintcore-bench-1"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("1000\n")
    (group / "cpu.cfs_period_us").write_text("2000\n")
    membership = tmp_path / "cgroup"
    membership.write_text("4:memory:/x\n1:cpu:/complaintcore-bench-1\n0::/\n")
    monkeypatch.setattr(slow_machine, "CGROUP_ROOT", tmp_path)
    assert slow_machine.cpu_quota_cores(membership) == 0.5


def test_no_quota_where_the_group_is_not_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    membership = tmp_path / "cgroup"
    membership.write_text("0::/\n")
    monkeypatch.setattr(slow_machine, "CGROUP_ROOT", tmp_path)
    assert slow_machine.cpu_quota_cores(membership) is None


@pytest.mark.parametrize(
    ("alone_s", "nice"),
    [(0.45, -9), (0.69, -7), (0.9, -5), (2.0, -1), (3.6, -1), (0.05, -20)],
)
def test_the_neighbours_nice_is_the_mildest_that_slows_the_loop_enough(
    alone_s: float, nice: int
) -> None:
    assert slow_machine.nice_for(alone_s, 3.6) == nice


@given(alone_s=st.floats(0.2, 3.0))
def test_the_chosen_nice_slows_the_loop_to_the_target_and_one_milder_would_not(
    alone_s: float,
) -> None:
    nice = slow_machine.nice_for(alone_s, 3.6)
    assert slow_machine.slowed_loop_s(alone_s, nice) >= 3.6
    if nice < -1:
        assert slow_machine.slowed_loop_s(alone_s, nice + 1) < 3.6


def test_a_neighbour_at_nice_minus_6_leaves_a_loop_a_fifth_of_its_core():
    # 1,024 against 3,906: the loop gets 1,024 / 4,930 of the core
    assert slow_machine.slowed_loop_s(0.69, -6) == pytest.approx(0.69 * 4930 / 1024)


def test_neighbours_that_slow_the_loop_to_a_slow_machines_are_kept():
    assert slow_machine.harsher_nice(-4, 3.0, 3.6) is None
    assert slow_machine.harsher_nice(-7, 4.16, 3.6) is None
    assert slow_machine.harsher_nice(-20, 1.0, 3.6) is None  # none harsher
    assert slow_machine.harsher_nice(-1, 1.41, 1.0) is None  # a milder machine asked for


def test_a_loop_not_slow_enough_beside_them_takes_a_harsher_nice_by_its_measured_speed():
    # run 4 of 2026-12-06: 1.18 s alone chose -4, and the loop then took 2.59 s beside them,
    # as a loop of 2.59 * 1,024 / 3,525 = 0.75 s alone would: -6 slows that to 3.62 s
    assert slow_machine.harsher_nice(-4, 2.59, 3.6) == -6
    # a loop barely short of 3 s still takes a step
    assert slow_machine.harsher_nice(-7, 2.99, 3.0) == -8


@given(nice=st.integers(-19, -1), slowed_s=st.floats(0.2, 2.99))
def test_a_harsher_nice_is_harsher_and_slows_the_implied_loop_to_the_target(
    nice: int, slowed_s: float
) -> None:
    harsher = slow_machine.harsher_nice(nice, slowed_s, 3.6)
    assert harsher is not None and harsher < nice
    alone_s = slowed_s * 1024 / (1024 + slow_machine.NICE_WEIGHTS[nice])
    assert harsher == -20 or slow_machine.slowed_loop_s(alone_s, harsher) >= 3.6
