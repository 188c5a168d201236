"""Personal fields of an event payload, sealed into text that takes their place in the payload.

Why text: stored events are JSON (jsonb), hashed into the chain as they are stored; a sealed field
must stay a JSON string so the payload keeps its shape, every non-personal field stays readable
for statistics and audit, and the chain covers the ciphertext exactly as stored.

**Sealed text**: `enc:v1:` followed by the suite's ciphertext (`suites.CipherSuite.encrypt`) in
unpadded base64url. The ciphertext's first byte names the suite; the associated data is
`suites.associated_data(case_id, version, path)`, so the text decrypts only under its case's key,
at its event version and field path. The plaintext is the field's value as JSON (orjson), so a
value of any JSON type (a string, a list of strings, an object, a number, a bool, None) comes back
as it went in; tuples come back as lists, and types orjson writes in a JSON form of their own (an
enum, a UUID) come back in that form.

**Sealed together** (format v2, what the service writes since 2026-12-06; `seal_together`): an
event's personal values are sealed in one ciphertext, the JSON array of the values in the order of
their paths, whose associated data (`suites.associated_data_together`) names the case, the event
version and every path in that order. `events.stream_cipher` orders the paths by code point and
stores `enc:v2:` and the ciphertext (unpadded base64url) in the first, `enc:v2:` alone
(`SEALED_WITH_FIRST`) in each other one. One AEAD call and one
base64 text per event rather than per field: a receipt seals ten fields, and a rebuild opens four
of them for every case. Every value is still bound to its case, version and field: moved, dropped,
added or reordered, the ciphertext no longer opens. Format v1 (`enc:v1:`, one ciphertext per field,
as above) is still read: stored events are never rewritten.

**Telling ciphertext from legacy plaintext.** `is_sealed` answers from the prefix alone: any text
that starts `enc:v<digits>:` counts as sealed, so a damaged or future-format ciphertext is reported
by `unseal` (`CiphertextRejected`) and never shown as if it were text. The authority on whether a
stream's fields are sealed at all is the suite the stream records (streams written before
encryption record none): a legacy free text that happens to start with `enc:v1:` is read as text
because its stream says so, not because of this check.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import orjson

from complaintcore.crypto.suites import (
    BoundCipher,
    CasePlaces,
    CipherSuite,
    CiphertextRejected,
)

__all__ = [
    "SEALED_PREFIX",
    "SEALED_WITH_FIRST",
    "TOGETHER_PREFIX",
    "CaseFieldCipher",
    "is_sealed",
    "seal",
    "sealed_suite_byte",
    "unseal",
]

SEALED_PREFIX = "enc:v1:"
TOGETHER_PREFIX = "enc:v2:"
SEALED_WITH_FIRST = TOGETHER_PREFIX
"""The text at each personal value of an event sealed with the event's first one (format v2)."""
_ANY_SEALED_FORMAT = re.compile(r"enc:v[0-9]+:")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

# orjson writes these natively; passed through, they reach `default` and are refused, since they
# would come back as strings rather than as the value sealed
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def seal(suite: CipherSuite, key: bytes, case_id: str, version: int, path: str, value: Any) -> str:
    """`value` (JSON-able) sealed under the case's `key`, bound to `case_id`, `version`, `path`."""
    return CaseFieldCipher(suite.bound(key), case_id).seal(version, path, value)


def unseal(
    suite: CipherSuite, key: bytes, case_id: str, version: int, path: str, sealed: str
) -> Any:
    """The value `seal` sealed, or `CiphertextRejected` naming the place if it does not open."""
    return CaseFieldCipher(suite.bound(key), case_id).unseal(version, path, sealed)


class CaseFieldCipher:
    """`seal` and `unseal` for the many fields of one case: its AEAD and the case's part of
    the associated data made once (a rebuild opens a few fields of every case)."""

    __slots__ = ("_cipher", "_places", "case_id")

    def __init__(self, cipher: BoundCipher, case_id: str) -> None:
        self._cipher = cipher
        self._places = CasePlaces(case_id)
        self.case_id = case_id

    def __repr__(self) -> str:  # never the key
        return f"CaseFieldCipher({self.case_id}, {self._cipher.suite.name})"

    def seal(self, version: int, path: str, value: Any) -> str:
        """`value` sealed alone (format v1), bound to this case, `version` and `path`."""
        plaintext = _json(value, path)
        ciphertext = self._cipher.encrypt(plaintext, self._places.of(version, path))
        return _text(SEALED_PREFIX, ciphertext)

    def unseal(self, version: int, path: str, sealed: str) -> Any:
        """The value `seal` sealed at `version` and `path` (`CiphertextRejected` naming them)."""
        try:
            plaintext = self._cipher.decrypt(_ciphertext(sealed), self._places.of(version, path))
            return _loaded(plaintext)
        except CiphertextRejected as error:
            raise CiphertextRejected(f"{_place(self.case_id, version, path)}: {error}") from None

    def seal_together(self, version: int, paths: Sequence[str], values: Sequence[Any]) -> str:
        """`values` (of the fields at `paths`, in that order) sealed in one text (format v2)."""
        if len(paths) != len(values) or not paths:
            raise ValueError("seal_together takes one path per value, and one value at least")
        plaintext = _json(list(values), paths)
        ciphertext = self._cipher.encrypt(plaintext, self._places.of_together(version, paths))
        return _text(TOGETHER_PREFIX, ciphertext)

    def unseal_together(self, version: int, paths: Sequence[str], sealed: str) -> list[Any]:
        """The values `seal_together` sealed at `version` and `paths`, in their order."""
        try:
            associated = self._places.of_together(version, paths)
            values = _loaded(self._cipher.decrypt(_ciphertext(sealed, TOGETHER_PREFIX), associated))
            if type(values) is not list or len(values) != len(paths):
                raise CiphertextRejected("authentic, but not the values of these fields")
            return values
        except CiphertextRejected as error:
            raise CiphertextRejected(f"{_places(self.case_id, version, paths)}: {error}") from None


def _json(value: Any, where: str | Sequence[str]) -> bytes:
    """`value` as JSON; `where`: the path (or paths) named if it is not a JSON value."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS, default=_refuse)
    except orjson.JSONEncodeError as error:
        place = where if isinstance(where, str) else ", ".join(where)
        raise TypeError(f"{place}: only JSON values are sealed ({error})") from None


def _text(prefix: str, ciphertext: bytes) -> str:
    return prefix + base64.urlsafe_b64encode(ciphertext).rstrip(b"=").decode("ascii")


def _loaded(plaintext: bytes) -> Any:
    try:
        return orjson.loads(plaintext)
    except orjson.JSONDecodeError:  # authentic yet not JSON: only if the key wrote it so
        raise CiphertextRejected("authentic, but not a sealed JSON value") from None


def _place(case_id: str, version: int, path: str) -> str:
    return f"{path} of case {case_id} at version {version}"


def _places(case_id: str, version: int, paths: Sequence[str]) -> str:
    return f"{', '.join(paths)} of case {case_id} at version {version}, sealed together"


def is_sealed(value: object) -> bool:
    """Whether `value` is sealed text (by its `enc:v<n>:` prefix only; see the module's note)."""
    return isinstance(value, str) and _ANY_SEALED_FORMAT.match(value) is not None


def sealed_suite_byte(sealed: str) -> int:
    """The suite byte a sealed text's ciphertext starts with, in either format (the first value
    of an event's sealed together; `CiphertextRejected` if unread)."""
    together = isinstance(sealed, str) and sealed.startswith(TOGETHER_PREFIX)
    try:
        return _ciphertext(sealed, TOGETHER_PREFIX if together else SEALED_PREFIX)[0]
    except CiphertextRejected as error:
        raise CiphertextRejected(f"sealed text: {error}") from None


def _ciphertext(sealed: object, prefix: str = SEALED_PREFIX) -> bytes:
    # the common case: the prefix, then only base64url characters, canonically ended; in the
    # standard alphabet, with the standard's `+`, `/` and `=` made characters of neither, the
    # strict decoder refuses any other
    if isinstance(sealed, str) and sealed.startswith(prefix) and sealed.isascii():
        encoded = sealed.encode("ascii")[len(prefix) :]
        unpadded = len(encoded) % 4
        if encoded and encoded[-1] in _CANONICAL_LAST[unpadded]:
            standard = encoded.translate(_URLSAFE_TO_STANDARD) + _PADDING[unpadded]
            try:
                return binascii.a2b_base64(standard, strict_mode=True)
            except binascii.Error:
                pass
    return _refused_ciphertext(sealed, prefix)


def _refused_ciphertext(sealed: object, prefix: str) -> bytes:
    """What is wrong with a text `_ciphertext` did not take (`CiphertextRejected`)."""
    if not isinstance(sealed, str) or not sealed.startswith(prefix):
        found = _ANY_SEALED_FORMAT.match(sealed) if isinstance(sealed, str) else None
        if found:
            raise CiphertextRejected(f"sealed format {found.group()!r} is not known here")
        raise CiphertextRejected(f"not sealed text (no {prefix!r} prefix)")
    text = sealed[len(prefix) :]
    if not text:
        raise CiphertextRejected("sealed text is empty")
    if len(text) % 4 == 1 or not _BASE64URL.fullmatch(text):
        raise CiphertextRejected("sealed text is not unpadded base64url")
    # the alphabet and length are right: one text per ciphertext, so the unused low bits of the
    # last character must be zero
    raise CiphertextRejected("sealed text is not canonical base64url")


_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")
# One text per ciphertext: the last character of a group of 2 carries 4 unused bits, of a group
# of 3, 2, which must be zero; a group of 1 is never whole. By the length modulo 4, the
# characters a text may end with.
_CANONICAL_LAST = tuple(
    frozenset(
        character
        for value, character in enumerate(_URLSAFE)
        if unused is not None and not value & unused
    )
    for unused in (0, None, 0b1111, 0b11)
)


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")
