"""What the store tests append: numbered events on streams of their own."""

import uuid

from complaintcore.events.model import EventMetadata, NewEvent


def event(n: int = 0) -> NewEvent:
    return NewEvent("Happened", {"n": n}, metadata=EventMetadata(actor_id="u1"))


def new_stream(prefix: str = "stream") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
