"""The cost of encryption on the rebuild, as a same-run pair (TARGETS.md: "encryption costs
≤ 10 % of any figure ... shown ... by a same-run pair").

Two databases apart from the run's own, holding the same histories (copies of the imported
cases, as many events in each): one as the service stores them (personal fields sealed, a data
key per case), one as events were stored before encryption (plaintext, no key row, no
`cipher_suite`; DOMAIN.md: such events still read, so the rebuild takes both). Each rebuilt in
turn in interleaved rounds; the sealed rebuild's rate over the plaintext one's is what
encryption leaves of the figure (0.9x and above: a cost of 10 % or less). The difference holds
everything sealing brings to a rebuild: unwrapping a key per case, opening the fields the case
view masks, the blind index, and the longer payloads the database and the driver carry.
"""

import asyncio
from dataclasses import dataclass

import asyncpg

from bench import baselines, figures
from bench.database import BENCH_DATABASE, fresh_database


@dataclass(frozen=True)
class Twins:
    sealed_url: str
    plain_url: str


def twin_databases(server_url: str, source_url: str, source_ids: list[str], copies: int) -> Twins:
    """Fresh databases holding `copies` copies of the streams `source_ids` of `source_url`:
    sealed in one, plaintext in the other; vacuumed, as a store in service would be."""
    twins = Twins(
        fresh_database(server_url, f"{BENCH_DATABASE}_sealed"),
        fresh_database(server_url, f"{BENCH_DATABASE}_plain"),
    )
    opened = asyncio.run(figures.opened_histories(source_url, source_ids))  # read once, for both
    for url, sealed in ((twins.sealed_url, True), (twins.plain_url, False)):
        asyncio.run(figures.seed_reference_data(url))
        asyncio.run(figures.write_copies(url, opened, 1, copies, sealed=sealed))
        asyncio.run(baselines.settle(url, vacuum=("events",)))
    return twins


# what each twin's rebuild must agree on for the pair to compare like with like: every case view
# column (the masked complainant included) but the blind index, which each database keys with
# its own key, and the statistics rows whole
_CASE_VIEW_DIGEST = """
SELECT md5(string_agg((to_jsonb(v) - 'complainant_index')::text, ',' ORDER BY case_id))
FROM case_view AS v
"""
_STATISTICS_DIGEST = """
SELECT md5(string_agg(to_jsonb(s)::text, ',' ORDER BY case_id)) FROM case_statistics AS s
"""


async def _digests(url: str) -> tuple[str, str]:
    connection = await asyncpg.connect(url)
    try:
        return (
            await connection.fetchval(_CASE_VIEW_DIGEST),
            await connection.fetchval(_STATISTICS_DIGEST),
        )
    finally:
        await connection.close()


def twins_disagree(twins: Twins) -> str | None:
    """What the twins' rebuilt projections differ in (None: they agree, masked fields included)."""
    sealed, plain = asyncio.run(_digests(twins.sealed_url)), asyncio.run(_digests(twins.plain_url))
    differing = [
        table
        for table, mine, theirs in zip(("case_view", "case_statistics"), sealed, plain, strict=True)
        if mine is None or mine != theirs
    ]
    return ", ".join(differing) or None
