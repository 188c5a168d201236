"""Crash test of the webhook dispatcher with a real process kill (issue 15: "the dispatcher killed
mid-batch loses nothing and each delivery is re-sent at most once more"; README "Webhooks").

A `complaintcore serve` process sends a batch of deliveries to a receiver on loopback that
acknowledges the first few and then holds every further request open; the process is killed
with SIGKILL while those are in flight (claimed and leased, sent, no outcome recorded). A new
process is started: once the dead one's leases expire it sends them again. Every delivery
arrives, none more than twice, exactly the ones in flight at the kill twice, each re-send with
the same `delivery_id` and the same body bytes, in order per case."""

import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import asyncpg
import httpx

from complaintcore.infra.database import create_pool
from webhook_support import Receiver, insert_alert, serve_process, verify_signature, wait_for

CASES = 10
EVENTS = ("case.received", "case.major", "case.decided")  # per case, in this order
IN_FLIGHT = 8  # deliveries of the subscription a process sends at once
ANSWERED = 5  # the receiver acknowledges these, then holds every further request
# longer than the kill takes to come, and the shortest the settings take (the timeout + 10 s):
# the new process waits it out
LEASE_S = 13.0
CRASH_ENV = {
    # the dispatcher in the process the test kills with SIGKILL (by default it runs in serve's
    # runner child, which would get a SIGTERM when serve dies and stop in order)
    "COMPLAINTCORE_RUNNERS": "in-process",
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "COMPLAINTCORE_WEBHOOK_POLL": "0.05",
    "COMPLAINTCORE_WEBHOOK_TIMEOUT": "3",
    "COMPLAINTCORE_WEBHOOK_LEASE": str(LEASE_S),
    "COMPLAINTCORE_WEBHOOK_PER_SUBSCRIPTION": str(IN_FLIGHT),
    "COMPLAINTCORE_WEBHOOK_RETRY_BASE": "0.2",
    "COMPLAINTCORE_WEBHOOK_RETRY_CAP": "0.5",
}


async def statuses(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT delivery_id::text, status FROM webhook_deliveries")
    return {row["delivery_id"]: row["status"] for row in rows}


async def test_a_dispatcher_killed_mid_batch_loses_nothing_and_resends_each_at_most_once(
    module_database_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    pool = await create_pool(module_database_url, min_size=1, max_size=2)
    hold = threading.Event()
    receiver = Receiver(hold=hold, hold_from=ANSWERED).start()
    log_path = tmp_path / "serve.log"
    try:
        with serve_process(module_database_url, tmp_path, log_path, **CRASH_ENV) as (
            first,
            base_url,
        ):
            headers = {"Authorization": f"Bearer {tokens['admin']}"}
            created = httpx.post(
                f"{base_url}/v1/webhooks",
                json={"url": receiver.url, "institution": "HO", "events": ["*"]},
                headers=headers,
                timeout=30,
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            alert_ids: dict[str, list[int]] = defaultdict(list)
            for event in EVENTS:
                for n in range(CASES):
                    case_id = f"crash-{n}"
                    alert_ids[case_id].append(await insert_alert(pool, event, case_id, "BR-A"))
            # the first process: ANSWERED acknowledged, then IN_FLIGHT held open in its batch
            await wait_for(lambda: len(receiver.received) >= ANSWERED + IN_FLIGHT, timeout_s=15)
            time.sleep(0.2)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        received_before = Counter(r.json["delivery_id"] for r in receiver.received)
        at_kill = await statuses(pool)
        assert len(at_kill) == CASES * len(EVENTS)
        delivered_at_kill = {d for d, status in at_kill.items() if status == "delivered"}
        in_flight_at_kill = set(received_before) - delivered_at_kill
        assert len(in_flight_at_kill) >= IN_FLIGHT - 1  # killed mid-batch, with sends open
        assert len(delivered_at_kill) < len(at_kill)
        hold.set()  # the receiver answers again (the dead process's sockets are gone)

        with serve_process(module_database_url, tmp_path, log_path, **CRASH_ENV) as (second, _):
            started = time.monotonic()

            async def all_delivered() -> bool:
                return set((await statuses(pool)).values()) == {"delivered"}

            await wait_for(all_delivered, timeout_s=LEASE_S + 12)
            resent_after_s = time.monotonic() - started
            assert second.poll() is None
    finally:
        hold.set()
        receiver.stop()
        await pool.close()

    counts = Counter(r.json["delivery_id"] for r in receiver.received)
    assert set(counts) == set(at_kill)  # every delivery arrived: nothing lost
    assert max(counts.values()) <= 2  # none more than once more
    twice = {d for d, n in counts.items() if n == 2}
    assert twice == in_flight_at_kill  # exactly those the dead process had in flight
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for received in receiver.received:
        assert verify_signature(secret, received)
        bodies[received.json["delivery_id"]].add(received.body)
    assert all(len(sent) == 1 for sent in bodies.values())  # a re-send is the same body
    # in order per case: a case's first arrivals follow its alerts' order
    firsts: dict[str, list[str]] = defaultdict(list)
    for received in receiver.received:
        body = received.json
        if body["event"] not in firsts[body["case_id"]]:
            firsts[body["case_id"]].append(body["event"])
    assert all(firsts[case] == list(EVENTS) for case in alert_ids), firsts
    assert resent_after_s < LEASE_S + 12
    assert isinstance(first, subprocess.Popen) and first.returncode == -signal.SIGKILL
