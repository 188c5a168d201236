"""Events: the facts of a case, past tense, one frozen dataclass each.

Each event type has a stable `event_type` name and a `schema_version` from day one, so a later
shape can be upcast on read. Events hold every fact needed to rebuild a case and its statistics
from the stream alone, including the dates the decider derived at the time (`due_on`, `on_time`,
`review_window_ends_on`): they record what the institution determined under the calendar and
policy then in force, so a replay never depends on reference data loaded later.

Which fields are personal data (names, identity documents, contacts, every free text) is declared
in `personal_data`, one table per event type (Art. 22; DOMAIN.md "Personal data").

Why one file of 650 lines: one small frozen dataclass per event type, with the payload codec they
share; the event catalogue reads best whole, and every event type's schema version sits beside it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, ClassVar

from complaintcore.domain.commands import (
    Agent,
    Approval,
    Category,
    Complainant,
    JointComplaint,
    MajorCause,
    Notice,
    NoticeSubject,
    Outcome,
    PauseKind,
    RectificationAction,
    Remedy,
    RespondentStaff,
    ReviewOutcome,
    RootCause,
    Satisfaction,
)

__all__ = [
    "EVENT_TYPES",
    "CaseAttributed",
    "ClockPaused",
    "ClockResumed",
    "ComplainantNotified",
    "ComplaintDecided",
    "ComplaintDeclined",
    "ComplaintMerged",
    "ComplaintReceived",
    "ComplaintSupplemented",
    "ComplaintWithdrawn",
    "DeadlineExtended",
    "DomainEvent",
    "Event",
    "EventPayloadError",
    "FollowedUp",
    "HandlerAssigned",
    "HandlerRecused",
    "MarkedMajor",
    "PersonalDataErased",
    "RectificationActionClosed",
    "RedressApproved",
    "RegulatorTransferCheck",
    "ReviewDecided",
    "ReviewRequested",
    "UnknownEventType",
    "event_from_payload",
    "event_to_payload",
]


@dataclass(frozen=True)
class DomainEvent:
    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


@dataclass(frozen=True)
class RegulatorTransferCheck:
    """Art. 33: working days in (regulator_received_on, forwarded_on]; within_limit iff <= 7."""

    regulator_received_on: date
    forwarded_on: date
    working_days: int
    within_limit: bool


@dataclass(frozen=True)
class ComplaintReceived(DomainEvent):
    event_type: ClassVar[str] = "ComplaintReceived"

    case_id: str
    registration_no: str
    respondent_institution: str
    channel: str
    received_on: date
    complainant: Complainant
    claims: str
    facts: str
    category: Category
    agent: Agent | None
    filed_by_heir: bool
    heir_proof_ref: str
    respondent_staff: tuple[RespondentStaff, ...]
    joint: JointComplaint | None
    regulator_transfer: RegulatorTransferCheck | None
    due_on: date


@dataclass(frozen=True)
class HandlerAssigned(DomainEvent):
    event_type: ClassVar[str] = "HandlerAssigned"

    handler_id: str
    assigned_on: date
    previous_handler_id: str | None


@dataclass(frozen=True)
class HandlerRecused(DomainEvent):
    event_type: ClassVar[str] = "HandlerRecused"

    handler_id: str
    reason: str
    recused_on: date


@dataclass(frozen=True)
class DeadlineExtended(DomainEvent):
    """`level` is the level reached: 1 (to 30 days) or 2 (to 60 days)."""

    event_type: ClassVar[str] = "DeadlineExtended"

    level: int
    reason: str
    approval: Approval | None
    notice: Notice
    previous_due_on: date
    due_on: date


@dataclass(frozen=True)
class ClockPaused(DomainEvent):
    event_type: ClassVar[str] = "ClockPaused"

    kind: PauseKind
    paused_on: date
    reason: str
    notice: Notice


@dataclass(frozen=True)
class ClockResumed(DomainEvent):
    """`paused_days` is the pause's whole length (paused_on inclusive, resumed_on exclusive);
    `due_on` the due date with the days that still count added."""

    event_type: ClassVar[str] = "ClockResumed"

    paused_on: date
    resumed_on: date
    paused_days: int
    due_on: date


@dataclass(frozen=True)
class ComplaintSupplemented(DomainEvent):
    """`restarted` when new facts and reasons came within the period (Art. 18 ¶3)."""

    event_type: ClassVar[str] = "ComplaintSupplemented"

    received_on: date
    new_facts_and_reasons: bool
    summary: str
    restarted: bool
    due_on: date


@dataclass(frozen=True)
class ComplaintMerged(DomainEvent):
    event_type: ClassVar[str] = "ComplaintMerged"

    into: str
    merged_on: date


@dataclass(frozen=True)
class ComplaintDecided(DomainEvent):
    """`handling_days`: receipt to decision notice, every paused day excluded (statistics).
    `review_window_ends_on` is None when no review is open against the decision."""

    event_type: ClassVar[str] = "ComplaintDecided"

    handler_id: str
    outcome: Outcome
    findings: str
    basis: str
    redress_fen: int
    remedies: tuple[Remedy, ...]
    notice: Notice
    due_on: date
    on_time: bool
    handling_days: int
    review_window_ends_on: date | None


@dataclass(frozen=True)
class ComplainantNotified(DomainEvent):
    event_type: ClassVar[str] = "ComplainantNotified"

    subject: NoticeSubject
    notice: Notice
    summary: str


@dataclass(frozen=True)
class ReviewRequested(DomainEvent):
    event_type: ClassVar[str] = "ReviewRequested"

    received_on: date
    grounds: str
    reviewing_institution: str
    due_on: date


@dataclass(frozen=True)
class ReviewDecided(DomainEvent):
    event_type: ClassVar[str] = "ReviewDecided"

    reviewer_id: str
    outcome: ReviewOutcome
    findings: str
    new_outcome: Outcome | None
    new_redress_fen: int | None
    notice: Notice
    due_on: date
    on_time: bool


@dataclass(frozen=True)
class ComplaintWithdrawn(DomainEvent):
    event_type: ClassVar[str] = "ComplaintWithdrawn"

    received_on: date
    reason: str


@dataclass(frozen=True)
class ComplaintDeclined(DomainEvent):
    event_type: ClassVar[str] = "ComplaintDeclined"

    reason: str
    notice: Notice


@dataclass(frozen=True)
class MarkedMajor(DomainEvent):
    event_type: ClassVar[str] = "MarkedMajor"

    cause: MajorCause
    detail: str
    marked_on: date


@dataclass(frozen=True)
class PersonalDataErased(DomainEvent):
    """The case's personal data was erased once its retention ended (PIPL Art. 47; DOMAIN.md
    "Personal data"). It records the ground and the arithmetic (`closed_on` +
    `retention_years`), so an audit can check the erasure from the stream alone; it holds no
    personal data itself."""

    event_type: ClassVar[str] = "PersonalDataErased"

    erased_on: date
    reason: str
    legal_basis: str
    closed_on: date
    retention_years: int


@dataclass(frozen=True)
class RedressApproved(DomainEvent):
    """A supervisor approved redress up to `up_to_fen` for the next decision or review decision
    (核决权限; Art. 24). `approver_limit_fen` (None: no limit) and `limit_source` record the
    authority the approval was judged under, so an audit reads it from the stream alone."""

    event_type: ClassVar[str] = "RedressApproved"

    up_to_fen: int
    note: str
    approved_on: date
    approver_id: str
    approver_limit_fen: int | None
    limit_source: str


@dataclass(frozen=True)
class CaseAttributed(DomainEvent):
    """Responsibility, root cause and rectification actions (責任歸屬; Art. 26). A later one
    supersedes the earlier; both stay in the stream."""

    event_type: ClassVar[str] = "CaseAttributed"

    attributed_on: date
    responsible_institution: str
    department: str | None
    responsible_staff: tuple[str, ...]
    root_cause: RootCause
    third_party: str | None
    actions: tuple[RectificationAction, ...]


@dataclass(frozen=True)
class RectificationActionClosed(DomainEvent):
    event_type: ClassVar[str] = "RectificationActionClosed"

    action_id: str
    done_on: date
    evidence_ref: str


@dataclass(frozen=True)
class FollowedUp(DomainEvent):
    """回访 after the decision notice; `satisfaction` is None when the complainant was not
    reached."""

    event_type: ClassVar[str] = "FollowedUp"

    reached: bool
    satisfaction: Satisfaction | None
    followed_up_on: date
    note: str


Event = (
    ComplaintReceived
    | HandlerAssigned
    | HandlerRecused
    | DeadlineExtended
    | ClockPaused
    | ClockResumed
    | ComplaintSupplemented
    | ComplaintMerged
    | ComplaintDecided
    | ComplainantNotified
    | ReviewRequested
    | ReviewDecided
    | ComplaintWithdrawn
    | ComplaintDeclined
    | MarkedMajor
    | PersonalDataErased
    | RedressApproved
    | CaseAttributed
    | RectificationActionClosed
    | FollowedUp
)

EVENT_TYPES: Mapping[str, type[DomainEvent]] = types.MappingProxyType(
    {event_class.event_type: event_class for event_class in typing.get_args(Event)}
)


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(
            f"unknown event type {event_type!r}; known types: {', '.join(sorted(EVENT_TYPES))}"
        )
        self.event_type = event_type


class EventPayloadError(ValueError):
    """A stored payload that does not match its event type's schema."""


# --- serialisation ---------------------------------------------------------------------------
#
# Every event is encoded and decoded by a function compiled once per type from its field hints,
# so the hot paths (replay, rebuild, import) do no typing introspection per event. Decoding has a
# fast path that accepts only exactly-typed JSON values; anything else goes to the reflective
# decoder below, which either accepts it as well or says precisely where the payload is wrong.


def event_to_payload(event: DomainEvent) -> dict[str, Any]:
    """The event as JSON-ready data: ISO dates, enum values, nested dataclasses as dicts,
    tuples as lists."""
    return _ENCODERS[type(event)](event)


def event_from_payload(event_type: str, payload: Mapping[str, Any]) -> Event:
    """The exact inverse of `event_to_payload` for an event of `event_type`."""
    try:
        decode = _DECODERS[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None
    try:
        return decode(payload)
    except _NotTheFastPath:
        event_class = EVENT_TYPES[event_type]
        return typing.cast(Event, _decode_dataclass(event_class, payload, event_type))


Encoder = typing.Callable[[Any], Any]
Decoder = typing.Callable[[Any], Any]


class _NotTheFastPath(Exception):
    """The fast decoder met a value it does not take as is; the reflective one judges it."""


HintKind = typing.Literal["optional", "tuple", "enum", "date", "dataclass", "plain"]


def _kind_of(hint: Any) -> HintKind:
    """What a field's type hint is, as the encoder and both decoders must agree on it."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return "optional"
    if origin is tuple:
        return "tuple"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "enum"
    if hint is date:
        return "date"
    if dataclasses.is_dataclass(hint):
        return "dataclass"
    return "plain"


def _compile_encoder(hint: Any) -> Encoder:
    match _kind_of(hint):
        case "optional":
            inner = _compile_encoder(_optional_inner(hint))
            return lambda value: None if value is None else inner(value)
        case "tuple":
            item = _compile_encoder(typing.get_args(hint)[0])
            return lambda value: [item(element) for element in value]
        case "enum":
            return lambda value: value.value
        case "date":
            return date.isoformat
        case "dataclass":
            return _compile_dataclass_encoder(hint)
    return lambda value: value


def _compile_dataclass_encoder(cls: type) -> Encoder:
    hints = _type_hints(cls)
    fields = [(f.name, _compile_encoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def encode(value: Any) -> dict[str, Any]:
        attributes = value.__dict__
        return {name: encode_field(attributes[name]) for name, encode_field in fields}

    return encode


IgnoredFields = Mapping[str, Any]
"""Fields a decoder reads as None without looking at them: per field name, True, or the fields
below it to ignore (`"*"` for every item of a list)."""


def compile_event_decoder(
    event_type: str, ignored: IgnoredFields, fallback: typing.Callable[[Any], Event]
) -> typing.Callable[[Any], Event]:
    """A decoder of `event_type`'s payloads that reads each `ignored` field as None, whatever
    the payload holds there (a sealed text not opened, or None once erased), and every other
    field as strictly as `event_from_payload`, at the same speed; a payload its fast path does
    not take goes to `fallback`. The event then holds None where its class says `str`: a record
    of what was, for folding, never a command's input."""
    return _compile_dataclass_decoder(EVENT_TYPES[event_type], ignored, fallback)


def _compile_decoder(hint: Any, ignored: Any = None) -> Decoder:
    match _kind_of(hint):
        case "optional":
            inner = _compile_decoder(_optional_inner(hint), ignored)
            return lambda value: None if value is None else inner(value)
        case "tuple":
            each = (ignored or {}).get("*")
            if each is True:
                return _tuple_decoder(lambda element: None)
            return _tuple_decoder(_compile_decoder(typing.get_args(hint)[0], each))
        case "enum":
            return _enum_decoder(hint)
        case "date":
            return _date_decoder
        case "dataclass":
            return _compile_dataclass_decoder(hint, ignored)
    return _plain_decoder(hint)


def _compile_dataclass_decoder(
    cls: type,
    ignored: IgnoredFields | None = None,
    fallback: typing.Callable[[Any], Any] | None = None,
) -> Decoder:
    """A decoder for `cls` written out as Python source, field by field, and compiled, as
    `dataclasses` writes `__init__`: no loop, and the type check of a str, int or bool field
    inline, so a payload costs little more than reading its values. `ignored` fields read None
    (see `compile_event_decoder`). With `fallback`, a payload the fast path does not take goes
    to it (else `_NotTheFastPath` is raised)."""
    ignored = ignored or {}
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_names": frozenset(names),
        "_NotTheFastPath": _NotTheFastPath,
        "_fallback": fallback,
    }
    body = [
        "    if type(data) is not dict or data.keys() != _names:",
        "        raise _NotTheFastPath",
    ]
    for index, name in enumerate(names):
        hint = hints[name]
        if ignored.get(name) is True:
            body.append(f"    value{index} = None")
        elif name in ignored:
            namespace[f"_decode{index}"] = _compile_decoder(hint, ignored[name])
            body.append(f"    value{index} = _decode{index}(data[{name!r}])")
        elif hint in (str, int, bool):
            namespace[f"_type{index}"] = hint
            body += [
                f"    value{index} = data[{name!r}]",
                f"    if type(value{index}) is not _type{index}:",
                "        raise _NotTheFastPath",
            ]
        else:
            namespace[f"_decode{index}"] = _compile_decoder(hint)
            body.append(f"    value{index} = _decode{index}(data[{name!r}])")
    fields = ", ".join(f"{name!r}: value{index}" for index, name in enumerate(names))
    body += [
        "    instance = _new(_cls)",  # see domain/frozen.py: plain records, no __init__ needed
        f"    instance.__dict__.update({{{fields}}})",
        "    return instance",
    ]
    if fallback is None:
        body = ["def decode(data):", *body]
    else:  # in one function, rather than one calling the other: every event folded comes here
        inside = [f"    {line}" for line in body]
        body = ["def decode(data):", "    try:", *inside, "    except _NotTheFastPath:"]
        body.append("        return _fallback(data)")
    exec("\n".join(body), namespace)  # the source holds field names and nothing else
    return typing.cast(Decoder, namespace["decode"])


def _tuple_decoder(item: Decoder) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _NotTheFastPath
        return tuple(item(element) for element in value)

    return decode


def _enum_decoder(enum_class: type[Enum]) -> Decoder:
    members = {member.value: member for member in enum_class}

    def decode(value: Any) -> Enum:
        if type(value) is not str or value not in members:
            raise _NotTheFastPath
        return members[value]

    return decode


def _date_decoder(value: Any) -> date:
    if type(value) is not str:
        raise _NotTheFastPath
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _NotTheFastPath from None


def _plain_decoder(hint: type) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not hint:
            raise _NotTheFastPath
        return value

    return decode


def _optional_inner(hint: Any) -> Any:
    (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return inner


# --- the reflective decoder: slow, and precise about what is wrong ---------------------------


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise EventPayloadError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    missing = [name for name in names if name not in data]
    unknown = sorted(set(data) - set(names))
    if missing or unknown:
        raise EventPayloadError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    return cls(**{name: _decode(hints[name], data[name], f"{where}.{name}") for name in names})


def _decode(hint: Any, value: Any, where: str) -> Any:
    match _kind_of(hint):
        case "optional":
            return _decode_optional(hint, value, where)
        case "tuple":
            return _decode_tuple(hint, value, where)
        case "enum":
            return _decode_scalar(hint, value, where)
        case "date":
            return _decode_date(value, where)
        case "dataclass":
            return _decode_dataclass(hint, value, where)
    return _decode_plain(hint, value, where)


def _decode_optional(hint: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    return _decode(_optional_inner(hint), value, where)


def _decode_tuple(hint: Any, value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise EventPayloadError(f"{where}: expected a list, got {type(value).__name__}")
    item_hint = typing.get_args(hint)[0]
    return tuple(_decode(item_hint, item, f"{where}[{index}]") for index, item in enumerate(value))


def _decode_scalar(enum_class: type[Enum], value: Any, where: str) -> Enum:
    try:
        return enum_class(value)
    except ValueError:
        raise EventPayloadError(f"{where}: {value!r} is not a {enum_class.__name__}") from None


def _decode_date(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise EventPayloadError(f"{where}: expected an ISO date string, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise EventPayloadError(f"{where}: {value!r} is not an ISO date") from None


def _decode_plain(hint: Any, value: Any, where: str) -> Any:
    # bool is a subclass of int: an int field must not accept true/false, nor a bool field 0/1.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise EventPayloadError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS_CACHE:
        _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return _HINTS_CACHE[cls]


_ENCODERS: Mapping[type, Encoder] = types.MappingProxyType(
    {event_class: _compile_dataclass_encoder(event_class) for event_class in EVENT_TYPES.values()}
)
_DECODERS: Mapping[str, Decoder] = types.MappingProxyType(
    {name: _compile_dataclass_decoder(event_class) for name, event_class in EVENT_TYPES.items()}
)
