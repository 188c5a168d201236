"""How long a case's personal data is kept (DOMAIN.md "Personal data", Retention).

Records are kept as long as the law requires (Art. 28), personal data no longer than its
purpose needs (PIPL Art. 19): policy `retention_years` (default 5) counted from the day the case
closed (`state.closed_on`). After that the data is erased (PIPL Art. 47).
"""

from datetime import date


def retention_ends_on(closed_on: date, retention_years: int) -> date:
    """The day retention ends and erasure becomes allowed: the same calendar day
    `retention_years` later. Years are calendar years, so a case closed on 29 February ends its
    retention on 28 February of a year that has no 29th (the last day of that month, as
    PRC Civil Code Art. 202 counts a period in years)."""
    year = closed_on.year + retention_years
    try:
        return closed_on.replace(year=year)
    except ValueError:
        return closed_on.replace(year=year, day=28)
