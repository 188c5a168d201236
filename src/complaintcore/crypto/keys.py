"""The master key, and the data keys it wraps: each case's data key is stored only wrapped (sealed
under the master key), apart from the events, so destroying a case's wrapped key erases its
personal data and rotating the master key re-wraps keys without touching a single event.

**`KeyProvider`** is the seam: `key_id` names the master key, `wrap` seals a data key under it and
`unwrap` opens one. `FileKeyProvider` holds the master key from a file; an HSM or KMS can take its
place (below). `rewrap(old, new, wrapped)` is one step of a rotation.

**The master key file** (`COMPLAINTCORE_MASTER_KEY_FILE`; `create_master_key_file` writes one)
is UTF-8 text, `#` comment lines and blank lines aside, of exactly one line:

    complaintcore-master-key v1 <suite> <key id> <key>

`<suite>` is `aes-256-gcm` or `sm4-gcm` (the AEAD that wraps data keys);
`<key>` is the suite's key (32 or 16 bytes) in unpadded base64url; `<key id>` is the key's check
value: the first 8 bytes, in hex, of HMAC(key, "complaintcore master key check value v1") under
the suite's hash. It names the key without revealing it, and detects two failures at start-up:

- a damaged or hand-edited file: the key no longer matches its own check value;
- the wrong file: every wrapped key records the key id that wrapped it, so a service whose file
  holds another key is told, with both ids, before it tries to read a case (pass the ids the
  database records as `expected_key_ids`).

Both are `MasterKeyRejected`, and a file that is not there is `MasterKeyMissing`: one-line
messages naming the file, for the command line to print as they are (no stack trace).

**Wrapped keys** are `1 | length of key id (1 byte) | key id (ASCII) | ciphertext`, the
ciphertext being the data key sealed by the master key's suite with associated data naming the
key id (`wrapped_key_id` reads the id without the key). The key table should also keep the key id
in a column, so a rotation resumes by re-wrapping only the rows whose id is not the new one.

**Plugging in an HSM or KMS.** Write a class with the three members of `KeyProvider` and build
it where `FileKeyProvider` is built:

- `key_id`: the KMS's name for the key-encryption key, with its version (for example an alias
  and a version number), so that rotation and start-up checks can compare it;
- `wrap(data_key)`: one call to the KMS's encrypt (or wrap-key) operation with `data_key`, returning
  the blob the KMS answers (prefixed with what the provider needs to find the key again);
- `unwrap(wrapped)`: one call to its decrypt (or unwrap-key) operation; a blob from another key
  raises `MasterKeyRejected`, a tampered one `CiphertextRejected`.

The master key then never leaves the HSM; a data key exists unwrapped only in this process's memory
(in `key_cache.DataKeyCache`), never in the database, a log or a file. Both calls are synchronous:
for a remote KMS the store calls them through `asyncio.to_thread`, and the cache keeps them off the
path of most reads. A KMS that generates data keys itself (GenerateDataKey) fits the same seam:
generate locally with the suite and wrap, or add a `new_wrapped_data_key` later. The blind index
key is not derived from the master key: it is a random key kept wrapped like a data key
(`events/service_keys.py`), so any provider that wraps serves it too, and a rotation keeps it.

Unwrapped data keys are cached per process by `key_cache.DataKeyCache`, with care (see there).
"""

from __future__ import annotations

import base64
import binascii
import hmac as std_hmac
import os
import stat
import tempfile
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hmac

from complaintcore.crypto.suites import (
    DEFAULT_SUITE,
    SUITE_NAMES,
    CipherSuite,
    CiphertextRejected,
    suite_named,
)

__all__ = [
    "FILE_MAGIC",
    "FileKeyProvider",
    "KeyProvider",
    "MasterKeyError",
    "MasterKeyMissing",
    "MasterKeyRejected",
    "MasterKeyRetired",
    "create_master_key_file",
    "rewrap",
    "wrapped_key_id",
]

FILE_MAGIC = "complaintcore-master-key"
FILE_VERSION = "v1"
_MAX_FILE_BYTES = 4096  # a key file is one short line; anything larger is not one
_CHECK_VALUE_LABEL = b"complaintcore master key check value v1"
_CHECK_VALUE_BYTES = 8
_WRAP_FORMAT = 1
_WRAP_LABEL = b"complaintcore data key v1\x00"


class MasterKeyError(Exception):
    """The service cannot use its master key; the message is one line, naming the file."""


class MasterKeyMissing(MasterKeyError):
    """The master key file does not exist."""


class MasterKeyRejected(MasterKeyError):
    """The master key file is unreadable, malformed, damaged, or holds another key than needed."""


class MasterKeyRetired(MasterKeyRejected):
    """A running process's master key is no longer the current one: `keys rotate` moved the
    keys to another since it started, and it must be restarted with that key's file."""


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a master key it holds (a file, an HSM, a KMS)."""

    @property
    def key_id(self) -> str:
        """The name of the master key, recorded beside every key it wraps."""
        ...

    def wrap(self, data_key: bytes) -> bytes:
        """`data_key` sealed under the master key, to be stored."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key of `wrap`'s output: `MasterKeyRejected` if another master key wrapped
        it, `CiphertextRejected` if it was altered."""
        ...


class FileKeyProvider:
    """The master key held in a file (the module's format), checked as it is loaded."""

    def __init__(self, path: Path | str, expected_key_ids: Collection[str] = ()) -> None:
        """Load the key from `path`: `MasterKeyMissing` or `MasterKeyRejected` if unusable.

        `expected_key_ids`, when given, are the key ids the database records for its wrapped
        keys: a file whose key is not among them is rejected as the wrong one.
        """
        self.path = Path(path)
        suite, key_id, key = _read_key_file(self.path)
        if expected_key_ids and key_id not in expected_key_ids:
            expected = ", ".join(sorted(expected_key_ids))
            raise MasterKeyRejected(
                f"master key file {self.path} holds key {key_id}, but the data keys are wrapped "
                f"under {expected}: start with the file that holds that key"
            )
        self.suite = suite
        self._key_id = key_id
        self._aead = suite.bound(key)  # made once: a rebuild unwraps a key per case
        self._associated_data = _WRAP_LABEL + key_id.encode()
        self._wrapped_header = _wrapped_header(key_id)

    unwraps_in_process = True
    """Wrapping is a few microseconds here: callers need not move it off their thread."""

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self.path)!r}, key_id={self._key_id!r})"

    def __reduce__(self) -> tuple[type, tuple[Path, tuple[str, ...]]]:
        """Pickled as its path and key id (a rebuild's worker processes read the file
        themselves): the key never travels, and a file changed meanwhile is refused."""
        return FileKeyProvider, (self.path, (self._key_id,))

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, data_key: bytes) -> bytes:
        if not data_key:
            raise ValueError("an empty data key is not wrapped")
        sealed = self._aead.encrypt(data_key, self._associated_data)
        return _wrapped_header(self._key_id) + sealed

    def unwrap(self, wrapped: bytes) -> bytes:
        header = self._wrapped_header
        # wrapped under this key, as every case's is until a rotation: a rebuild unwraps them all
        if len(wrapped) > len(header) and wrapped.startswith(header):
            return self._aead.decrypt(wrapped[len(header) :], self._associated_data)
        key_id, sealed = _split_wrapped(wrapped)
        if key_id != self._key_id:
            raise MasterKeyRejected(
                f"this data key is wrapped under master key {key_id}, but master key file "
                f"{self.path} holds key {self._key_id}"
            )
        return self._aead.decrypt(sealed, self._associated_data)


def create_master_key_file(path: Path | str, suite_name: str = DEFAULT_SUITE) -> str:
    """Write a new master key file at `path`, mode 0600, and return its key id.

    Atomic: the key is written and flushed to a temporary file in the same folder, which is then
    linked at `path`, so `path` holds the whole key or nothing. Refuses (`FileExistsError`) if
    `path` exists: overwriting it could destroy the only copy of the key every case needs.
    """
    path = Path(path)
    suite = suite_named(suite_name)
    if path.exists() or path.is_symlink():
        raise _refuse_overwrite(path)
    key = suite.new_data_key()
    key_id = _check_value(suite, key)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        f"# complaintcore master key, created {created}. Keep it secret and keep a copy apart:\n"
        "# without it no case's personal data can be read.\n"
        f"{FILE_MAGIC} {FILE_VERSION} {suite.name} {key_id} {_b64encode(key)}\n"
    )
    folder = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=".master-key-", dir=folder)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)  # fails, rather than replaces, if `path` appeared meanwhile
        except FileExistsError:
            raise _refuse_overwrite(path) from None
    finally:
        os.unlink(temporary)
    _fsync_folder(folder)
    return key_id


def wrapped_key_id(wrapped: bytes) -> str:
    """The id of the master key that wrapped `wrapped` (`CiphertextRejected` if malformed)."""
    return _split_wrapped(wrapped)[0]


def rewrap(old_provider: KeyProvider, new_provider: KeyProvider, wrapped: bytes) -> bytes:
    """`wrapped` (under `old_provider`'s key) wrapped under `new_provider`'s key instead.

    One step of a rotation: the data key is unchanged, so every ciphertext of the case (and every
    event) stays as it is. Idempotent only through the key table's key id column: a rotation
    re-wraps the rows whose key id is not `new_provider.key_id`.
    """
    return new_provider.wrap(old_provider.unwrap(wrapped))


def _read_key_file(path: Path) -> tuple[CipherSuite, str, bytes]:
    lines = _key_file_lines(path)
    shape = f"`{FILE_MAGIC} {FILE_VERSION} <suite> <key id> <key>`"
    if len(lines) != 1:
        raise MasterKeyRejected(
            f"master key file {path} is not a complaintcore master key file: expected one line "
            f"{shape}, found {len(lines)}"
        )
    fields = lines[0].split()
    if len(fields) != 5 or fields[0] != FILE_MAGIC:
        raise MasterKeyRejected(
            f"master key file {path} is not a complaintcore master key file: expected {shape}"
        )
    _, version, suite_name, key_id, encoded = fields
    if version != FILE_VERSION:
        raise MasterKeyRejected(
            f"master key file {path} is of format {version}; this version reads {FILE_VERSION}"
        )
    if suite_name not in SUITE_NAMES:
        raise MasterKeyRejected(
            f"master key file {path} names cipher suite {suite_name!r}; "
            f"expected one of {', '.join(SUITE_NAMES)}"
        )
    suite = suite_named(suite_name)
    key = _b64decode(encoded)
    if key is None or len(key) != suite.key_bytes:
        raise MasterKeyRejected(
            f"master key file {path} is damaged: its key is not {suite.key_bytes} bytes of "
            "base64url"
        )
    if not std_hmac.compare_digest(_check_value(suite, key).encode(), key_id.encode()):
        raise MasterKeyRejected(
            f"master key file {path} is damaged or was edited: its key does not match its "
            f"check value {key_id}"
        )
    return suite, key_id, key


def _key_file_lines(path: Path) -> list[str]:
    try:
        # O_NONBLOCK: a FIFO named as the key file is refused below rather than waited on
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise MasterKeyRejected(f"master key file {path} is not a regular file")
            content = stream.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MasterKeyMissing(
            f"master key file {path} does not exist: set COMPLAINTCORE_MASTER_KEY_FILE to the "
            "file that holds the master key, or create one with `complaintcore keys create FILE`"
        ) from None
    except IsADirectoryError:
        raise MasterKeyRejected(f"master key file {path} is a directory") from None
    except OSError as error:
        raise MasterKeyRejected(
            f"master key file {path} cannot be read: {error.strerror or error}"
        ) from None
    if len(content) > _MAX_FILE_BYTES:
        raise MasterKeyRejected(f"master key file {path} is too large to be one")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise MasterKeyRejected(f"master key file {path} is not UTF-8 text") from None
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _check_value(suite: CipherSuite, key: bytes) -> str:
    mac = hmac.HMAC(key, suite.hash_algorithm())
    mac.update(_CHECK_VALUE_LABEL)
    return mac.finalize()[:_CHECK_VALUE_BYTES].hex()


def _wrapped_header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    if not 0 < len(encoded) < 256:
        raise ValueError("a key id is 1 to 255 ASCII characters")
    return bytes((_WRAP_FORMAT, len(encoded))) + encoded


def _split_wrapped(wrapped: bytes) -> tuple[str, bytes]:
    if len(wrapped) < 2 or wrapped[0] != _WRAP_FORMAT:
        raise CiphertextRejected("not a wrapped data key (unknown format)")
    end = 2 + wrapped[1]
    if len(wrapped) <= end:
        raise CiphertextRejected("not a wrapped data key (truncated)")
    try:
        key_id = wrapped[2:end].decode("ascii")
    except UnicodeDecodeError:
        raise CiphertextRejected("not a wrapped data key (its key id is not ASCII)") from None
    return key_id, wrapped[end:]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


def _refuse_overwrite(path: Path) -> FileExistsError:
    return FileExistsError(
        f"{path} already exists: a master key file is never overwritten (it may hold the only "
        "copy of the key every case needs); choose another path"
    )


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable too (where the platform allows opening a folder)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
