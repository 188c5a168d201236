"""Batch rebuild of projections from the events alone (`complaintcore projections rebuild`).

Each projection (`case_view`, `statistics`) is replayed into a fresh table and swapped in
atomically; queries keep answering from the live table until the swap, which holds its lock for
a moment only.

The protocol, for one projection
--------------------------------
0. **Start** (or resume, see below). Take the rebuild's own advisory lock (two-int form, another
   namespace than the runners'), so two rebuilds of one projection never run at once. Note S,
   the feed position up to which every event is committed (`feed_complete_up_to`), and create
   `<table>_rebuild` like the live table but without its indexes. A row in
   `projection_rebuilds` remembers S and the phase; split the stream ids into N contiguous
   ranges holding about as many cases each (`percentile_disc` over the stream ids of the
   receipts at or below S, compared by PostgreSQL, never by Python, so both sides agree on the
   collation) and give each range a row in `projection_rebuild_partitions`, which remembers its
   bounds and the last case written in it. N is `RebuildSettings.scan_partitions`, by default
   the number of scan workers; a resumed scan keeps the ranges it began with.
1. **Scan**: each range is scanned by a worker process of its own (spawned; one asyncio loop each),
   all at once; with one worker, or one range, the ranges are scanned in this process, one after
   the other. A range's scan reads its events at or below S ordered by (stream_id, version), in
   keyset pages on the unique (stream_id, version) index bounded by the range, folds one case at a
   time, and writes the rows with COPY in batches. Each batch commits with its range's row (last
   case written, events done), so an interrupted scan (Ctrl-C, a crash) resumes each range after
   the last case it wrote; the row's update is guarded by the last case the scan expects there, so
   a batch from a scan that should no longer run (an orphaned worker whose range another scan has
   moved on) rolls back instead of writing a case twice. Memory stays flat in each process whatever
   the number of events: two pages of events, the case being folded and two batches of rows
   (nothing is kept per case once its row is written). Projections rebuilt together share the scan:
   each case is decoded and folded once and gives a row to each new table (folding is most of a
   rebuild's time). In each range's scan the next page is read on a second connection, and a batch
   is written, while the page in hand is folded, so the database's part overlaps the fold. The
   parent process reports progress from the ranges' rows (read every `progress_poll` seconds); when
   it is interrupted, or a worker fails, it asks the workers to stop (each lets its batch in flight
   commit) and waits for them, then raises the interruption, or `RebuildScanFailed` naming the
   range and the worker's error. A worker whose parent died stops at its next page.
2. **Index**: vacuum and analyze each new table, then build the live table's constraints and
   indexes on it (under names ending `_rb`), after the bulk load, which is much faster than
   maintaining them row by row; every projection's tables at once, their statements side by
   side on a connection per core (`tables.build_side_by_side`).
3. **Catch up**, without locks: re-fold every case with events after the position the new table
   is at, window by window, until it is close behind, committing the position reached each time.
4. **Swap**, in one transaction:
   - `case_view` is written by the commands themselves: lock the live table (ACCESS EXCLUSIVE,
     so a command waits at its upsert and readers wait a moment), re-fold the cases with
     events after the position reached (every committed command is visible now, and none can
     commit a row until the swap is done), drop the live table, rename the new one and its
     indexes. A command that was waiting then upserts into the new table (PostgreSQL resolves
     the name again after the wait).
   - `statistics` follows the feed with a checkpoint: lock the checkpoint row (the runner's
     batch waits at its first statement), catch up to the checkpoint C if the runner is ahead,
     swap as above and set the checkpoint to max(C, the new table's position), so the runner
     carries on from exactly what the new table holds (it notices the moved checkpoint).
   The progress row (and its ranges' rows with it) is deleted in the same transaction.

The statistics keep monthly buckets beside their facts rows (projections/statistics/buckets.py):
tables derived from the rows, rebuilt alongside and swapped in the same transaction. Each
range's scan sums the buckets of the rows it writes in memory (one entry per institution, month
and key, not per case) and hands the sums back to the parent at its end (pickled once: their
size grows with months and keys, not cases); the parent adds them up and writes them with COPY,
with the phase change. A resumed scan first sums the rows written before. Catch-up writes rows
the way the runner does, moving the buckets.

Rows are made by each projection's `make_record`, called once per range scan (in the worker
that scans it) and once before the catch-up, never per case: the case view's reads the blind
index's key (`service_keys`, unwrapped with `RebuildSettings.key_provider`) on the scan's own
connection, so every worker hashes identity documents under the key the commands use and a
rebuilt `complainant_index` equals the live one; the key itself never crosses a process boundary.

Resuming: running the command again finds the progress row and carries on at its phase (a scan:
each range after its last case written). `--restart` throws it away and starts over; so does a
change of the live table's columns since the rebuild began.

Where each part lives
---------------------
- `protocol`: what a rebuildable projection is (`RebuildTarget`, `TARGETS`), `Progress`, settings;
- `ranges`: the stream ids split into ranges, and the ranges' rows;
- `jobs`: the rebuild's progress row (phase, start position, how far catch-up got);
- `tables`: the new tables: created, written, indexed, renamed into the live ones' place;
- `scan`: one range's scan (pages read ahead, cases folded, rows written in batches);
- `workers`: the ranges' scans in worker processes, and the parent's watch over them;
- `swap`: steps 3 and 4 for one projection (catch up, swap);
- `rebuilder`: the whole, from `rebuild()`: groups, start or resume, the shared scan, results.
"""

from complaintcore.projections.rebuild.jobs import RebuildJob
from complaintcore.projections.rebuild.protocol import (
    TARGETS,
    DerivedTables,
    Progress,
    RebuildSettings,
    RebuildTarget,
    SilentProgress,
    default_scan_workers,
)
from complaintcore.projections.rebuild.ranges import ScanRange, ranges_split_at, split_stream_ids
from complaintcore.projections.rebuild.rebuilder import (
    RebuildAlreadyRunning,
    Rebuilder,
    RebuildResult,
    StandbyBehind,
    rebuild,
)
from complaintcore.projections.rebuild.scan import (
    RangeScan,
    RangeScanOutcome,
    RangeScanTask,
    RebuildScanFailed,
    ScanRangeTaken,
)
from complaintcore.projections.rebuild.workers import scan_range_in_worker

__all__ = [
    "TARGETS",
    "DerivedTables",
    "Progress",
    "RangeScan",
    "RangeScanOutcome",
    "RangeScanTask",
    "RebuildAlreadyRunning",
    "RebuildJob",
    "RebuildResult",
    "RebuildScanFailed",
    "RebuildSettings",
    "RebuildTarget",
    "Rebuilder",
    "ScanRange",
    "ScanRangeTaken",
    "SilentProgress",
    "StandbyBehind",
    "default_scan_workers",
    "ranges_split_at",
    "rebuild",
    "scan_range_in_worker",
    "split_stream_ids",
]
