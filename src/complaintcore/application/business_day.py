"""Business dates are Asia/Shanghai calendar dates (DOMAIN.md "Deadlines")."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()
