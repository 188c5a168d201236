"""`ranges_split_at`: the scan's ranges of stream ids, one ending at each split point, cover
every stream id once, whatever points (repeated ones too, as `percentile_disc` gives when there
are fewer cases than ranges)."""

from hypothesis import given
from hypothesis import strategies as st

from complaintcore.projections.rebuild import ranges_split_at


def holding(stream_id: str, after: str | None, up_to: str | None) -> bool:
    return (after is None or stream_id > after) and (up_to is None or stream_id <= up_to)


@given(
    stream_ids=st.lists(st.text(min_size=1, max_size=5), min_size=1, unique=True).map(sorted),
    picks=st.lists(st.integers(0, 1_000)),
)
def test_the_ranges_cover_every_stream_id_once(stream_ids: list[str], picks: list[int]) -> None:
    points = sorted(stream_ids[pick % len(stream_ids)] for pick in picks)  # repeats kept

    ranges = ranges_split_at(points)

    assert [r.number for r in ranges] == list(range(len(ranges)))
    assert len(ranges) == len(set(points)) + 1
    assert [r.up_to for r in ranges[:-1]] == [r.after for r in ranges[1:]]
    for stream_id in stream_ids:
        assert sum(holding(stream_id, r.after, r.up_to) for r in ranges) == 1


def test_no_point_is_one_range_of_everything() -> None:
    (everything,) = ranges_split_at([])
    assert (everything.after, everything.up_to, everything.last_stream_id) == (None, None, None)


def test_nulls_are_no_points() -> None:
    assert [(r.after, r.up_to) for r in ranges_split_at([None, "m", None])] == [
        (None, "m"),
        ("m", None),
    ]
