"""The compiled event codecs agree with the reflective decoder they stand in for.

The compiled decoder takes only exactly-typed JSON values and hands everything else to the
reflective decoder (which names the offending field). The property that makes that safe: on any
payload, the compiled decoder either declines or returns what the reflective decoder returns.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import events
from complaintcore.domain.events import EVENT_TYPES, DomainEvent, EventPayloadError
from complaintcore.domain.frozen import built, changed
from complaintcore.domain.state import Clock

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
ISO_DATES = st.dates().map(lambda day: day.isoformat())


def _reflective(event_type: str, payload: Any) -> Any:
    return events._decode_dataclass(EVENT_TYPES[event_type], payload, event_type)


def _compiled(event_type: str, payload: Any) -> Any:
    try:
        return events._DECODERS[event_type](payload)
    except events._NotTheFastPath:
        return None


def _mutated(payload: Any, path_choice: int, value: Any) -> Any:
    """`payload` with one field somewhere inside it replaced by `value`."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index))

    walk(payload, ())
    path = paths[path_choice % len(paths)]
    if not path:
        return value
    copy = json.loads(json.dumps(payload))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


@pytest.mark.parametrize("event_class", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_compiled_decoder_declines_or_agrees_with_the_reflective_one(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    payload = json.loads(json.dumps(events.event_to_payload(data.draw(st.from_type(event_class)))))
    bad = _mutated(payload, data.draw(st.integers(min_value=0)), data.draw(JSON_VALUES | ISO_DATES))

    compiled = _compiled(event_class.event_type, bad)

    if compiled is not None:
        assert compiled == _reflective(event_class.event_type, bad)
        assert events.event_from_payload(event_class.event_type, bad) == compiled


@pytest.mark.parametrize("event_class", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_a_well_formed_payload_takes_the_compiled_path(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event = data.draw(st.from_type(event_class))
    payload = json.loads(json.dumps(events.event_to_payload(event)))

    assert _compiled(event_class.event_type, payload) == event


def test_a_decoded_event_is_as_immutable_as_a_constructed_one() -> None:
    payload = {"into": "C-1", "merged_on": "2026-03-01"}

    merged = events.event_from_payload("ComplaintMerged", payload)

    assert merged == events.ComplaintMerged(into="C-1", merged_on=events.date(2026, 3, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        merged.into = "C-2"  # type: ignore[misc]


def test_a_refused_payload_still_names_the_field_at_fault() -> None:
    with pytest.raises(EventPayloadError, match=r"ComplaintMerged\.merged_on"):
        events.event_from_payload("ComplaintMerged", {"into": "C-1", "merged_on": 20260301})


@given(
    anchor=st.dates(),
    due=st.dates(),
    level=st.integers(0, 2),
    paused=st.integers(0, 60),
)
def test_changed_is_dataclasses_replace(anchor: Any, due: Any, level: int, paused: int) -> None:
    clock = Clock(anchor_on=anchor, due_on=due)

    assert changed(clock, level=level, paused_days=paused) == dataclasses.replace(
        clock, level=level, paused_days=paused
    )
    assert clock == Clock(anchor_on=anchor, due_on=due)  # the original is untouched


def test_changed_refuses_a_field_the_record_does_not_have() -> None:
    clock = Clock(anchor_on=events.date(2026, 3, 2), due_on=events.date(2026, 3, 23))

    with pytest.raises(TypeError, match="lvl"):
        changed(clock, lvl=1)


def test_built_equals_the_constructor_defaults_included() -> None:
    fields = {"anchor_on": events.date(2026, 3, 2), "due_on": events.date(2026, 3, 23)}

    clock = built(Clock, **fields)

    assert clock == Clock(**fields) and clock.level == 0 and clock.stopped_on is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        clock.level = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"anchor_on": events.date(2026, 3, 2)}, r"missing fields \['due_on'\]"),
        (
            {"anchor_on": events.date(2026, 3, 2), "due_on": events.date(2026, 3, 3), "lvl": 1},
            r"unknown fields \['lvl'\]",
        ),
    ],
)
def test_built_refuses_a_missing_or_unknown_field(fields: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        built(Clock, **fields)
