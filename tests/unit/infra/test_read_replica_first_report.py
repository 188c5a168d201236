"""Before a process's first check of a standby has answered (up to 5 s, a new pool's connect up to
10), `/readyz` named it `down` with no error: nothing had found it down. It is `unchecked`, as a
verdict not renewed is (README "Read replicas"; found by a review pass)."""

from complaintcore.infra.read_replicas import ReplicaSet


def test_a_standby_not_checked_yet_is_unchecked_not_down() -> None:
    reads = ReplicaSet(None, ["postgresql://u@standby1:5432/db"], max_lag_s=5, check_s=1)  # type: ignore[arg-type]
    [report] = reads.report()
    assert report["state"] == "unchecked" and report["error"] is None
