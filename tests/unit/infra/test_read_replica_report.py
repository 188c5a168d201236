"""What `/health/replicas` shows of a standby agrees with the state it is given."""

from __future__ import annotations

import time
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from complaintcore.infra.read_replicas import Replica

lags = st.floats(min_value=0, max_value=10_000, allow_nan=False)
settings = st.floats(min_value=0, max_value=10_000, allow_nan=False)


def _standby(lag_s: float) -> Replica:
    pool = cast(Any, object())  # only its presence is read
    return Replica(
        name="standby",
        url="postgresql://h/db",
        pool=pool,
        up=True,
        in_recovery=True,
        lag_s=lag_s,
        checked_at=time.monotonic(),
    )


@given(lag=lags, max_lag=settings)
def test_a_lagging_standby_never_shows_a_lag_within_the_setting(lag: float, max_lag: float) -> None:
    report = _standby(lag).report(max_lag)
    shown = cast(float, report["lag_s"])
    assert report["state"] == ("lagging" if shown > max_lag else "ok")
    assert shown == lag


def test_a_lag_just_past_the_setting_is_shown_past_it() -> None:
    report = _standby(1.0004).report(1.0)
    assert report == {
        "name": "standby",
        "state": "lagging",
        "lag_s": 1.0004,
        "lag_bytes": None,
        "error": None,
    }
