"""Which fields of each event's stored payload are personal data (PIPL; DOMAIN.md "Personal data").

Personal data is every field that identifies or describes a person: the complainant's name,
identity document (type and number), contact and address; a legal person's representative name
and contact; the agent's name, identity document and contact; the heir's proof reference;
respondent staff names; joint representatives' names; and every free text (claims, facts,
summaries, grounds, findings, basis, reasons, details, notes, agreed terms), because complainants
write account numbers, names and addresses into them. Codes, dates, amounts, outcomes, staff ids
and institution codes are not: they stay readable for statistics and audit.

This module is the catalogue, for every event type of `events.EVENT_TYPES`, and the pure functions
the store uses to encrypt, decrypt and erase those fields in place. `PERSONAL` lists each event
type's personal fields and `NOT_PERSONAL` every other field, so the two tables together cover each
field of each event exactly once (a unit test walks the event dataclasses and fails on a field
that neither table names: a new field must be classified before it can be stored).

Judgement calls, where DOMAIN.md's list is silent (each is one line in a table below):
`agent.authorization_ref` and `notice.proof_ref` are references to documents (the power of
attorney, the proof of delivery) and not personal; `complainant.unified_social_credit_code` is an
organisation's registration code and not personal (the case list shows it in clear);
`filed_by_heir` is a flag and `joint.complainants` a count; `PersonalDataErased`'s reason and
legal basis are the administrator's words about the legal ground, not the complainant's; a
rectification's `evidence_ref` is a reference like `proof_ref`; an attribution's `department` names
an organisational unit; its `third_party` is sealed (see the table: it may name a person, and the
statistics need only the root cause code).

**Paths.** A field is named by a `Path`, a tuple of the keys leading to it in the payload of
`events.event_to_payload`: `("claims",)`, `("complainant", "name")`. The segment `"*"` (`EACH`)
stands for every item of a list: `("respondent_staff", "*", "name")` is the name of each
respondent staff member, `("joint", "representatives", "*")` each representative's name, and
`("remedies", "*")` each remedy code. Tables hold only leaves (a string, number, bool, code or
date), never a whole object or list.

A personal value found in a given payload is named by the path's concrete form, a JSON Pointer
(RFC 6901) string with list indices in place of `"*"`: `"/complainant/name"`,
`"/respondent_staff/0/name"`, `"/joint/representatives/1"`. That string is the key of
`split_personal`'s and `personal_values`' values and the first argument of every callback, so
the store can bind a ciphertext to its field (the AEAD's associated data) and a verifier can find
it again.

**Absent and None.** A personal value that is None (`complainant.id_type` of a legal person,
anything under `agent` or `joint` when those are None, a value already erased) or whose key is
absent is skipped: no callback, no entry. An empty string is a value like any other. A payload
whose shape contradicts the catalogue (a list where an object belongs) is refused with
`EventPayloadError` rather than walked past, so a personal value is never left out unnoticed.

**Functions.** `personal_paths`; `map_personal` (apply a function to each personal value: encrypt,
decrypt, mask); `split_personal` (the public payload, with a placeholder of the caller's choosing
at each personal value, and the personal values by pointer); `merge_personal` (its inverse);
`erased` (what a reader sees once the case's key is destroyed: None at every personal value).
None of them mutates its argument: each returns a new payload that shares no dict or list with it.
`event_from_erased_payload` decodes such a payload into its event, None at those places.
`personal_values` reads the personal values by pointer without copying anything (what the store
seals together, and opens); `map_personal_in_place` and `map_some_personal` are for callers that
own the payload or read a few fields.

**Versions.** The tables describe each event type at the schema version in `DESCRIBES_VERSION`,
checked against `events.EVENT_TYPES` by a test: raising an event's schema version means
classifying its new shape here, and keying the catalogue by version if stored events of the old
shape must still be decrypted.

**Masking** (names keep their first character, resident identity numbers the area code and the
last 4, mobile numbers the first 3 and the last 4) is in `domain/identity.py` (`mask_name`,
`mask_id_number`, `mask_phone`), applied to the complainant by `projections/case_view.py`
(`masked_complainant`); `map_personal` is the way to apply such a rule to a whole payload.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from complaintcore.domain.events import (
    EVENT_TYPES,
    Event,
    EventPayloadError,
    UnknownEventType,
    compile_event_decoder,
    event_from_payload,
)
from complaintcore.domain.frozen import changed

__all__ = [
    "DESCRIBES_VERSION",
    "EACH",
    "NOT_PERSONAL",
    "PERSONAL",
    "Path",
    "decoder_keeping_personal",
    "erased",
    "event_from_erased_payload",
    "event_keeping_personal",
    "filled_slots",
    "map_personal",
    "map_personal_in_place",
    "map_some_personal",
    "map_some_personal_in_place",
    "merge_personal",
    "path_pattern",
    "personal_paths",
    "personal_values",
    "pointer",
    "split_personal",
]

Path = tuple[str, ...]
"""The keys leading to a leaf of a payload; `EACH` for every item of a list."""

EACH = "*"

PersonalFunction = Callable[[str, Any], Any]
"""Called with a personal value's pointer (`"/complainant/name"`) and the value."""


def _under(prefix: str, paths: tuple[Path, ...]) -> tuple[Path, ...]:
    return tuple((prefix, *path) for path in paths)


# A notice (events carry one under "notice"): only the agreed terms are free text.
_NOTICE_PERSONAL: tuple[Path, ...] = (("agreed_terms",),)
_NOTICE_NOT_PERSONAL: tuple[Path, ...] = (
    ("notified_on",),
    ("method",),
    ("proof_ref",),  # a reference to the proof of delivery
    ("unreachable",),
    ("attempts",),
)


PERSONAL: Mapping[str, tuple[Path, ...]] = types.MappingProxyType(
    {
        "ComplaintReceived": (
            ("complainant", "name"),
            ("complainant", "contact"),
            ("complainant", "id_type"),
            ("complainant", "id_number"),
            ("complainant", "address"),
            ("complainant", "legal_representative_name"),
            ("complainant", "legal_representative_contact"),
            ("claims",),
            ("facts",),
            ("agent", "name"),
            ("agent", "id_type"),
            ("agent", "id_number"),
            ("agent", "contact"),
            ("heir_proof_ref",),
            ("respondent_staff", EACH, "name"),
            ("joint", "representatives", EACH),
        ),
        "HandlerAssigned": (),
        "HandlerRecused": (("reason",),),
        "DeadlineExtended": (("reason",), *_under("notice", _NOTICE_PERSONAL)),
        "ClockPaused": (("reason",), *_under("notice", _NOTICE_PERSONAL)),
        "ClockResumed": (),
        "ComplaintSupplemented": (("summary",),),
        "ComplaintMerged": (),
        "ComplaintDecided": (
            ("findings",),
            ("basis",),
            *_under("notice", _NOTICE_PERSONAL),
        ),
        "ComplainantNotified": (*_under("notice", _NOTICE_PERSONAL), ("summary",)),
        "ReviewRequested": (("grounds",),),
        "ReviewDecided": (("findings",), *_under("notice", _NOTICE_PERSONAL)),
        "ComplaintWithdrawn": (("reason",),),
        "ComplaintDeclined": (("reason",), *_under("notice", _NOTICE_PERSONAL)),
        "MarkedMajor": (("detail",),),
        "PersonalDataErased": (),
        "RedressApproved": (("note",),),
        # The third party is usually an organisation (a collection agency, a merchant), but the
        # name is typed by staff and may name a person; the statistics only count cases whose
        # root cause is `third_party`, a code that stays readable, so the name is sealed.
        "CaseAttributed": (("third_party",), ("actions", EACH, "description")),
        "RectificationActionClosed": (),
        "FollowedUp": (("note",),),
    }
)
"""Each event type's personal fields, in the order of its payload's fields."""


NOT_PERSONAL: Mapping[str, tuple[Path, ...]] = types.MappingProxyType(
    {
        "ComplaintReceived": (
            ("case_id",),
            ("registration_no",),
            ("respondent_institution",),
            ("channel",),
            ("received_on",),
            ("complainant", "kind"),
            ("complainant", "unified_social_credit_code"),  # an organisation's code
            ("category", "business"),
            ("category", "reason"),
            ("agent", "authorization_ref"),  # a reference to the power of attorney
            ("filed_by_heir",),
            ("respondent_staff", EACH, "staff_id"),
            ("joint", "complainants"),  # how many
            ("regulator_transfer", "regulator_received_on"),
            ("regulator_transfer", "forwarded_on"),
            ("regulator_transfer", "working_days"),
            ("regulator_transfer", "within_limit"),
            ("due_on",),
        ),
        "HandlerAssigned": (("handler_id",), ("assigned_on",), ("previous_handler_id",)),
        "HandlerRecused": (("handler_id",), ("recused_on",)),
        "DeadlineExtended": (
            ("level",),
            ("approval", "approver_id"),
            ("approval", "approver_role"),
            *_under("notice", _NOTICE_NOT_PERSONAL),
            ("previous_due_on",),
            ("due_on",),
        ),
        "ClockPaused": (("kind",), ("paused_on",), *_under("notice", _NOTICE_NOT_PERSONAL)),
        "ClockResumed": (("paused_on",), ("resumed_on",), ("paused_days",), ("due_on",)),
        "ComplaintSupplemented": (
            ("received_on",),
            ("new_facts_and_reasons",),
            ("restarted",),
            ("due_on",),
        ),
        "ComplaintMerged": (("into",), ("merged_on",)),
        "ComplaintDecided": (
            ("handler_id",),
            ("outcome",),
            ("redress_fen",),
            ("remedies", EACH),
            *_under("notice", _NOTICE_NOT_PERSONAL),
            ("due_on",),
            ("on_time",),
            ("handling_days",),
            ("review_window_ends_on",),
        ),
        "ComplainantNotified": (("subject",), *_under("notice", _NOTICE_NOT_PERSONAL)),
        "ReviewRequested": (("received_on",), ("reviewing_institution",), ("due_on",)),
        "ReviewDecided": (
            ("reviewer_id",),
            ("outcome",),
            ("new_outcome",),
            ("new_redress_fen",),
            *_under("notice", _NOTICE_NOT_PERSONAL),
            ("due_on",),
            ("on_time",),
        ),
        "ComplaintWithdrawn": (("received_on",),),
        "ComplaintDeclined": _under("notice", _NOTICE_NOT_PERSONAL),
        "MarkedMajor": (("cause",), ("marked_on",)),
        "PersonalDataErased": (
            ("erased_on",),
            ("reason",),  # the administrator's words about the legal ground, not the complainant's
            ("legal_basis",),
            ("closed_on",),
            ("retention_years",),
        ),
        "RedressApproved": (
            ("up_to_fen",),
            ("approved_on",),
            ("approver_id",),
            ("approver_limit_fen",),
            ("limit_source",),  # written by the service ("policy of BR-SH, version 3")
        ),
        "CaseAttributed": (
            ("attributed_on",),
            ("responsible_institution",),
            ("department",),  # an organisational unit of the institution, not a person
            ("responsible_staff", EACH),  # staff ids
            ("root_cause",),
            ("actions", EACH, "action_id"),
            ("actions", EACH, "owner_id"),
            ("actions", EACH, "due_on"),
        ),
        "RectificationActionClosed": (
            ("action_id",),
            ("done_on",),
            ("evidence_ref",),  # a reference to the evidence, as a notice's proof_ref
        ),
        "FollowedUp": (("reached",), ("satisfaction",), ("followed_up_on",)),
    }
)
"""Every other field of each event type: codes, dates, amounts, outcomes, ids, flags, counts."""


DESCRIBES_VERSION: Mapping[str, int] = types.MappingProxyType(
    {event_type: 1 for event_type in PERSONAL}
)
"""The schema version of each event type that the two tables describe."""


# --- paths -------------------------------------------------------------------------------------


def personal_paths(event_type: str) -> tuple[Path, ...]:
    """The personal fields of `event_type`'s payload (empty for an event type with none)."""
    try:
        return PERSONAL[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def pointer(keys: tuple[str | int, ...]) -> str:
    """The JSON Pointer (RFC 6901) of a concrete path: `("respondent_staff", 0, "name")` ->
    `"/respondent_staff/0/name"`."""
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in keys)


@functools.lru_cache(maxsize=4096)  # a few hundred pointers occur; readers ask for each often
def path_pattern(pointer_string: str) -> Path:
    """The `Path` a pointer is an instance of: `"/respondent_staff/0/name"` ->
    `("respondent_staff", "*", "name")`."""
    return tuple(EACH if key.isdigit() else key for key in _keys(pointer_string))


def _keys(pointer_string: str) -> list[str]:
    if not pointer_string.startswith("/"):
        raise ValueError(f"{pointer_string!r} is not a JSON Pointer")
    return [key.replace("~1", "/").replace("~0", "~") for key in pointer_string[1:].split("/")]


# --- walking a payload -------------------------------------------------------------------------

# Per event type, its personal paths as a tree of (pointer segment, subtree) by key:
# {"complainant": ("/complainant", {"name": ("/name", _LEAF), ...}), ...}.
_LEAF: Any = object()
_Tree = dict[str, tuple[str, Any]]


def _tree(paths: tuple[Path, ...]) -> _Tree:
    tree: _Tree = {}
    for path in paths:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, (pointer((key,)), {}))[1]
        node[path[-1]] = (pointer((path[-1],)), _LEAF)
    return tree


_TREES: Mapping[str, _Tree] = types.MappingProxyType(
    {event_type: _tree(paths) for event_type, paths in PERSONAL.items()}
)


def _copy(node: Any) -> Any:
    """A copy of a JSON-like value sharing no dict or list with it."""
    if isinstance(node, dict):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(value) for value in node]
    return node


def _slots(node: Any, tree: _Tree, at: str) -> list[tuple[Any, Any, str]]:
    """(container, key, pointer) of each personal value present under `node` (whose pointer is
    `at`), depth first."""
    found: list[tuple[Any, Any, str]] = []
    _collect_slots(node, tree, at, found)
    return found


def _collect_slots(node: Any, tree: _Tree, at: str, found: list[tuple[Any, Any, str]]) -> None:
    # appended to one list rather than yielded: every event written is walked, and as a chain of
    # generators (one per level of nesting) this was 6 % of a bulk import's samples
    for name, (segment, subtree) in tree.items():
        if name == EACH:
            if not isinstance(node, list):
                raise EventPayloadError(f"{at or '/'}: expected a list")
            children: Any = enumerate(node)
        else:
            if not isinstance(node, dict):
                raise EventPayloadError(f"{at or '/'}: expected an object")
            if name not in node:
                continue
            children = ((name, node[name]),)
        for key, child in children:
            if child is None:
                continue
            where = f"{at}/{key}" if name == EACH else at + segment
            if subtree is _LEAF:
                found.append((node, key, where))
            else:
                _collect_slots(child, subtree, where, found)


def _tree_of(event_type: str) -> _Tree:
    try:
        return _TREES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


# --- the functions the store uses --------------------------------------------------------------


def map_personal(
    event_type: str, payload: Mapping[str, Any], fn: PersonalFunction
) -> dict[str, Any]:
    """A new payload with `fn(pointer, value)` in place of each personal value present."""
    return map_personal_in_place(event_type, _copy(dict(payload)), fn)


def map_personal_in_place(
    event_type: str, payload: dict[str, Any], fn: PersonalFunction
) -> dict[str, Any]:
    """`map_personal` on a payload the caller owns (one just made by `event_to_payload`),
    changed in place and returned: the copy of every event written is spared."""
    for container, key, where in _read(_SLOT_READERS, event_type, payload):
        container[key] = fn(where, container[key])
    return payload


def personal_values(
    event_type: str, payload: Mapping[str, Any], empty: bool = True
) -> dict[str, Any]:
    """Each personal value present in `payload` (not None), by pointer, in the order `map_personal`
    visits them, without copying them; with `empty=False`, but the empty texts."""
    readers = _VALUE_READERS if empty else _FILLED_VALUE_READERS
    return typing.cast(dict[str, Any], _read(readers, event_type, payload))


def _read(readers: Mapping[str, Callable[[Any], Any]], event_type: str, payload: Any) -> Any:
    """What the compiled reader of `event_type` among `readers` reads of `payload`, or the
    walk's answer for a payload of an unusual shape (which says what is wrong with it, if
    anything)."""
    try:
        reader = readers[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    try:
        return reader(payload)
    except _NotTheFastPath:
        slots = _slots(payload, _tree_of(event_type), "")
        if readers is _SLOT_READERS:
            return slots
        values = {where: node[key] for node, key, where in slots}
        if readers is _FILLED_VALUE_READERS:
            return {where: value for where, value in values.items() if value != ""}
        return values


class _NotTheFastPath(Exception):
    pass


# What a compiled reader records of each personal value: formats of (container, key, pointer,
# value, whether its path is among those kept) expressions.
_VALUES, _SLOTS = "found[{2}] = {3}", "found.append(({0}, {1}, {2}))"
_FILLED_VALUES = "if {3} != '': found[{2}] = {3}"
_FILLED_SLOTS = "if {3} != '': found.append(({2}, {3}, {0}, {1}, {4}))"


def _compiled_reader(
    tree: _Tree, record: str, kept: frozenset[Path] = frozenset()
) -> Callable[[Any], Any]:
    """`_slots` (`record`: `_SLOTS`), `personal_values` (`_VALUES`; `_FILLED_VALUES` for
    `empty=False`) or `filled_slots` (`_FILLED_SLOTS`, of `kept`) of one event type, written out
    as Python source and compiled (as `events.compile_event_decoder` does): a lookup per field
    of the catalogue, no recursion. Every event sealed or opened is read this way; the walk took
    as long as opening a receipt's fields."""
    found = "[]" if record in (_SLOTS, _FILLED_SLOTS) else "{}"
    body = ["def read(node0):", f"    found = {found}"]
    _read_node(tree, (record, kept), depth=0, indent=1, at=(), body=body)
    body.append("    return found")
    namespace: dict[str, Any] = {"_NotTheFastPath": _NotTheFastPath}
    exec("\n".join(body), namespace)
    return typing.cast(Callable[[Any], Any], namespace["read"])


class _IndexVariable(str):
    """A list index of the generated source (its variable's name), among a pointer's parts."""


def _read_node(
    tree: _Tree,
    recording: tuple[str, frozenset[Path]],
    depth: int,
    indent: int,
    at: tuple[str, ...],
    body: list[str],
    path: Path = (),
) -> None:
    """Source reading the values of `tree` under `node{depth}`, whose pointer is made of `at`
    and whose path is `path`, `indent` levels in, each recorded as `recording` (a format, and
    the paths kept) says."""
    record, kept = recording
    pad, node, child = "    " * indent, f"node{depth}", f"node{depth + 1}"
    if EACH in tree:
        subtree, each = tree[EACH][1], (*path, EACH)
        index = _IndexVariable(f"index{depth}")
        body += [
            f"{pad}if type({node}) is not list:",
            f"{pad}    raise _NotTheFastPath",
            f"{pad}for {index}, {child} in enumerate({node}):",
            f"{pad}    if {child} is not None:",
        ]
        where = (*at, "/", index)
        if subtree is _LEAF:
            source = record.format(node, index, _pointer_source(where), child, each in kept)
            body.append(f"{pad}        {source}")
        else:
            _read_node(subtree, recording, depth + 1, indent + 2, where, body, each)
        return
    body += [f"{pad}if type({node}) is not dict:", f"{pad}    raise _NotTheFastPath"]
    for name, (segment, subtree) in tree.items():
        where, named = (*at, segment), (*path, name)
        body += [f"{pad}{child} = {node}.get({name!r})", f"{pad}if {child} is not None:"]
        if subtree is _LEAF:
            source = record.format(node, repr(name), _pointer_source(where), child, named in kept)
            body.append(f"{pad}    {source}")
        else:
            _read_node(subtree, recording, depth + 1, indent + 1, where, body, named)


def _pointer_source(parts: tuple[str, ...]) -> str:
    """The source of the pointer `parts` make: the constant segments between list indices
    joined into one literal, each index written as its variable's text."""
    pieces: list[str] = []
    constant = ""
    for part in parts:
        if isinstance(part, _IndexVariable):
            pieces += [repr(constant)] if constant else []
            pieces.append(f"str({part})")
            constant = ""
        else:
            constant += part
    pieces += [repr(constant)] if constant else []
    return " + ".join(pieces)


def map_some_personal(
    event_type: str, payload: Mapping[str, Any], paths: frozenset[Path], fn: PersonalFunction
) -> dict[str, Any]:
    """`fn(pointer, value)` at the personal values of `paths` only (some of the event type's
    personal paths), the other personal values left as they are: for a reader whose decoder
    ignores those (`event_keeping_personal`). Only the objects and lists on the way to `paths`
    are copied; the rest of the new payload is shared with `payload`."""
    return _mapped_along(payload, _tree_of_some(event_type, paths), "", fn)


def map_some_personal_in_place(
    event_type: str, payload: dict[str, Any], paths: frozenset[Path], fn: PersonalFunction
) -> dict[str, Any]:
    """`map_some_personal` on a payload the caller owns (one just read from the database for a
    fold), changed in place and returned: nothing is copied."""
    tree = _tree_of_some(event_type, paths)
    try:
        slots = _some_slots_reader(event_type, paths)(payload)
    except _NotTheFastPath:
        slots = _slots(payload, tree, "")  # which says what is wrong with an unusual shape
    for container, key, where in slots:
        container[key] = fn(where, container[key])
    return payload


def filled_slots(
    event_type: str, payload: dict[str, Any], kept: frozenset[Path]
) -> list[tuple[str, Any, Any, Any, bool]]:
    """Each personal value of `payload` but the empty texts, as (pointer, value, container,
    key, whether its path is among `kept`), in the code-point order of the pointers: in one
    walk, what opening an event sealed together needs (`events.stream_cipher`), and where to
    put the opened values of `kept` back."""
    try:
        found = _filled_slots_reader(event_type, kept)(payload)
    except _NotTheFastPath:  # an unusual shape: the walk says what is wrong with it, if anything
        found = [
            (where, node[key], node, key, path_pattern(where) in kept)
            for node, key, where in _slots(payload, _tree_of(event_type), "")
            if node[key] != ""
        ]
    found.sort()  # by pointer alone: no two values share one
    return typing.cast(list[tuple[str, Any, Any, Any, bool]], found)


@functools.cache
def _filled_slots_reader(event_type: str, kept: frozenset[Path]) -> Callable[[Any], Any]:
    return _compiled_reader(_tree_of(event_type), _FILLED_SLOTS, kept)


@functools.cache
def _some_slots_reader(event_type: str, paths: frozenset[Path]) -> Callable[[Any], Any]:
    return _compiled_reader(_tree_of_some(event_type, paths), _SLOTS)


@functools.cache
def _tree_of_some(event_type: str, paths: frozenset[Path]) -> _Tree:
    unknown = paths - set(personal_paths(event_type))
    if unknown:
        raise EventPayloadError(f"{event_type}: {sorted(unknown)} are not personal fields")
    return _tree(tuple(sorted(paths)))


def _mapped_along(node: Any, tree: _Tree, at: str, fn: PersonalFunction) -> Any:
    """A copy of `node` (whose pointer is `at`) with `fn(pointer, value)` at each value of
    `tree` present: one walk, as `_slots` goes, copying only the objects and lists on the way."""
    if EACH in tree:
        if not isinstance(node, list):
            raise EventPayloadError(f"{at or '/'}: expected a list")
        subtree = tree[EACH][1]
        items = list(node)
        for index, child in enumerate(items):
            if child is not None:
                where = f"{at}/{index}"
                items[index] = (
                    fn(where, child)
                    if subtree is _LEAF
                    else _mapped_along(child, subtree, where, fn)
                )
        return items
    # a dict first: payloads are, and an ABC check costs what the rest of a step does
    if not isinstance(node, dict) and not isinstance(node, Mapping):
        raise EventPayloadError(f"{at or '/'}: expected an object")
    copied = dict(node)
    for name, (segment, subtree) in tree.items():
        child = copied.get(name)
        if child is not None:
            where = at + segment
            copied[name] = (
                fn(where, child) if subtree is _LEAF else _mapped_along(child, subtree, where, fn)
            )
    return copied


def split_personal(
    event_type: str,
    payload: Mapping[str, Any],
    replace: PersonalFunction = lambda where, value: None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload with `replace(pointer, value)` in place of each personal value present (None
    unless told), and those values by pointer, in the order of `personal_paths`. `merge_personal`
    puts them back."""
    values: dict[str, Any] = {}

    def take(where: str, value: Any) -> Any:
        values[where] = value
        return replace(where, value)

    return map_personal(event_type, payload, take), values


def merge_personal(
    event_type: str, public_payload: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """A new payload with each of `values` (by pointer, as `split_personal` gives them) put at
    its place in `public_payload`. A pointer that is not a personal field of `event_type`, or
    whose parent object or list item the payload lacks, is refused with `EventPayloadError`."""
    paths = set(personal_paths(event_type))
    result: dict[str, Any] = _copy(dict(public_payload))
    for where, value in values.items():
        if path_pattern(where) not in paths:
            raise EventPayloadError(f"{event_type}: {where} is not a personal field")
        *parents, last = _keys(where)
        node: Any = result
        try:
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node[key]
            if isinstance(node, list):
                node[int(last)] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise TypeError(type(node).__name__)
        except (KeyError, IndexError, TypeError) as error:
            raise EventPayloadError(f"{event_type}: no place for {where} ({error})") from None
    return result


def erased(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as a reader sees it after erasure: None at every personal value, the rest as
    it was (list lengths included). `events.event_from_payload` refuses it (personal strings
    are not optional in the event classes); `event_from_erased_payload` reads it."""
    return map_personal(event_type, payload, lambda where, value: None)


# --- decoding erased payloads ------------------------------------------------------------------
#
# The strict decoder stays the judge of every field: each None at a personal value it would
# refuse is given a placeholder of the field's type, the payload decoded, and the placeholder's
# place set back to None on the decoded records. One walk of the payload per event finds the
# places and fills them, copying only the objects and lists on the way to one.


def event_keeping_personal(
    event_type: str, payload: Mapping[str, Any], kept: frozenset[Path] = frozenset()
) -> Event:
    """The event of a stored payload with every personal field but `kept` read as None, without
    looking at what the payload holds there (ciphertext not opened, or None once erased): what
    a reader that shows none of those fields folds (a projection, an erased case). `kept`
    fields must hold their plaintext. As fast as the strict decoder; an unusual payload goes the
    way of `event_from_erased_payload`."""
    return decoder_keeping_personal(event_type, kept)(payload)


@functools.cache
def decoder_keeping_personal(event_type: str, kept: frozenset[Path]) -> Callable[[Any], Event]:
    """`event_keeping_personal` of `event_type` and `kept`, made once: for a reader that
    decodes many events."""
    ignored: dict[str, Any] = {}
    for path in personal_paths(event_type):
        if path in kept:
            continue
        node = ignored
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = True

    def fallback(payload: Any) -> Event:
        def keep_or_drop(where: str, value: Any) -> Any:
            return value if path_pattern(where) in kept else None

        return event_from_erased_payload(
            event_type, map_personal(event_type, payload, keep_or_drop)
        )

    return compile_event_decoder(event_type, ignored, fallback)


def event_from_erased_payload(event_type: str, payload: Mapping[str, Any]) -> Event:
    """The event of a payload read after erasure (`erased`), or with only some personal fields
    opened: None is accepted at each personal value, every other field is decoded as strictly
    as `events.event_from_payload` does. The event holds None there though its class says
    `str`: a record of what was, which `state.evolve` folds like any other (into a state whose
    personal values are None), never a command's input."""
    try:
        fillable = _FILLABLE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    filled, places = _filled(payload, fillable)
    event = event_from_payload(event_type, filled)
    return typing.cast(Event, _nulled(event, places)) if places else event


@dataclass(frozen=True)
class _Placeholder:
    """A leaf of a fill tree: the JSON value the strict decoder accepts for the field."""

    value: Any


_FillTree = dict[str, Any]
"""Per key (`EACH` for every list item), a `_Placeholder` or the tree below it."""

_Places = dict[Any, Any]
"""Per key (a list index for a list item), `_LEAF` where a placeholder went, or the places below."""


def _filled(node: Any, tree: _FillTree) -> tuple[Any, _Places]:
    """`node` with a placeholder at each None that `tree` names, and where they went. `node` is
    never changed: an object or list is copied once a placeholder goes into it or below it. A
    container that is None or of the wrong shape is passed over: the strict decoder judges it."""
    result, places = node, typing.cast(_Places, {})
    for key, subtree in tree.items():
        for child_key, child in _children(node, key):
            if isinstance(subtree, _Placeholder):
                if child is not None:
                    continue
                new_child, child_places = subtree.value, _LEAF
            else:
                if child is None:
                    continue
                new_child, child_places = _filled(child, subtree)
                if not child_places:
                    continue
            if result is node:
                result = list(node) if isinstance(node, list) else dict(node)
            result[child_key] = new_child
            places[child_key] = child_places
    return result, places


def _children(node: Any, key: str) -> Any:
    if key == EACH:
        return enumerate(node) if isinstance(node, list) else ()
    return ((key, node[key]),) if isinstance(node, Mapping) and key in node else ()


def _nulled(value: Any, places: _Places) -> Any:
    """A decoded record or tuple with None at each of `places`, rebuilt along the way."""
    if isinstance(value, tuple):
        return tuple(_nulled_child(item, places.get(index)) for index, item in enumerate(value))
    fields = {name: _nulled_child(getattr(value, name), below) for name, below in places.items()}
    return changed(value, **fields)


def _nulled_child(value: Any, places: Any) -> Any:
    if places is None:
        return value
    return None if places is _LEAF else _nulled(value, places)


def _fill_tree(event_class: type, paths: tuple[Path, ...]) -> _FillTree:
    """The personal paths whose field the strict decoder refuses None at, as a tree whose
    leaves hold a JSON value of the field's type that it accepts."""
    tree: _FillTree = {}
    for path in paths:
        hint = _leaf_hint(event_class, path)
        if _is_optional(hint):
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _Placeholder(_placeholder(hint))
    return tree


def _leaf_hint(event_class: type, path: Path) -> Any:
    hint: Any = event_class
    for key in path:
        hint = _required(hint)
        hint = typing.get_args(hint)[0] if key == EACH else typing.get_type_hints(hint)[key]
    return hint


def _is_optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _required(hint: Any) -> Any:
    if not _is_optional(hint):
        return hint
    (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return inner


def _placeholder(hint: Any) -> Any:
    if isinstance(hint, type) and issubclass(hint, Enum):
        return next(iter(hint)).value
    placeholders: dict[Any, Any] = {str: "", int: 0, bool: False, date: "2000-01-01"}
    if hint not in placeholders:
        raise TypeError(f"no placeholder for a personal field typed {hint!r}")
    return placeholders[hint]


_FILLABLE: Mapping[str, _FillTree] = types.MappingProxyType(
    {name: _fill_tree(cls, PERSONAL[name]) for name, cls in EVENT_TYPES.items()}
)


_VALUE_READERS: Mapping[str, Callable[[Any], Any]] = types.MappingProxyType(
    {event_type: _compiled_reader(tree, _VALUES) for event_type, tree in _TREES.items()}
)
_FILLED_VALUE_READERS: Mapping[str, Callable[[Any], Any]] = types.MappingProxyType(
    {event_type: _compiled_reader(tree, _FILLED_VALUES) for event_type, tree in _TREES.items()}
)
_SLOT_READERS: Mapping[str, Callable[[Any], Any]] = types.MappingProxyType(
    {event_type: _compiled_reader(tree, _SLOTS) for event_type, tree in _TREES.items()}
)
