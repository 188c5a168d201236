"""Reading a cgroup's CPU quota for the bench header (bench/slow_machine.py)."""

from pathlib import Path

import pytest
from bench import slow_machine


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
