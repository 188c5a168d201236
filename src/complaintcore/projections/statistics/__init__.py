"""The per-branch statistics projection (DOMAIN.md "Statistics", Art. 26, 36), one module a job:

- `facts`: the facts row of a case (`statistics_row`), a pure function of its folded state, in
  the `case_statistics` table; the projection's `NAME` and `TABLE`.
- `dating`: which date each figure counts on, declared once for the bucket writer and the
  query builder alike.
- `buckets`: the monthly sums of the facts rows (and the handling-days histogram, the pause
  spans) and their writer, `upsert_statistics`, which moves them with the rows.
- `periods`: period kinds (month, quarter, half-year), their labels, the periods of a range, and
  which of a range's days come from whole-month buckets and which from the facts rows.
- `query_sql`: the SQL of one question (the counts, the handling days).
- `queries`: the figures per node and period (`query_figures`, `institution_statistics`),
  read in one snapshot.
- `csv_return`: the regulator's data return (`statistics_csv`), every cell neutralised.

"Open now" and "overdue now" are judged as of today by the domain's rules, mirrored in SQL in
projections/clock_sql.py.

The projection lags the feed: `ProjectionRunner` (projections/runner.py) keeps it, with its
checkpoint in `projection_checkpoints` written in the same transaction as the rows and the
buckets; projections/rebuild/ rebuilds it from the events alone.
"""

from complaintcore.projections.statistics.facts import NAME as NAME
from complaintcore.projections.statistics.facts import TABLE as TABLE
