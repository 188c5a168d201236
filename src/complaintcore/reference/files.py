"""Reading the files a user names on the command line: the reference data of `institutions load`
and `calendar load` (JSON or CSV), and the JSON Lines of `import`.

Every such file is opened by `open_user_file`, and only there: it must be a regular file (a
device such as `/dev/zero`, a FIFO, a socket or a directory is refused before anything is read,
and without waiting on it), followed through symbolic links and judged by what it points to; and
it may hold at most `max_file_bytes` (`COMPLAINTCORE_MAX_FILE_BYTES`), checked before reading and
again while reading, since the file may grow meanwhile. A refusal is a `UserFileRefused`, a
`ValueError` with a one-line message that the command prints after the file's name (exit 1).
"""

import csv
import io
import json
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from complaintcore.infra.settings import get_settings

T = TypeVar("T")

# O_NONBLOCK: opening a FIFO (or some devices) would otherwise wait for a writer before `fstat`
# could refuse it. It changes nothing for a regular file, and is cleared once the file is judged.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class UserFileRefused(ValueError):
    """The file is not read: not a regular file, over the size limit, or nested too deeply."""


def open_user_file(path: Path, max_bytes: int | None = None) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file of at most `max_bytes` bytes
    (default: the `max_file_bytes` setting); reading more than that raises `UserFileRefused`.

    `path` is stat-ed first so that a device or FIFO is not even opened, then the opened
    descriptor is judged again (`fstat`), so the file read is the file judged.
    """
    limit = get_settings().max_file_bytes if max_bytes is None else max_bytes
    _refuse_unless_regular(os.stat(path).st_mode)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        _refuse_unless_regular(info.st_mode)
        if info.st_size > limit:
            raise UserFileRefused(_over_the_limit(limit))
        os.set_blocking(fd, True)
        raw = _CappedFile(io.FileIO(fd, "rb", closefd=True), limit)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(raw)


def _refuse_unless_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    raise UserFileRefused(f"{kind}, not a regular file")


def _over_the_limit(limit: int) -> str:
    return f"larger than the limit of {limit} bytes (COMPLAINTCORE_MAX_FILE_BYTES)"


class _CappedFile(io.RawIOBase):
    """A file's bytes, refused once more than `limit` of them have been read."""

    def __init__(self, file: io.FileIO, limit: int) -> None:
        super().__init__()
        self._file = file
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # One byte past the limit is enough to know the file is over it.
        count = self._file.readinto(view[: self._limit - self._read + 1]) or 0
        self._read += count
        if self._read > self._limit:
            raise UserFileRefused(_over_the_limit(self._limit))
        return count

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def read_json_or_csv(
    path: Path,
    from_json: Callable[[Any], list[T]],
    from_csv: Callable[[Iterable[str]], list[T]],
    max_bytes: int | None = None,
) -> list[T]:
    """Parse `path` by its suffix; a UTF-8 byte-order mark (Excel's CSV) is accepted."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ValueError(f"{path.name}: expected a .json or .csv file")
    with open_user_file(path, max_bytes) as binary:
        if suffix == ".json":
            with io.TextIOWrapper(binary, encoding="utf-8-sig") as text:
                try:
                    return from_json(json.loads(text.read()))
                except RecursionError:
                    raise UserFileRefused("JSON nested too deeply") from None
        with io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
            try:
                return from_csv(text)
            except csv.Error as error:
                raise ValueError(f"unreadable CSV: {error}") from None
