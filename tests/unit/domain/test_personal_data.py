"""The catalogue of personal data (DOMAIN.md "Personal data"): every field of every event is
classified, and the functions the store encrypts, decrypts and erases with keep everything else."""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, ClassVar

import pytest
from builders import HANDLER, RESPONDENT_STAFF_ID, d, decided_case, received_with_everything
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import (
    EVENT_TYPES,
    ComplaintDecided,
    DomainEvent,
    EventPayloadError,
    RespondentStaff,
    UnknownEventType,
    event_from_payload,
    event_to_payload,
)
from complaintcore.domain.personal_data import (
    DESCRIBES_VERSION,
    EACH,
    NOT_PERSONAL,
    PERSONAL,
    Path,
    erased,
    filled_slots,
    map_personal,
    map_some_personal,
    map_some_personal_in_place,
    merge_personal,
    path_pattern,
    personal_paths,
    personal_values,
    pointer,
    split_personal,
)

EVENT_CLASSES = pytest.mark.parametrize("event_class", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
HYPOTHESIS = settings(max_examples=30, deadline=None)
PLACEHOLDER = "<personal>"


# --- helpers written apart from the module under test ------------------------------------------


def leaves(cls: type) -> Iterator[Path]:
    """Every leaf field of a dataclass, in field order: nested dataclasses walked, optionals
    unwrapped, a tuple's items under `EACH`."""
    return (path for path, _ in typed_leaves(cls))


def typed_leaves(cls: type, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        yield from _leaves_of(hints[field.name], (*prefix, field.name))


def _leaves_of(hint: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) is tuple:
        yield from _leaves_of(typing.get_args(hint)[0], (*path, EACH))
    elif dataclasses.is_dataclass(hint):
        yield from typed_leaves(typing.cast(type, hint), path)
    else:
        yield path, hint


def unclassified(event_type: str, cls: type) -> set[Path]:
    return set(leaves(cls)) - set(PERSONAL[event_type]) - set(NOT_PERSONAL[event_type])


def found(payload: Any, path: Path, keys: tuple[Any, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(pointer, value) of each non-None value at `path` in `payload`."""
    if payload is None:
        return
    if not path:
        yield "".join(f"/{key}" for key in keys), payload
        return
    head, *rest = path
    if head == EACH:
        for index, item in enumerate(payload):
            yield from found(item, tuple(rest), (*keys, index))
    elif head in payload:
        yield from found(payload[head], tuple(rest), (*keys, head))


def personal_found(event_type: str, payload: Any) -> dict[str, Any]:
    return {where: value for path in PERSONAL[event_type] for where, value in found(payload, path)}


def set_at(payload: Any, where: str, value: Any) -> None:
    *parents, last = where[1:].split("/")
    node = payload
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def containers(node: Any) -> Iterator[int]:
    if isinstance(node, dict | list):
        yield id(node)
        for child in node.values() if isinstance(node, dict) else node:
            yield from containers(child)


def tagged(value: Any, counter: list[int]) -> Any:
    """`value` with every string (enum codes aside) made unique: "⟦7⟧" put before it."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        counter[0] += 1
        return f"⟦{counter[0]}⟧{value}"
    if isinstance(value, tuple):
        return tuple(tagged(item, counter) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: tagged(getattr(value, f.name), counter) for f in dataclasses.fields(value)
        }
        return type(value)(**fields)
    return value


def drawn_payload(event_class: type[DomainEvent], data: st.DataObject) -> dict[str, Any]:
    return event_to_payload(data.draw(st.from_type(event_class)))


# --- the catalogue is complete -----------------------------------------------------------------


@EVENT_CLASSES
def test_every_field_of_every_event_is_classified_exactly_once(
    event_class: type[DomainEvent],
) -> None:
    event_type = event_class.event_type
    fields = list(leaves(event_class))
    classified = PERSONAL[event_type] + NOT_PERSONAL[event_type]

    assert unclassified(event_type, event_class) == set()
    assert sorted(classified) == sorted(fields), "a path classified twice or naming no field"
    assert list(PERSONAL[event_type]) == [path for path in fields if path in PERSONAL[event_type]]


def test_the_tables_name_exactly_the_event_types_at_their_schema_versions() -> None:
    assert set(PERSONAL) == set(NOT_PERSONAL) == set(EVENT_TYPES)
    versions = {name: cls.schema_version for name, cls in EVENT_TYPES.items()}
    assert dict(DESCRIBES_VERSION) == versions


# DOMAIN.md's free texts, as the events name them (a category's `reason` is a code).
FREE_TEXTS = {
    ("claims",),
    ("facts",),
    ("summary",),
    ("grounds",),
    ("findings",),
    ("basis",),
    ("reason",),
    ("detail",),
    ("notice", "agreed_terms"),
    ("note",),
    ("actions", EACH, "description"),
}
# The erasure's reason is the administrator's statement of the legal ground, not the complainant's.
ADMINISTRATORS_WORDS = {("PersonalDataErased", ("reason",))}


@EVENT_CLASSES
def test_free_texts_are_personal_and_dates_numbers_flags_and_codes_are_not(
    event_class: type[DomainEvent],
) -> None:
    personal = PERSONAL[event_class.event_type]
    for path, hint in typed_leaves(event_class):
        if path in FREE_TEXTS and (event_class.event_type, path) not in ADMINISTRATORS_WORDS:
            assert path in personal, path
        if hint in (date, int, bool) or (isinstance(hint, type) and issubclass(hint, Enum)):
            # the identity document's type is the one code that describes a person
            assert path in personal if path[-1] == "id_type" else path not in personal, path
        if path[-1].endswith("_id") or path[-1] in ("case_id", "into", "registration_no"):
            assert path not in personal, path


def test_an_attribution_seals_the_third_partys_name_and_keeps_its_codes_readable() -> None:
    """The third party may be named after a person; the statistics count cases involving one
    by the root cause code, which stays readable (DOMAIN.md "Responsibility", "Statistics")."""
    personal = PERSONAL["CaseAttributed"]

    assert ("third_party",) in personal
    assert ("root_cause",) in NOT_PERSONAL["CaseAttributed"]
    assert ("responsible_staff", EACH) in NOT_PERSONAL["CaseAttributed"]  # staff ids
    assert ("evidence_ref",) in NOT_PERSONAL["RectificationActionClosed"]  # like proof_ref


def test_the_erasure_event_holds_no_personal_data() -> None:
    assert PERSONAL["PersonalDataErased"] == ()
    assert set(NOT_PERSONAL["PersonalDataErased"]) == set(leaves(EVENT_TYPES["PersonalDataErased"]))


def test_every_free_text_named_is_a_field_of_some_event() -> None:
    every_leaf = {path for cls in EVENT_TYPES.values() for path in leaves(cls)}
    assert FREE_TEXTS - every_leaf == set()


def test_a_field_added_to_an_event_without_classifying_it_is_caught() -> None:
    @dataclass(frozen=True)
    class MarkedMajorWithNote(EVENT_TYPES["MarkedMajor"]):  # type: ignore[misc]
        event_type: ClassVar[str] = "MarkedMajor"
        note: str = ""
        staff: tuple[RespondentStaff, ...] = ()

    assert unclassified("MarkedMajor", MarkedMajorWithNote) == {
        ("note",),
        ("staff", EACH, "staff_id"),
        ("staff", EACH, "name"),
    }


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        personal_paths("ComplaintTeleported")
    with pytest.raises(UnknownEventType):
        erased("ComplaintTeleported", {})


# --- properties over every event type ----------------------------------------------------------


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_mapping_the_identity_gives_an_equal_payload_and_leaves_the_input_alone(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    payload = drawn_payload(event_class, data)
    before = copy.deepcopy(payload)
    seen: list[str] = []

    mapped = map_personal(
        event_class.event_type, payload, lambda where, value: seen.append(where) or value
    )

    assert mapped == payload == before
    assert set(containers(mapped)).isdisjoint(containers(payload))
    assert seen == list(personal_found(event_class.event_type, payload))


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_an_erased_payload_has_none_at_exactly_the_personal_values(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event_type = event_class.event_type
    payload = drawn_payload(event_class, data)
    before = copy.deepcopy(payload)
    expected = copy.deepcopy(payload)
    for where in personal_found(event_type, payload):
        set_at(expected, where, None)

    gone = erased(event_type, payload)

    assert gone == expected
    assert personal_found(event_type, gone) == {}
    assert erased(event_type, gone) == gone
    assert payload == before
    for path in NOT_PERSONAL[event_type]:
        assert dict(found(gone, path)) == dict(found(payload, path))


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_split_then_merged_gives_the_payload_back(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event_type = event_class.event_type
    payload = drawn_payload(event_class, data)
    before = copy.deepcopy(payload)

    public, values = split_personal(event_type, payload, lambda where, value: PLACEHOLDER)

    assert values == personal_found(event_type, payload)
    assert all(value == PLACEHOLDER for value in personal_found(event_type, public).values())
    assert merge_personal(event_type, public, values) == payload == before
    assert map_personal(event_type, public, lambda where, value: values[where]) == payload
    assert event_from_payload(event_type, merge_personal(event_type, public, values)) == (
        event_from_payload(event_type, payload)
    )
    assert split_personal(event_type, payload)[0] == erased(event_type, payload)


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_personal_values_are_those_found_in_the_order_mapping_visits_them(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    """`personal_values` is compiled from the catalogue; the walk of `map_personal` and this
    test's own search of the payload must agree with it, on plain dicts (the compiled path) and
    on a mapping of another type (the walk's)."""
    event_type = event_class.event_type
    payload = drawn_payload(event_class, data)
    visited: list[str] = []
    map_personal(event_type, payload, lambda where, value: visited.append(where) or value)

    values = personal_values(event_type, payload)

    assert values == personal_found(event_type, payload)
    assert list(values) == visited
    assert personal_values(event_type, _OtherDict(payload)) == values
    filled = {where: value for where, value in values.items() if value != ""}
    assert personal_values(event_type, payload, empty=False) == filled
    assert personal_values(event_type, _OtherDict(payload), empty=False) == filled
    for value in values.values():  # the payload's own objects, not copies
        assert any(value is candidate for candidate in personal_found(event_type, payload).values())


class _OtherDict(dict):
    """A payload of a mapping type the compiled reader leaves to the walk."""


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_filled_slots_are_the_filled_values_in_pointer_order_with_where_they_sit(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    """What opening an event sealed together reads in one walk: every personal value but the
    empty texts, in the code-point order of their pointers (the order they were sealed in),
    with the object holding each and whether its field is among those kept."""
    event_type = event_class.event_type
    payload = drawn_payload(event_class, data)
    catalogue = personal_paths(event_type)
    kept = frozenset(data.draw(st.sets(st.sampled_from(catalogue)))) if catalogue else frozenset()
    found = personal_found(event_type, payload)
    filled = {where: value for where, value in found.items() if value != ""}

    for shaped in (payload, _OtherDict(payload)):  # the compiled reader, then the walk
        slots = filled_slots(event_type, shaped, kept)

        assert [where for where, *_ in slots] == sorted(filled)
        for where, value, container, key, keep in slots:
            assert value == filled[where]
            assert container[key] is value
            assert keep == (path_pattern(where) in kept)


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_no_personal_value_is_left_in_the_public_payload(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event_type = event_class.event_type
    payload = event_to_payload(tagged(data.draw(st.from_type(event_class)), [0]))
    personal = personal_found(event_type, payload)
    not_personal = {
        where: value
        for path in NOT_PERSONAL[event_type]
        for where, value in found(payload, path)
        if isinstance(value, str)
    }

    public, _ = split_personal(event_type, payload, lambda where, value: PLACEHOLDER)
    text = json.dumps(public, ensure_ascii=False)

    for where, value in personal.items():
        mark = value[: value.index("⟧") + 1] if value.startswith("⟦") else json.dumps(value)
        assert mark not in text, f"{where} left in the public payload"
    for value in not_personal.values():
        assert json.dumps(value, ensure_ascii=False) in text


# --- shapes ------------------------------------------------------------------------------------


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_some_personal_values_mapped_in_place_as_in_a_copy(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event_type = event_class.event_type
    payload = drawn_payload(event_class, data)
    catalogue = personal_paths(event_type)
    paths = frozenset(data.draw(st.sets(st.sampled_from(catalogue)))) if catalogue else frozenset()
    owned = copy.deepcopy(payload)

    def mark(where: str, value: Any) -> Any:
        return f"opened {where}: {value!r}"

    copied = map_some_personal(event_type, payload, paths, mark)
    in_place = map_some_personal_in_place(event_type, owned, paths, mark)

    assert in_place is owned
    assert in_place == copied
    assert personal_found(event_type, in_place) == {
        where: mark(where, value) if path_pattern(where) in paths else value
        for where, value in personal_found(event_type, payload).items()
    }


def test_mapping_some_in_place_refuses_a_payload_of_another_shape() -> None:
    payload = event_to_payload(received_with_everything())
    staff = frozenset({("respondent_staff", EACH, "name")})

    with pytest.raises(EventPayloadError, match="/respondent_staff: expected a list"):
        map_some_personal_in_place(
            "ComplaintReceived",
            payload | {"respondent_staff": {"name": "赵六"}},
            staff,
            lambda where, value: value,
        )


def test_pointers_name_list_items_by_index_and_escape_per_rfc_6901() -> None:
    assert pointer(("respondent_staff", 0, "name")) == "/respondent_staff/0/name"
    assert pointer(("a/b", "c~d")) == "/a~1b/c~0d"
    assert path_pattern("/respondent_staff/0/name") == ("respondent_staff", EACH, "name")
    assert path_pattern("/joint/representatives/12") == ("joint", "representatives", EACH)
    assert path_pattern("/a~1b/c~0d") == ("a/b", "c~d")


def test_a_payload_whose_shape_contradicts_the_catalogue_is_refused() -> None:
    payload = event_to_payload(received_with_everything())

    with pytest.raises(EventPayloadError, match="/respondent_staff: expected a list"):
        erased("ComplaintReceived", payload | {"respondent_staff": {"name": "赵六"}})
    with pytest.raises(EventPayloadError, match="/complainant: expected an object"):
        erased("ComplaintReceived", payload | {"complainant": ["张三"]})
    with pytest.raises(EventPayloadError, match="/respondent_staff/0: expected an object"):
        personal_values("ComplaintReceived", payload | {"respondent_staff": [["赵六"]]})
    with pytest.raises(EventPayloadError, match="/joint/representatives: expected a list"):
        personal_values("ComplaintReceived", payload | {"joint": {"representatives": "王五"}})


def test_absent_and_none_values_are_skipped() -> None:
    seen: list[str] = []

    def note(where: str, value: Any) -> Any:
        seen.append(where)
        return value

    map_personal("ComplaintReceived", {"agent": None, "joint": None, "claims": None}, note)
    map_personal("ComplaintReceived", {"complainant": {"id_type": None, "name": ""}}, note)

    assert seen == ["/complainant/name"]


def test_merging_refuses_a_value_outside_the_personal_fields() -> None:
    payload = event_to_payload(decided_case(d("2026-03-02"), d("2026-03-16")).events[-1])
    public, _ = split_personal("ComplaintDecided", payload)

    with pytest.raises(EventPayloadError, match="/redress_fen is not a personal field"):
        merge_personal("ComplaintDecided", public, {"/redress_fen": 1})
    with pytest.raises(EventPayloadError, match="no place for /notice/agreed_terms"):
        merge_personal("ComplaintDecided", {}, {"/notice/agreed_terms": "x"})


# --- spot checks -------------------------------------------------------------------------------


def test_a_receipt_keeps_people_personal_and_codes_and_dates_readable() -> None:
    payload = event_to_payload(received_with_everything())

    public, values = split_personal("ComplaintReceived", payload)

    assert values == {
        "/complainant/name": "张三",
        "/complainant/contact": "13812345678",
        "/complainant/id_type": "resident_id",
        "/complainant/id_number": "11010519491231002X",
        "/complainant/address": "上海市浦东新区某路2号",
        "/complainant/legal_representative_name": "",
        "/complainant/legal_representative_contact": "",
        "/claims": "退还多收的年费",
        "/facts": "信用卡年费在免年费期内被扣收",
        "/agent/name": "王五",
        "/agent/id_type": "resident_id",
        "/agent/id_number": "440301199001011234",
        "/agent/contact": "13700002222",
        "/heir_proof_ref": "",
        "/respondent_staff/0/name": "赵六",
        "/joint/representatives/0": "代表甲",
        "/joint/representatives/1": "代表乙",
    }
    assert public["respondent_institution"] == payload["respondent_institution"] == "SB-SH-PD"
    assert public["channel"] == "in_person"
    assert public["category"] == {"business": "credit_card", "reason": "pricing_and_fees"}
    assert public["received_on"] == "2026-03-02"
    assert public["respondent_staff"] == [{"staff_id": RESPONDENT_STAFF_ID, "name": None}]
    assert public["joint"] == {"complainants": 8, "representatives": [None, None]}
    assert public["agent"]["authorization_ref"] == "auth-letter-001"


def test_a_decision_keeps_findings_and_basis_personal_and_outcome_and_amount_readable() -> None:
    decided = decided_case(d("2026-03-02"), d("2026-03-16")).events[-1]
    assert isinstance(decided, ComplaintDecided)

    public, values = split_personal("ComplaintDecided", event_to_payload(decided))

    assert values == {
        "/findings": "年费扣收有误",
        "/basis": "信用卡领用合约第5条",
        "/notice/agreed_terms": "",
    }
    assert public["outcome"] == "partially_upheld"
    assert public["redress_fen"] == 30_000
    assert public["handler_id"] == HANDLER
    assert public["notice"]["notified_on"] == "2026-03-16"
    assert ("findings",) in personal_paths("ComplaintDecided")
    assert ("redress_fen",) in NOT_PERSONAL["ComplaintDecided"]
