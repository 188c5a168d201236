"""The statistics against an independent oracle computed from the case histories.

Random histories (receipt, extensions, pauses, restarts, decisions on time and late, reviews,
withdrawals, declines, merges, attributions, follow-ups) are played through the command path on
chosen business dates into a fresh subtree (head office -> branch -> sub-branch) per example;
the runner catches up; then every figure the service answers for several ranges and period kinds
(years served from yearly rollups, quarters and months across the year boundary, random ranges)
is compared with a count made here from the histories alone (DOMAIN.md "Statistics", "Taxonomy";
API.md statistics routes). Nothing of the service's statistics code is used by the oracle.
"""

from typing import Any

import asyncpg
from hypothesis import given
from statistics_oracle import (
    EXAMPLES,
    RANGES,
    Case,
    oracle,
    oracle_breakdowns,
    played,
    worlds,
)

from complaintcore.projections.statistics.queries import institution_statistics


def _scope(cases: list[Case], institutions: set[str]) -> list[Case]:
    return [c for c in cases if c.inst in institutions]


@EXAMPLES
@given(world=worlds())
async def test_figures_equal_the_oracle(
    pool: asyncpg.Pool, database_url: str, world: dict[str, Any]
) -> None:
    cases, root, _, as_of = await played(pool, database_url, world, "RV")

    subtrees = {
        root: {root, f"{root}-B", f"{root}-S"},
        f"{root}-B": {f"{root}-B", f"{root}-S"},
    }
    ranges = [*RANGES, (*world["random_range"], None), (*world["random_range"], "quarter")]
    for code, institutions in subtrees.items():
        scoped = _scope(cases, institutions)
        for a, b, kind in ranges:
            answer, _ = await institution_statistics(
                pool, code, sorted(institutions), a, b, kind, as_of
            )
            for period in [*answer["periods"], answer["total"]]:
                want = oracle(scoped, period["from"], period["to"], as_of)
                where = f"{code} {a}..{b} {kind} {period['period']}"
                assert period["figures"] == want, f"{where} as of {as_of}: {cases!r}"
                want_b = oracle_breakdowns(scoped, period["from"], period["to"], as_of, root)
                for name, entries in want_b.items():
                    assert period[name] == entries, f"{where} {name}"
