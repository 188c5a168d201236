"""The cipher suites a deployment chooses from (`COMPLAINTCORE_CIPHER_SUITE`), each an AEAD for
personal fields and wrapped keys plus the hash of its streams' chains:

- `aes-256-gcm`: AES-256 in GCM mode, SHA-256 chains (the default);
- `sm4-gcm`: SM4 (GB/T 32907-2016) in GCM mode (as in RFC 8998), SM3 (GB/T 32905-2016) chains, for
  deployments held to the PRC commercial cryptography rules (商用密码).

Why a suite is one object: a stream records the suite it was written under, and verification,
decryption and key wrapping must all follow that record; one name picks all of them together, so
an SM4 stream is never checked with SHA-256 or sealed with AES by mistake.

**Ciphertext layout** (`encrypt`): `suite byte | nonce (12 bytes) | ciphertext | tag (16 bytes)`.
The suite byte (1 for `aes-256-gcm`, 2 for `sm4-gcm`; a new layout takes a new byte) names the
suite, so a ciphertext says how to read it and `decrypt` refuses one of another suite rather than
failing obscurely. The suite byte is also authenticated: the AEAD's associated data is the suite
byte followed by the caller's associated data. Nonces are 96 random bits per encryption; with one
key per case (a few hundred encryptions at most) that stays far below GCM's limit of 2^32 random
nonces per key.

**Associated data** (`associated_data`) binds a personal field's ciphertext to its case, event
version and field path, so a ciphertext copied to another case, version or field fails to decrypt;
`associated_data_together` binds the ciphertext of an event's personal values sealed together to
its case, event version and the paths of those values, in order.

**Support**: SM4 in GCM mode came to `cryptography` in 42.0 (with OpenSSL 3.0 or later); the
wheels pinned in requirements.lock (cryptography 50.0.2, bundling OpenSSL 4.0) have it. A build
against a system OpenSSL without SM4 would not, so `suite_named` runs each suite's known-answer
test once (RFC 8998 A.1 for SM4-GCM, test case 16 of the GCM specification for AES-256-GCM) and
refuses an unusable suite with `SuiteUnavailable`, at start-up rather than at the first receipt.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AES_256_GCM",
    "DEFAULT_SUITE",
    "NONCE_BYTES",
    "SM4_GCM",
    "SUITE_NAMES",
    "TAG_BYTES",
    "CasePlaces",
    "CipherSuite",
    "CiphertextRejected",
    "SuiteUnavailable",
    "UnknownSuite",
    "associated_data",
    "associated_data_together",
    "suite_named",
    "suite_of_ciphertext",
]

AES_256_GCM = "aes-256-gcm"
SM4_GCM = "sm4-gcm"
DEFAULT_SUITE = AES_256_GCM
SUITE_NAMES = (AES_256_GCM, SM4_GCM)

NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER_BYTES = 1
_SEALED_FROM = _HEADER_BYTES + NONCE_BYTES
_SHORTEST = _SEALED_FROM + TAG_BYTES
_HEADERS = tuple(bytes((suite_byte,)) for suite_byte in range(256))  # a suite byte, as bytes

_ASSOCIATED_DATA_LABEL = b"complaintcore personal field v1\x00"
_TOGETHER_LABEL = b"complaintcore personal fields v2\x00"
_VERSION_RANGE = range(1, 2**63)
_VERSION_END = _VERSION_RANGE.stop


class CiphertextRejected(ValueError):
    """A ciphertext that does not decrypt: altered, truncated, of another suite, or presented with
    another key or associated data (another case, version or field). The message never holds
    plaintext or key material."""


class UnknownSuite(ValueError):
    """A suite name that is not one of `SUITE_NAMES`."""


class SuiteUnavailable(RuntimeError):
    """A known suite that the installed `cryptography` and OpenSSL cannot run correctly."""


@dataclass(frozen=True)
class _KnownAnswer:
    key: str
    nonce: str
    associated_data: str
    plaintext: str
    sealed: str  # ciphertext followed by the tag


@dataclass(frozen=True)
class CipherSuite:
    """One suite: its AEAD (`encrypt`, `decrypt`), its data keys and its chain hash."""

    name: str
    suite_byte: int
    key_bytes: int
    chain_hash_name: str
    _bind: Callable[[bytes], _Aead] = field(repr=False)
    _digest: Callable[[bytes], bytes] = field(repr=False)
    _hash_algorithm: Callable[[], hashes.HashAlgorithm] = field(repr=False)
    _known_answer: _KnownAnswer = field(repr=False)

    def new_data_key(self) -> bytes:
        """A fresh random key for this suite's AEAD (from the operating system's CSPRNG)."""
        return os.urandom(self.key_bytes)

    def encrypt(self, key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """`plaintext` sealed under `key`, bound to `associated_data` (see the module's layout)."""
        return self.bound(key).encrypt(plaintext, associated_data)

    def decrypt(self, key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        """The plaintext of `encrypt`'s output, or `CiphertextRejected` if anything differs."""
        return self.bound(key).decrypt(ciphertext, associated_data)

    def bound(self, key: bytes) -> BoundCipher:
        """This suite's AEAD under `key`, made once for many fields (one case's, for instance)."""
        if len(key) != self.key_bytes:
            self._check_key(key)
        return BoundCipher(self, self._bind(key))

    def chain_hash(self, data: bytes) -> str:
        """This suite's chain hash of `data`, in lower-case hex (SHA-256 or SM3, 64 digits)."""
        return self._digest(data).hex()

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """This suite's hash for HMAC and HKDF (`cryptography` objects, a new one per call)."""
        return self._hash_algorithm()

    def self_test(self) -> None:
        """Run this suite's published known-answer vector through `cryptography`, both ways.

        Raises `SuiteUnavailable` if the installed `cryptography`/OpenSSL lacks the algorithm or
        gives a wrong answer.
        """
        vector = self._known_answer
        key, nonce = bytes.fromhex(vector.key), bytes.fromhex(vector.nonce)
        associated = bytes.fromhex(vector.associated_data)
        plaintext, sealed = bytes.fromhex(vector.plaintext), bytes.fromhex(vector.sealed)
        try:
            aead = self._bind(key)
            right = aead.encrypt(nonce, plaintext, associated) == sealed
            right = right and aead.decrypt(nonce, sealed, associated) == plaintext
        except (UnsupportedAlgorithm, InvalidTag, ValueError) as error:
            raise SuiteUnavailable(
                f"cipher suite {self.name} is not available here: {error} ({_library_versions()})"
            ) from None
        if not right:
            raise SuiteUnavailable(
                f"cipher suite {self.name} fails its known-answer test ({_library_versions()})"
            )

    def _check_key(self, key: bytes) -> None:
        if len(key) != self.key_bytes:
            raise ValueError(f"{self.name} takes {self.key_bytes}-byte keys, not {len(key)} bytes")


class _Aead(Protocol):
    """An AEAD under one key: `cryptography`'s `AESGCM`, or `_Sm4Gcm` below."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes: ...


class BoundCipher:
    """A suite's AEAD under one key: `encrypt` and `decrypt` as the suite's, without building
    the AEAD for each field."""

    # two attributes: a rebuild makes one of these for every case, to open a field or two
    __slots__ = ("_aead", "suite")

    def __init__(self, suite: CipherSuite, aead: _Aead) -> None:
        self.suite = suite
        self._aead = aead

    def __repr__(self) -> str:  # never the key
        return f"BoundCipher({self.suite.name})"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        header = _HEADERS[self.suite.suite_byte]
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        suite_byte = self.suite.suite_byte
        if len(ciphertext) < _SHORTEST or ciphertext[0] != suite_byte:
            raise self._unread(ciphertext)
        try:
            return self._aead.decrypt(
                ciphertext[_HEADER_BYTES:_SEALED_FROM],
                ciphertext[_SEALED_FROM:],
                _HEADERS[suite_byte] + associated_data,
            )
        except InvalidTag:
            raise CiphertextRejected(
                f"{self.suite.name} ciphertext fails authentication: altered, or another key, "
                "case, version or field"
            ) from None

    def _unread(self, ciphertext: bytes) -> CiphertextRejected:
        if len(ciphertext) < _SHORTEST:
            return CiphertextRejected(
                f"ciphertext of {len(ciphertext)} bytes is too short ({_SHORTEST} at least)"
            )
        return CiphertextRejected(
            f"ciphertext names suite {_suite_label(ciphertext[0])}, not {self.suite.name}"
        )


class _Sm4Gcm:
    """SM4-GCM under one key, shaped like `AESGCM` (`cryptography` has no such class for SM4)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        # no one-shot AEAD class for SM4 in `cryptography`: the GCM mode object does the job
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(associated_data)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        if len(data) < TAG_BYTES:
            raise InvalidTag
        body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(associated_data)
        # the plaintext is returned only once `finalize` has checked the tag
        plaintext = decryptor.update(body)
        return plaintext + decryptor.finalize()


def associated_data(case_id: str, version: int, field_path: str) -> bytes:
    """The canonical associated data binding a personal field's ciphertext to its place.

    A fixed label, then the case id (UTF-8), the event version (8 bytes, big-endian) and the
    field path (UTF-8, the JSON Pointer of `domain/personal_data.py`, e.g. `/complainant/name`),
    each string preceded by its length in 4 bytes, so no two places share an encoding.
    """
    return CasePlaces(case_id).of(version, field_path)


def associated_data_together(case_id: str, version: int, field_paths: Sequence[str]) -> bytes:
    """The canonical associated data of an event's personal values sealed together (in one
    ciphertext, their values a JSON array in the order of `field_paths`).

    A label of its own (no text sealed one way opens the other), then the case id and the event
    version as `associated_data` has them, the number of paths (4 bytes, big-endian) and each
    path (UTF-8, preceded by its length in 4 bytes): so the ciphertext opens only at its case,
    at its version, with the same fields present in the same order.
    """
    return CasePlaces(case_id).of_together(version, field_paths)


class CasePlaces:
    """`associated_data` of one case's fields, its case part encoded once (a case's fields
    are sealed and opened together)."""

    __slots__ = ("_case_part", "_together_part")

    def __init__(self, case_id: str) -> None:
        if not isinstance(case_id, str) or not case_id:
            raise ValueError("case_id must be a non-empty string")
        case_bytes = case_id.encode()
        case_part = _LENGTH.pack(len(case_bytes)) + case_bytes
        self._case_part = _ASSOCIATED_DATA_LABEL + case_part
        self._together_part = _TOGETHER_LABEL + case_part

    def of(self, version: int, field_path: str) -> bytes:
        """The associated data of the field at `field_path` of the case's event `version`."""
        _check_version(version)
        if not isinstance(field_path, str):
            raise ValueError("field_path must be a string (a JSON Pointer)")
        return self._case_part + _VERSION.pack(version) + _path_part(field_path)

    def of_together(self, version: int, field_paths: Sequence[str]) -> bytes:
        """`associated_data_together` of the case's event `version` and `field_paths`."""
        if type(version) is not int or not 0 < version < _VERSION_END:
            _check_version(version)
        if isinstance(field_paths, str):
            raise ValueError("field_paths must be a sequence of strings (JSON Pointers)")
        return self._together_part + _VERSION.pack(version) + _paths_part(tuple(field_paths))


def _check_version(version: int) -> None:
    if type(version) is not int or version not in _VERSION_RANGE:
        raise ValueError(f"version must be an integer from 1 to 2**63 - 1, not {version!r}")


_VERSION = struct.Struct(">Q")
_LENGTH = struct.Struct(">I")


# a few hundred paths occur, each in many cases: encoded once
@functools.lru_cache(maxsize=4096)
def _path_part(field_path: str) -> bytes:
    path_bytes = field_path.encode()
    return _LENGTH.pack(len(path_bytes)) + path_bytes


# an event type's personal fields come in a few combinations, each in many cases: encoded once
@functools.lru_cache(maxsize=4096)
def _paths_part(field_paths: tuple[str, ...]) -> bytes:
    if not all(isinstance(path, str) for path in field_paths):
        raise ValueError("field_paths must be a sequence of strings (JSON Pointers)")
    return _LENGTH.pack(len(field_paths)) + b"".join(_path_part(path) for path in field_paths)


def suite_named(name: str) -> CipherSuite:
    """The suite called `name`, checked once per process by its known-answer test.

    Raises `UnknownSuite` for any other name, `SuiteUnavailable` if this installation cannot run
    it (see the module's "Support").
    """
    suite = _SUITES.get(name)
    if suite is None:
        raise UnknownSuite(f"unknown cipher suite {name!r}: choose one of {', '.join(SUITE_NAMES)}")
    _self_tested(name)
    return suite


def suite_of_ciphertext(ciphertext: bytes) -> CipherSuite:
    """The suite a ciphertext names by its first byte (`CiphertextRejected` if none)."""
    for suite in _SUITES.values():
        if ciphertext[:1] == bytes((suite.suite_byte,)):
            return suite_named(suite.name)
    first = _suite_label(ciphertext[0]) if ciphertext else "nothing (it is empty)"
    raise CiphertextRejected(f"ciphertext names suite {first}, which is not known")


@functools.cache
def _self_tested(name: str) -> None:
    # cached only on success: a failure raises, so the next call tries (and explains) again
    _SUITES[name].self_test()


def _suite_label(suite_byte: int) -> str:
    for suite in _SUITES.values():
        if suite.suite_byte == suite_byte:
            return suite.name
    return f"byte {suite_byte}"


def _library_versions() -> str:
    """For the refusal's message: which `cryptography` and which OpenSSL were found wanting."""
    import cryptography

    try:
        from cryptography.hazmat.backends.openssl import backend

        openssl = backend.openssl_version_text()
    except (ImportError, AttributeError):  # not a public API: the message must not depend on it
        openssl = "OpenSSL version unknown"
    return f"cryptography {cryptography.__version__}, {openssl}"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


_SUITES = {
    AES_256_GCM: CipherSuite(
        name=AES_256_GCM,
        suite_byte=1,
        key_bytes=32,
        chain_hash_name="sha-256",
        _bind=AESGCM,
        _digest=_sha256,
        _hash_algorithm=hashes.SHA256,
        # The Galois/Counter Mode of Operation (McGrew and Viega), test case 16
        _known_answer=_KnownAnswer(
            key="feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            nonce="cafebabefacedbaddecaf888",
            associated_data="feedfacedeadbeeffeedfacedeadbeefabaddad2",
            plaintext="d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            sealed="522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ),
    SM4_GCM: CipherSuite(
        name=SM4_GCM,
        suite_byte=2,
        key_bytes=16,
        chain_hash_name="sm3",
        _bind=_Sm4Gcm,
        _digest=_sm3,
        _hash_algorithm=hashes.SM3,
        # RFC 8998 appendix A.1 (SM4-GCM)
        _known_answer=_KnownAnswer(
            key="0123456789abcdeffedcba9876543210",
            nonce="00001234567800000000abcd",
            associated_data="feedfacedeadbeeffeedfacedeadbeefabaddad2",
            plaintext="aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
            "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa",
            sealed="17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
            "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
            "83de3541e4c2b58177e065a9bf7b62ec",
        ),
    ),
}
