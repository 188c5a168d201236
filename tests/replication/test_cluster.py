"""The replication cluster the failover and read-replica tests build (`cluster.py`) does what
it says: a synchronous streaming standby, replay that pauses (the standby lags) and resumes, a
standby that stops and comes back."""

from pathlib import Path

import pytest

from replication.cluster import STANDBY_NAME, ClusterError, primary_and_standby

pytestmark = pytest.mark.replication


def test_a_synchronous_standby_that_lags_when_paused_and_comes_back(tmp_path: Path) -> None:
    with primary_and_standby(tmp_path, synchronous=True) as cluster:
        replication = cluster.sql(
            cluster.primary,
            "SELECT application_name, state, sync_state FROM pg_stat_replication",
        )
        assert replication == f"{STANDBY_NAME}|streaming|sync"
        assert cluster.sql(cluster.standby, "SELECT pg_is_in_recovery()") == "t"
        cluster.sql(cluster.primary, "CREATE TABLE t (x int)")
        cluster.wait_replayed(cluster.primary_lsn())

        cluster.pause_replay()
        # a synchronous commit needs the standby's flush, not its replay: it goes through
        cluster.sql(cluster.primary, "INSERT INTO t VALUES (1)", timeout_s=10)
        written = cluster.primary_lsn()
        assert cluster.sql(cluster.standby, "SELECT count(*) FROM t") == "0"
        with pytest.raises(ClusterError, match="timed out"):
            cluster.wait_replayed(written, timeout_s=1)
        cluster.resume_replay()
        cluster.wait_replayed(written)
        assert cluster.sql(cluster.standby, "SELECT count(*) FROM t") == "1"

        cluster.stop_standby()
        with pytest.raises(ClusterError):
            cluster.sql(cluster.standby, "SELECT 1")
        cluster.start_standby()
        cluster.wait_streaming()
        assert cluster.sql(cluster.standby, "SELECT count(*) FROM t") == "1"

    assert (tmp_path / "primary.log").exists() and (tmp_path / "standby.log").exists()
