"""The command path's kept states hold a case's personal data in plaintext: kept no longer than
the case's data key is cached, so an erasure in another process leaves this one's memory too."""

from complaintcore.application.complaint_service import KEPT_STATE_MAX_AGE_S, KeptStates
from complaintcore.crypto.key_cache import DataKeyCache
from complaintcore.domain.state import INITIAL
from testsupport import ManualClock


def test_a_state_is_kept_as_long_as_a_data_key_and_no_longer() -> None:
    assert DataKeyCache().max_age_seconds == KEPT_STATE_MAX_AGE_S
    clock = ManualClock()
    kept = KeptStates(capacity=10, max_age_seconds=300, clock=clock)
    kept.keep("case-1", 1, "h1", INITIAL, "aes-256-gcm")

    clock.now += 299
    assert kept.get("case-1") == (1, "h1", INITIAL, "aes-256-gcm")
    clock.now += 1
    assert kept.get("case-1") is None
    assert len(kept) == 0


def test_an_expired_state_leaves_memory_when_another_case_is_kept() -> None:
    clock = ManualClock()
    kept = KeptStates(capacity=10, max_age_seconds=300, clock=clock)
    kept.keep("erased-elsewhere", 1, "h1", INITIAL, None)
    clock.now += 200
    kept.keep("busy", 1, "h2", INITIAL, None)
    clock.now += 150

    kept.keep("another", 1, "h3", INITIAL, None)

    assert len(kept) == 2  # the first one, 350 s old, is gone without being asked for
    assert kept.get("busy") is not None


def test_a_case_kept_again_starts_its_age_again_and_the_oldest_go_first_beyond_capacity() -> None:
    clock = ManualClock()
    kept = KeptStates(capacity=2, max_age_seconds=300, clock=clock)
    kept.keep("a", 1, "h1", INITIAL, None)
    kept.keep("b", 1, "h2", INITIAL, None)
    clock.now += 250
    kept.keep("a", 2, "h3", INITIAL, None)  # its next command

    kept.keep("c", 1, "h4", INITIAL, None)
    assert kept.get("b") is None  # the oldest kept, out beyond capacity
    clock.now += 100
    assert kept.get("a") == (2, "h3", INITIAL, None)
