"""How long a case's personal data is kept (DOMAIN.md "Personal data", Retention).

Records are kept as long as the law requires (Art. 28), personal data no longer than its
purpose needs (PIPL Art. 19): policy `retention_years` (default 5) counted from the day the case
closed (`state.closed_on`). After that the data is erased (PIPL Art. 47).
"""

from datetime import date


def retention_ends_on(closed_on: date, retention_years: int) -> date:
    """The last day of retention: personal data is kept through it and may be erased from the
    day after. As the PRC Civil Code counts a period in years: the closing day is not counted
    (Art. 201) and the period's last day is the corresponding day `retention_years` later, or
    the last day of that month where it has none (Art. 202: a case closed on 29 February is
    kept through 28 February of a year that has no 29th)."""
    year = closed_on.year + retention_years
    try:
        return closed_on.replace(year=year)
    except ValueError:
        return closed_on.replace(year=year, day=28)


def retention_ended(closed_on: date, retention_years: int, on: date) -> bool:
    """Whether the retention of a case closed on `closed_on` is over on `on` (its last day
    passed), so that its personal data may be erased."""
    return on > retention_ends_on(closed_on, retention_years)
