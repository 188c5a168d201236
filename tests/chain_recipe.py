"""The README's recipe for re-verifying a case's chain ("Verifying a chain yourself"), written
with the standard library alone, apart from the service's `events/hashing.py`: what a regulator
holding the events would write."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def recorded_at_as_hashed(text: str) -> str:
    """RFC 3339 in, `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC out."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recomputed_hash(event: dict[str, Any]) -> str:
    document = {
        "stream_id": event["stream_id"],
        "version": event["version"],
        "event_type": event["type"],
        "schema_version": event["schema_version"],
        "data": event["data"],
        "metadata": event["metadata"],  # as given: the members stored, as stored
        "recorded_at": recorded_at_as_hashed(event["recorded_at"]),
        "prev_hash": event["prev_hash"],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def first_broken_version(events: list[dict[str, Any]]) -> int | None:
    previous = GENESIS
    for expected_version, event in enumerate(events, start=1):
        if event["version"] != expected_version or event["prev_hash"] != previous:
            return expected_version
        if recomputed_hash(event) != event["hash"]:
            return expected_version
        previous = event["hash"]
    return None
