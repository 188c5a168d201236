"""The cyclic garbage collector during a batch job (a rebuild's scan, a bulk import): off, with one
full collection every so many batches instead.

Why: such a job makes millions of short-lived objects and next to none in cycles (a scan of
80,000 cases left 6 objects for the collector to find, an import of 20,000 cases 631), and
reference counting frees the rest as each batch goes. The collector, triggered by allocations,
walked the page, the batch and the job's long-lived data again and again for nothing: at the
default thresholds a fifth of a scan worker's time, at (50,000, 20, 100) still 9 % of it; 17 % of
an import's time. The periodic full collection bounds what a cycle made by some future change
could hold. Only for a process doing the job alone: the collector is the process's.
"""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["collections_by_batch"]


@contextmanager
def collections_by_batch(every: int) -> Iterator[Callable[[], None]]:
    """The collector off inside; call the function yielded after each batch, and every `every`
    batches it runs a full collection. The collector is left as it was found."""
    if every < 1:
        raise ValueError("a full collection every 1 batch or more")
    enabled = gc.isenabled()
    gc.disable()
    batches = 0

    def batch_done() -> None:
        nonlocal batches
        batches += 1
        if batches % every == 0:
            gc.collect()

    try:
        yield batch_done
    finally:
        if enabled:
            gc.enable()
