"""What the store refuses to hash and keep (`check_storable`), with the path of the culprit."""

from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.events.hashing import _refuse_unstorable, _storable, check_storable
from complaintcore.events.model import EventMetadata, InvalidEventData


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"a": [1, {"b": 1.5}]}, "data.a[1].b: floating-point"),
        ({"a": "x\x00y"}, "data.a: the NUL character"),
        ({"a": {1: "x"}}, "data.a: keys must be strings"),
        ({"a": 2**63}, "data.a: integer out of range"),
        ({"a": [-(2**63) - 1]}, "data.a[0]: integer out of range"),
        ({"a": {"b": {1, 2}}}, "data.a.b: set is not JSON"),
    ],
)
def test_an_unstorable_value_is_named_by_its_path(payload: dict, message: str) -> None:
    with pytest.raises(InvalidEventData, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_storable(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"a": None, "b": True, "c": -(2**63), "d": 2**63 - 1, "e": "中文", "f": [1, ("x",)]},
        {"colour": Colour.RED, Colour.RED: [Colour.RED]},  # str subclasses are strings
    ],
)
def test_json_values_are_storable(payload: dict) -> None:
    check_storable(payload)


def test_metadata_keeps_only_the_fields_given() -> None:
    metadata = EventMetadata(actor_id="staff-1", actor_role="staff", client="cli")
    assert metadata.to_dict() == {"actor_id": "staff-1", "actor_role": "staff", "client": "cli"}
    assert EventMetadata.from_dict(metadata.to_dict()) == metadata


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.sampled_from("ab\x00中"), max_size=3)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=2) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(payload=_VALUES)
def test_the_fast_check_refuses_exactly_what_the_slow_one_names(payload: object) -> None:
    """`check_storable` judges by a fast walk and names the culprit by a slow one: they agree."""
    try:
        _refuse_unstorable(payload, "data")
    except InvalidEventData:
        assert not _storable(payload)
    else:
        assert _storable(payload)
