"""Per-institution settings: the rules DOMAIN.md marks "policy", with its defaults, and how the
policy in force on a day is found from the versions set along an institution's lineage
(DOMAIN.md "Institution policy").

Resolution, a compliance officer's reading where DOMAIN.md is silent:

- A policy version is what an admin set at one node from its `effective_from` on: each value it
  gives overrides the node's ancestors; each value it leaves out is inherited. A version replaces
  the node's previous one whole: to stop overriding a value, set a version without it.
- At each node the version in force on a day is the one with the latest `effective_from` on or
  before that day, the later recorded (higher number) when two share that date: a change
  scheduled for the first of the month applies from then even if another was recorded for today
  since.
- Each value comes from the nearest node (the institution itself, then its parent, up to the head
  office) whose version in force sets it, else from DOMAIN.md's default.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from string import Formatter

from complaintcore.domain.taxonomy import DEFAULT_TAXONOMY, Taxonomy

_REGISTRATION_FIELDS = frozenset({"institution", "yyyymm", "serial"})
DEFAULT_SOURCE = "default"
EFFECTIVE_FROM_IN_PAST = "effective_from_in_past"


@dataclass(frozen=True)
class RedressLimits:
    """DOMAIN.md "Redress authority" (核决权限): the most redress, in fen, a principal of each role
    may decide without an approval (a head-office supervisor has no limit, whatever these say)."""

    staff: int = 100_000
    supervisor: int = 5_000_000

    def __post_init__(self) -> None:
        _check_whole_number("redress_limits_fen.staff", self.staff, minimum=0)
        _check_whole_number("redress_limits_fen.supervisor", self.supervisor, minimum=0)


@dataclass(frozen=True)
class InstitutionPolicy:
    """Settings an institution may change; every default is the one DOMAIN.md gives.

    Attributes:
        roll_past_holidays: DOMAIN.md "Deadlines": when on, a calendar-day due date that falls on
            a public holiday moves to the next working day (Civil Code Art. 203). Off by
            default, so the due date is exactly the calendar-day count of Art. 18 and Art. 43.
        due_soon_days: DOMAIN.md "Deadlines", clock status: a case with this many days or fewer
            left before its due date is `due_soon`.
        registration_format: DOMAIN.md "Receiving a complaint": the registration number
            `{institution}-{YYYYMM}-{serial}`, the serial restarting each month per institution
            (Art. 28 登记制度). A `str.format` template that must use exactly the fields
            `institution`, `yyyymm` and `serial`, so a number is unique per institution and month.
        taxonomy: DOMAIN.md "Taxonomy": the business types and causes complaints are filed under.
        retention_years: DOMAIN.md "Personal data", Retention: how many years after the day a
            case closed its personal data is kept (Art. 28; PIPL Art. 19) before it may be
            erased. At least 1: a case's data outlives its handling.
        redress_limits_fen: DOMAIN.md "Redress authority": each role's limit in fen.
    """

    roll_past_holidays: bool = False
    due_soon_days: int = 3
    registration_format: str = "{institution}-{yyyymm}-{serial:06d}"
    taxonomy: Taxonomy = DEFAULT_TAXONOMY
    retention_years: int = 5
    redress_limits_fen: RedressLimits = field(default_factory=RedressLimits)

    def __post_init__(self) -> None:
        _check_whole_number("due_soon_days", self.due_soon_days, minimum=0)
        _check_whole_number("retention_years", self.retention_years, minimum=1)
        if not isinstance(self.redress_limits_fen, RedressLimits):
            raise ValueError(
                f"redress_limits_fen must be RedressLimits, got {self.redress_limits_fen!r}"
            )
        _check_registration_format(self.registration_format)

    def registration_number(self, institution: str, month: date, serial: int) -> str:
        """The registration number of the `serial`-th complaint (1, 2, …) received in `month`.

        Only the year and month of `month` are used.
        """
        if not institution or any(character.isspace() for character in institution):
            raise ValueError(f"institution code {institution!r} is empty or contains spaces")
        if isinstance(serial, bool) or not isinstance(serial, int) or serial < 1:
            raise ValueError(f"serial must be an integer of 1 or more, got {serial!r}")
        return self.registration_format.format(
            institution=institution, yyyymm=f"{month.year:04d}{month.month:02d}", serial=serial
        )


def _check_whole_number(name: str, value: int, minimum: int) -> None:
    """An int of at least `minimum`; a bool is refused though Python counts it as an int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {minimum} or more, got {value}")


def _check_registration_format(template: str) -> None:
    try:
        fields = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"registration_format {template!r} is malformed: {error}") from None
    if fields != _REGISTRATION_FIELDS:
        expected = ", ".join(sorted(_REGISTRATION_FIELDS))
        found = ", ".join(sorted(fields)) or "none"
        raise ValueError(
            f"registration_format must use exactly the fields {expected}; found {found}"
        )
    try:
        template.format(institution="X", yyyymm="202001", serial=1)
    except (ValueError, TypeError) as error:
        raise ValueError(f"registration_format {template!r} is malformed: {error}") from None


DEFAULT_POLICY = InstitutionPolicy()

# The values a policy version may set, by their names in the API (dotted for the nested limits),
# each with how it is put into an `InstitutionPolicy`.
POLICY_VALUE_NAMES = (
    "roll_past_holidays",
    "due_soon_days",
    "retention_years",
    "redress_limits_fen.staff",
    "redress_limits_fen.supervisor",
    "taxonomy",
)
PolicyValueType = bool | int | Taxonomy


@dataclass(frozen=True)
class PolicySettings:
    """The values one version sets; None: not set there, inherited."""

    roll_past_holidays: bool | None = None
    due_soon_days: int | None = None
    retention_years: int | None = None
    staff_redress_limit_fen: int | None = None
    supervisor_redress_limit_fen: int | None = None
    taxonomy: Taxonomy | None = None
    """The business types and causes complaints are filed under from then on, all of them: a
    version replaces the list it inherits, never adds to it. Codes already stored keep
    counting in the statistics whatever a later list holds."""

    def __post_init__(self) -> None:
        if self.roll_past_holidays is not None and not isinstance(self.roll_past_holidays, bool):
            raise ValueError(
                f"roll_past_holidays must be true or false, got {self.roll_past_holidays!r}"
            )
        if self.taxonomy is not None and not isinstance(self.taxonomy, Taxonomy):
            raise ValueError(f"taxonomy must be a Taxonomy, got {self.taxonomy!r}")
        # the same checks as the policy's own, so a version that stores is one that applies
        self.applied_to(DEFAULT_POLICY)

    def values(self) -> dict[str, PolicyValueType]:
        """The values set, by name (`POLICY_VALUE_NAMES`)."""
        given = (
            self.roll_past_holidays,
            self.due_soon_days,
            self.retention_years,
            self.staff_redress_limit_fen,
            self.supervisor_redress_limit_fen,
            self.taxonomy,
        )
        return {
            name: value
            for name, value in zip(POLICY_VALUE_NAMES, given, strict=True)
            if value is not None
        }

    def applied_to(self, base: InstitutionPolicy) -> InstitutionPolicy:
        """`base` with the values set here."""
        return policy_with(base, self.values())


def policy_with(
    base: InstitutionPolicy, values: Mapping[str, PolicyValueType]
) -> InstitutionPolicy:
    """`base` with `values` (by `POLICY_VALUE_NAMES` name) put in; `ValueError` for a bad one."""
    limits = RedressLimits(
        staff=values.get("redress_limits_fen.staff", base.redress_limits_fen.staff),
        supervisor=values.get("redress_limits_fen.supervisor", base.redress_limits_fen.supervisor),
    )
    return InstitutionPolicy(
        roll_past_holidays=values.get("roll_past_holidays", base.roll_past_holidays),
        due_soon_days=values.get("due_soon_days", base.due_soon_days),
        registration_format=base.registration_format,
        taxonomy=values.get("taxonomy", base.taxonomy),
        retention_years=values.get("retention_years", base.retention_years),
        redress_limits_fen=limits,
    )


@dataclass(frozen=True)
class PolicyVersion:
    """One change of one node's policy: its `number` (1, 2, … per node, in recording order) and
    the day it takes effect."""

    institution: str
    number: int
    effective_from: date
    settings: PolicySettings

    @property
    def id(self) -> str:
        """The version's stable name, which an auditor looks up: `<institution>/v<number>`."""
        return f"{self.institution}/v{self.number}"


@dataclass(frozen=True)
class PolicyValue:
    """One value in force, with the node that set it (`default`: none did) and its version."""

    name: str
    value: PolicyValueType
    source: str
    version: str | None


@dataclass(frozen=True)
class ResolvedPolicy:
    """The policy in force at an institution on a day, and where each of its values comes from.

    `version` names what judged: the id of the version in force at each node of the lineage
    that has one, head office first, joined by `,` (`default` when none has), so the exact
    policy can be rebuilt from the stored versions."""

    on: date
    policy: InstitutionPolicy
    values: tuple[PolicyValue, ...]
    version: str

    def value_named(self, name: str) -> PolicyValue:
        """The value of setting `name` (one of `POLICY_VALUE_NAMES`) and where it comes from."""
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, PolicyValue]:
        # asked for on every decision (a bulk import's are many), and a policy is resolved once
        # for many cases
        return {value.name: value for value in self.values}


def resolve_policy(
    lineage: Sequence[str],
    versions: Iterable[PolicyVersion],
    on: date,
    base: InstitutionPolicy = DEFAULT_POLICY,
) -> ResolvedPolicy:
    """The policy in force on `on` at the last node of `lineage` (head office first), from the
    `versions` set at its nodes (others are ignored) over `base`'s values."""
    in_force = _versions_in_force(lineage, versions, on)
    chosen: dict[str, PolicyValue] = {}
    for node in lineage:  # head office first: a nearer node overwrites
        version = in_force.get(node)
        if version is None:
            continue
        for name, value in version.settings.values().items():
            chosen[name] = PolicyValue(name, value, node, version.id)
    defaults = _values_of(base)
    values = tuple(
        chosen.get(name, PolicyValue(name, defaults[name], DEFAULT_SOURCE, None))
        for name in POLICY_VALUE_NAMES
    )
    ids = [in_force[node].id for node in lineage if node in in_force]
    return ResolvedPolicy(
        on=on,
        policy=policy_with(base, {value.name: value.value for value in values}),
        values=values,
        version=",".join(ids) or DEFAULT_SOURCE,
    )


def _versions_in_force(
    lineage: Sequence[str], versions: Iterable[PolicyVersion], on: date
) -> dict[str, PolicyVersion]:
    """Per node of `lineage`, its version in force on `on`: the latest effective, then the last
    recorded."""
    nodes = set(lineage)
    in_force: dict[str, PolicyVersion] = {}
    for version in versions:
        if version.institution not in nodes or version.effective_from > on:
            continue
        current = in_force.get(version.institution)
        if current is None or _precedence(version) > _precedence(current):
            in_force[version.institution] = version
    return in_force


def _precedence(version: PolicyVersion) -> tuple[date, int]:
    return version.effective_from, version.number


def _values_of(policy: InstitutionPolicy) -> dict[str, PolicyValueType]:
    return {
        "roll_past_holidays": policy.roll_past_holidays,
        "due_soon_days": policy.due_soon_days,
        "retention_years": policy.retention_years,
        "redress_limits_fen.staff": policy.redress_limits_fen.staff,
        "redress_limits_fen.supervisor": policy.redress_limits_fen.supervisor,
        "taxonomy": policy.taxonomy,
    }


@dataclass(frozen=True)
class DueSoonDays:
    """`due_soon_days` in force at each institution on one day, for a query over many: the
    institutions of `by_institution` have their own, every other one `default`."""

    default: int = DEFAULT_POLICY.due_soon_days
    by_institution: Mapping[str, int] = field(default_factory=dict)

    def of(self, institution: str) -> int:
        return self.by_institution.get(institution, self.default)

    def others(self) -> dict[int, list[str]]:
        """The institutions whose days differ from the default, by their days."""
        groups: dict[int, list[str]] = {}
        for institution, days in sorted(self.by_institution.items()):
            if days != self.default:
                groups.setdefault(days, []).append(institution)
        return groups


def due_soon_days_on(
    parents: Mapping[str, str | None], versions: Iterable[PolicyVersion], on: date
) -> DueSoonDays:
    """Each institution's `due_soon_days` on `on` (`parents`: every code's parent), as
    `resolve_policy` gives it one institution at a time: the nearest node of its lineage whose
    version in force sets it, else the default."""
    in_force = _versions_in_force(list(parents), versions, on)
    setters = {
        node: version.settings.due_soon_days
        for node, version in in_force.items()
        if version.settings.due_soon_days is not None
    }
    if not setters:
        return DueSoonDays()
    found: dict[str, int | None] = {}

    def nearest(code: str) -> int | None:
        path = []
        node: str | None = code
        while node is not None and node not in found and len(path) <= len(parents):
            if node in setters:
                found[node] = setters[node]
                break
            path.append(node)
            node = parents.get(node)
        value = found.get(node) if node is not None else None
        for visited in path:
            found[visited] = value
        return value

    days = {code: value for code in parents if (value := nearest(code)) is not None}
    return DueSoonDays(DEFAULT_POLICY.due_soon_days, days)


class PolicyRefused(ValueError):
    """A policy change that may not be recorded; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_effective_from(effective_from: date, today: date) -> None:
    """A change takes effect today or later, never in the past: a case already judged under a
    policy is never judged anew (DOMAIN.md "Institution policy")."""
    if effective_from < today:
        raise PolicyRefused(
            EFFECTIVE_FROM_IN_PAST,
            f"effective_from {effective_from.isoformat()} is before today ({today.isoformat()})",
        )
