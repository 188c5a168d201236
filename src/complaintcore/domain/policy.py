"""Per-institution settings: the rules DOMAIN.md marks "policy", with its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from string import Formatter

from complaintcore.domain.taxonomy import DEFAULT_TAXONOMY, Taxonomy

_REGISTRATION_FIELDS = frozenset({"institution", "yyyymm", "serial"})


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
    """

    roll_past_holidays: bool = False
    due_soon_days: int = 3
    registration_format: str = "{institution}-{yyyymm}-{serial:06d}"
    taxonomy: Taxonomy = DEFAULT_TAXONOMY
    retention_years: int = 5

    def __post_init__(self) -> None:
        _check_whole_number("due_soon_days", self.due_soon_days, minimum=0)
        _check_whole_number("retention_years", self.retention_years, minimum=1)
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
