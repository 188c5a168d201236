"""The personal fields of one case's payloads, sealed on their way into `events` and opened on
their way out (DOMAIN.md "Personal data", crypto-shredding).

A `StreamCipher` holds one case's suite and data key. The personal values of an event (the
catalogue of `domain.personal_data`) are sealed together into one ciphertext bound to the case, the
event's version and each field's JSON Pointer (`crypto.field_cipher`, format v2): the first of them,
in the code-point order of their pointers, holds the ciphertext, each other one a mark saying it is
sealed with the first. A ciphertext moved to another case, version or set of fields does not open.
Events sealed field by field (format v1, before 2026-12-06) are read as well. Every other field
stays as it is, readable for statistics and audit.

Once the case's key is destroyed the cipher has no key: every personal value reads as None, the
rest of the payload as stored (`domain.personal_data.erased`).

An empty text is stored as it is: an AEAD hides content, not length, so the ciphertext of `""`
would tell exactly as much, and most notices' agreed terms and many reasons are empty. It reads
back as `""` while the key exists, and as None once erased, like every personal value.

A stream written before encryption records no suite on its events and is read as stored, without
a cipher.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from complaintcore.crypto.field_cipher import SEALED_WITH_FIRST, TOGETHER_PREFIX, CaseFieldCipher
from complaintcore.crypto.suites import CipherSuite, CiphertextRejected
from complaintcore.domain.personal_data import (
    Path,
    filled_slots,
    map_personal,
    map_personal_in_place,
    map_some_personal,
    map_some_personal_in_place,
    path_pattern,
    personal_values,
)

__all__ = ["CASE_KEY_UNUSABLE", "CaseKeyUnusable", "SealedEventUnreadable", "StreamCipher"]

Payload = dict[str, Any]


class SealedEventUnreadable(CiphertextRejected):
    """A sealed payload that does not open: altered, or not this case's (never shown as text)."""


# A code of its own: the case's events are intact (its audit says so), its key table is not.
CASE_KEY_UNUSABLE = "case_key_unusable"


class CaseKeyUnusable(SealedEventUnreadable):
    """A sealed case whose data key cannot be had though its personal data was never erased:
    its row gone (deleted by hand, the key table restored from an older backup) or its wrapped
    bytes refused under the master key (altered). Nothing of it can be opened, and shown as
    erased it would be a lie (found by a review pass: a 500 on its document and commands, a 410
    "erased" on its reveal). The message names the case, never a key."""

    def __init__(self, case_id: str, why: str) -> None:
        super().__init__(f"case {case_id}: its data key {why}")
        self.case_id = case_id


class StreamCipher:
    """One case's suite and data key (None once destroyed: the case's personal data is erased).
    Not changed once made (no attribute is set after `__init__`)."""

    # a plain class with slots: a rebuild makes one for every case, and a frozen dataclass took
    # longer to make than the AEAD inside it
    __slots__ = ("_fields", "case_id", "data_key", "suite")

    def __init__(self, case_id: str, suite: CipherSuite, data_key: bytes | None) -> None:
        self.case_id = case_id
        self.suite = suite
        self.data_key = data_key
        # the suite's AEAD under the key, made once (None once erased): a rebuild makes a cipher
        # per case and opens a few of its fields at once
        self._fields = None if data_key is None else CaseFieldCipher(suite.bound(data_key), case_id)

    def __repr__(self) -> str:  # never the key
        state = "erased" if self.data_key is None else "held"
        return f"StreamCipher({self.case_id}, {self.suite.name}, {state})"

    @property
    def erased(self) -> bool:
        return self.data_key is None

    def seal(self, event_type: str, version: int, payload: Payload, owned: bool = False) -> Payload:
        """`payload` with its personal values sealed together at `version` (refused once
        erased); `owned`: the caller's own fresh payload, sealed in place rather than copied."""
        fields = self._fields
        if fields is None:
            raise ValueError(f"case {self.case_id}: its data key is destroyed, nothing is sealed")
        values = personal_values(event_type, payload, empty=False)
        paths = sorted(values)
        stored = dict.fromkeys(paths, SEALED_WITH_FIRST)
        if paths:
            together = [values[where] for where in paths]
            stored[paths[0]] = fields.seal_together(version, paths, together)

        def seal_one(where: str, value: Any) -> Any:
            return stored.get(where, value)

        if owned:
            return map_personal_in_place(event_type, payload, seal_one)
        return map_personal(event_type, payload, seal_one)

    def open(
        self,
        event_type: str,
        version: int,
        payload: Payload,
        only: Collection[Path] | None = None,
    ) -> Payload:
        """`payload` with each personal value opened (None once erased). With `only`, the personal
        values of other paths read as None: a reader that needs a few fields (a projection's
        masked complainant) is given those alone."""
        opened = self._opening(event_type, version, payload)

        def open_one(where: str, sealed: Any) -> Any:
            if opened is None or (only is not None and path_pattern(where) not in only):
                return None
            return opened(where, sealed)

        return map_personal(event_type, payload, open_one)

    def open_for_decoder(
        self,
        event_type: str,
        version: int,
        payload: Payload,
        kept: frozenset[Path],
        owned: bool = False,
    ) -> Payload:
        """`payload` with the personal values of `kept` opened and every other one left as
        stored (ciphertext): only for `domain.personal_data.event_keeping_personal`, which reads
        those as None without looking at them. A case view folds a receipt's four masked fields
        without copying its ten. `owned`: the caller's own payload (read for one fold), opened
        in place rather than copied along the way to them."""
        fields = self._fields
        if fields is None:
            raise ValueError(f"case {self.case_id}: its data key is destroyed, nothing opens")
        if owned:
            return self._opened_in_place(fields, event_type, version, payload, kept)
        opened = self._opening(event_type, version, payload)
        assert opened is not None, "a cipher with a key opens"
        return map_some_personal(event_type, payload, kept, opened)

    def _opened_in_place(
        self,
        fields: CaseFieldCipher,
        event_type: str,
        version: int,
        payload: Payload,
        kept: frozenset[Path],
    ) -> Payload:
        """`open_for_decoder` of an owned payload sealed together (format v2), in one walk of
        it: a rebuild opens every case's receipt this way (any other payload the general way)."""
        slots = filled_slots(event_type, payload, kept)
        if not slots:
            return payload
        paths, stored, containers, keys, keeping = zip(*slots, strict=True)
        first = stored[0]
        together = type(first) is str and first.startswith(TOGETHER_PREFIX)
        if not together or stored.count(SEALED_WITH_FIRST) != len(stored) - 1:
            # sealed field by field (format v1), or not as format v2 has it (which the general
            # way tells apart and names)
            opened = self._opening(event_type, version, payload)
            assert opened is not None, "a cipher with a key opens"
            return map_some_personal_in_place(event_type, payload, kept, opened)
        try:
            values = fields.unseal_together(version, paths, first)
        except CiphertextRejected as error:
            raise SealedEventUnreadable(str(error)) from None
        for value, container, key, keep in zip(values, containers, keys, keeping, strict=True):
            if keep:
                container[key] = value
        return payload

    def _opening(
        self, event_type: str, version: int, payload: Payload
    ) -> Callable[[str, Any], Any] | None:
        """What gives the plaintext of each stored personal value of `payload`, the event at
        `version` (an empty text is stored as it is); None once erased."""
        fields = self._fields
        if fields is None:
            return None
        stored = personal_values(event_type, payload, empty=False)
        paths = sorted(stored)
        first = stored[paths[0]] if paths else None
        if type(first) is str and first.startswith(TOGETHER_PREFIX):
            return self._opened_together(fields, version, stored, paths).get
        return self._opening_one_by_one(fields, version)

    def _opened_together(
        self, fields: CaseFieldCipher, version: int, stored: dict[str, Any], paths: list[str]
    ) -> dict[str, Any]:
        """The plaintext of each stored value of an event sealed together (format v2), by
        pointer: `paths`, in order (empty texts are stored as they are, and left out)."""
        # the ciphertext in the first, each other one marked (a mark in the first: an empty
        # ciphertext, refused as it is opened)
        if list(stored.values()).count(SEALED_WITH_FIRST) != len(paths) - 1:
            unmarked = [where for where in paths[1:] if stored[where] != SEALED_WITH_FIRST]
            if unmarked:
                raise SealedEventUnreadable(
                    f"{', '.join(unmarked)} of case {self.case_id} at version {version}: "
                    "not marked as sealed with the event's other personal values"
                )
        try:
            values = fields.unseal_together(version, paths, stored[paths[0]])
        except CiphertextRejected as error:
            raise SealedEventUnreadable(str(error)) from None
        return dict(zip(paths, values, strict=True))

    @staticmethod
    def _opening_one_by_one(fields: CaseFieldCipher, version: int) -> Callable[[str, Any], Any]:
        """What opens one value of an event sealed field by field (format v1)."""
        unseal = fields.unseal

        def opened(where: str, sealed: Any) -> Any:
            if sealed == "":
                return sealed
            try:
                return unseal(version, where, sealed)
            except CiphertextRejected as error:
                raise SealedEventUnreadable(str(error)) from None

        return opened
