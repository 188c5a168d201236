"""The regulator's data return (Art. 36): the statistics as CSV, one row per institution of a
subtree and period, and the rule that keeps every CSV cell the service writes from running as a
spreadsheet formula (`neutralise_csv_cell`).
"""

import csv
import io
import re
from datetime import date
from typing import Any

import asyncpg

from complaintcore.projections.statistics.periods import PeriodKind, periods_between
from complaintcore.projections.statistics.queries import CSV_FIGURES, flat_figures, query_figures

_SUBTREE_PAIRS = """
WITH RECURSIVE nodes (code) AS (
    SELECT code FROM institutions WHERE code = $1
    UNION
    SELECT child.code FROM institutions AS child JOIN nodes ON child.parent = nodes.code
),
closure (node, institution) AS (
    SELECT code, code FROM nodes
    UNION
    SELECT closure.node, child.code
    FROM closure JOIN institutions AS child ON child.parent = closure.institution
)
SELECT node, institution FROM closure WHERE $2 OR node = institution ORDER BY node, institution
"""

CSV_HEADER = ("institution", "institution_name", "rollup", "period", "from", "to", *CSV_FIGURES)

# OWASP "CSV Injection": a spreadsheet reads a cell starting with one of these as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_TEXT_MARK = "'"
_CSV_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def neutralise_csv_cell(cell: str) -> str:
    """`cell` made safe to open in a spreadsheet; every cell of every CSV the service writes
    goes through here.

    A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so it
    shows as text and never runs as a formula (OWASP's rule). A cell already starting with `'`
    gets one too, so the original is always the cell less one leading `'`. A plain decimal
    number (`-3`, `12.50`) is left as it is: a number, not a formula.
    """
    if cell.startswith((*CSV_FORMULA_STARTS, CSV_TEXT_MARK)) and not _CSV_NUMBER.fullmatch(cell):
        return CSV_TEXT_MARK + cell
    return cell


async def statistics_csv(
    pool: asyncpg.Pool,
    code: str,
    from_on: date,
    to_on: date,
    kind: PeriodKind | None,
    today: date,
    rollup: bool,
) -> str:
    """The regulator's data return: one row per institution of `code`'s subtree and period, each
    institution's own figures, or (rolled up) its whole subtree's."""
    pairs = await pool.fetch(_SUBTREE_PAIRS, code, rollup)
    scope = [(row["node"], row["institution"]) for row in pairs]
    names = dict(
        await pool.fetch(
            "SELECT code, name FROM institutions WHERE code = ANY($1::text[])",
            sorted({node for node, _ in scope}),
        )
    )
    by_node = await query_figures(pool, scope, from_on, to_on, kind, today, breakdowns=False)
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(map(neutralise_csv_cell, CSV_HEADER))
    nodes = sorted(names, key=lambda node: (node != code, node))
    for node in nodes:
        for period in periods_between(from_on, to_on, kind):
            figures = flat_figures(by_node.block(node, period.key).figures)
            cells = (
                node,
                names[node],
                "true" if rollup else "false",
                period.label,
                period.starts_on.isoformat(),
                period.ends_on.isoformat(),
                *(_csv_value(figure, figures[figure]) for figure in CSV_FIGURES),
            )
            writer.writerow(map(neutralise_csv_cell, cells))
    return output.getvalue()


def _csv_value(figure: str, value: Any) -> str:
    if value is None:
        return ""
    if figure == "handling_days_mean":
        return f"{value:.2f}"
    return str(value)
