"""The peer baseline: the `eventsourcing` library (PyPI) on the bench's PostgreSQL.

Run as `python -m bench.peer PARTS_JSON SECONDS THREADS [WARMUP_SECONDS]`: each thread creates an
aggregate, then gives it 4 events, one save per event, again and again for WARMUP_SECONDS (not
counted) then SECONDS; prints one JSON line.
"""

import json
import os
import sys
import threading
import time

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Complaint(Aggregate):
    @event("Received")
    def __init__(self, institution: str) -> None:
        self.institution = institution
        self.notes: list[str] = []

    @event("Noted")
    def note(self, text: str) -> None:
        self.notes.append(text)


class Complaints(Application):
    pass


def main() -> None:
    parts, seconds, threads = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    warmup = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    os.environ.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        POSTGRES_DBNAME=parts["dbname"],
        POSTGRES_HOST=parts["host"],
        POSTGRES_PORT=parts["port"],
        POSTGRES_USER=parts["user"],
        POSTGRES_PASSWORD=parts["password"],
        POSTGRES_POOL_SIZE=str(threads),
        POSTGRES_MAX_OVERFLOW="0",
        CREATE_TABLE="y",
    )
    app = Complaints()
    counted_from = time.perf_counter() + warmup
    deadline = counted_from + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        mine: list[float] = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            complaint = Complaint("BR-01")
            app.save(complaint)
            if started >= counted_from:
                mine.append((time.perf_counter() - started) * 1000)
            for n in range(4):
                started = time.perf_counter()
                complaint.note(f"progress {n}")
                app.save(complaint)
                if started >= counted_from:
                    mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - counted_from
    print(json.dumps({"events": len(latencies), "seconds": elapsed, "latencies_ms": latencies}))


if __name__ == "__main__":
    main()
