"""Registration numbers `{institution}-{YYYYMM}-{serial}`: per institution and month, no gaps, no
duplicates, even under concurrent receipts.

The serial is taken inside the receipt's own transaction: a receipt that fails returns its serial
with the rollback, and concurrent receipts for one institution and month queue on the counter
row's lock until the one ahead commits or rolls back.
"""

from datetime import date

import asyncpg

_NEXT_SERIAL = """
INSERT INTO registration_serials (institution, month, last_serial) VALUES ($1, $2, 1)
ON CONFLICT (institution, month)
DO UPDATE SET last_serial = registration_serials.last_serial + 1
RETURNING last_serial
"""


async def next_serial(connection: asyncpg.Connection, institution: str, received_on: date) -> int:
    month = received_on.strftime("%Y%m")
    return await connection.fetchval(_NEXT_SERIAL, institution, month)
