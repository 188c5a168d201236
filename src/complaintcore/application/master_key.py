"""The master key at start-up: which file holds it, loading it, and checking it against the
database (API.md "Personal data", README "Configuration").

- `resolve_master_key_file`: `COMPLAINTCORE_MASTER_KEY_FILE` when set; else, for the embedded
  default only, `<data_dir>/master.key`, created (mode 0600) on first start and logged by path
  (never while the database holds keys: a lost file is reported missing, not replaced);
  else (`DATABASE_URL` with no key file) `MasterKeyNotConfigured`: a production database is never
  given a key made up on the spot, which would sit beside nothing and be lost with the host.
- `load_key_provider`: the cipher suite's self-test first (an OpenSSL without SM4 refuses at
  start, not at the first receipt), then the file, checked against its own check value.
- `check_against_database`: every data key the database records must be wrapped under this
  key, so a service started with another key file refuses, naming both key ids, before it
  tries to read a case. Midway through `keys rotate` the keys are under two ids, and neither
  file would do: the refusal then names the unfinished rotation (`unfinished_rotation_target`)
  and says to run it again, rather than send the operator after "the file that holds" a key.
- `rotated_away_from`: for a running server (`/readyz`), whether a rotation has since moved the
  keys to another master key.
- `case_keys_of`: the process's `CaseKeys` (new keys for the deployment's suite, unwrapped keys
  cached), from the provider.

Every refusal is a `MasterKeyError` (or `SuiteUnavailable` / `UnknownSuite`) with a one-line
message, for `serve` to print as it is. The key itself is never logged.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import asyncpg
import structlog

from complaintcore.crypto.key_cache import DataKeyCache
from complaintcore.crypto.keys import (
    FileKeyProvider,
    KeyProvider,
    MasterKeyError,
    MasterKeyMissing,
    MasterKeyRejected,
    create_master_key_file,
)
from complaintcore.crypto.suites import suite_named
from complaintcore.events.case_keys import CaseKeys, recorded_key_ids
from complaintcore.infra.settings import Settings

__all__ = [
    "EMBEDDED_KEY_FILE_NAME",
    "MasterKeyNotConfigured",
    "case_keys_of",
    "check_against_database",
    "database_key_ids",
    "load_key_provider",
    "resolve_master_key_file",
    "rotated_away_from",
    "unfinished_rotation_target",
]

EMBEDDED_KEY_FILE_NAME = "master.key"

log = structlog.get_logger("complaintcore.master_key")

# The key id most recently re-wrapped to: `rewrap_all` and `rewrap_service_keys` stamp each row
# they move with `rewrapped_at`, so the newest stamp names the key of the latest rotation. A scan
# of both tables (no index on the stamp), read only on the way to a refusal.
_LAST_REWRAPPED_KEY_ID = """
SELECT key_id FROM (
    SELECT key_id, rewrapped_at FROM case_keys WHERE rewrapped_at IS NOT NULL
    UNION ALL
    SELECT key_id, rewrapped_at FROM service_keys WHERE rewrapped_at IS NOT NULL
) AS rewrapped
ORDER BY rewrapped_at DESC
LIMIT 1
"""


_KEY_TABLES_MADE = (
    "SELECT to_regclass('case_keys') IS NOT NULL AND to_regclass('service_keys') IS NOT NULL"
)


class MasterKeyNotConfigured(MasterKeyError):
    """No master key file is set, and none may be made up (a `DATABASE_URL` deployment)."""


def resolve_master_key_file(
    settings: Settings,
    embedded: bool,
    database_key_ids: Callable[[], set[str]] = set,
) -> Path:
    """The master key file to load: the setting; else, `embedded` only, `<data_dir>/master.key`
    (created when missing, unless `database_key_ids`, asked then, names keys a new master key
    could not open: `MasterKeyMissing`); else `MasterKeyNotConfigured`.

    For the embedded default, call this once its data folder exists (after the embedded server
    started: `initdb` wants an empty folder).
    """
    if settings.master_key_file is not None:
        return settings.master_key_file.expanduser().absolute()
    if not embedded:
        raise MasterKeyNotConfigured(
            "COMPLAINTCORE_MASTER_KEY_FILE is not set: with DATABASE_URL set, the service needs "
            "the file of its master key; create one with `complaintcore keys create FILE`, keep "
            "it apart from the database and its backups, and set COMPLAINTCORE_MASTER_KEY_FILE "
            "to it"
        )
    path = settings.data_dir.expanduser().resolve() / EMBEDDED_KEY_FILE_NAME
    if path.exists() or path.is_symlink():
        log.info("master key file of the embedded database", path=str(path))
        return path
    if held := database_key_ids():
        raise MasterKeyMissing(
            f"the master key file {path} of the embedded database is missing, and the "
            f"database's keys are wrapped under {', '.join(sorted(held))}: put the file of that "
            "key back there (from the copy kept apart) or set COMPLAINTCORE_MASTER_KEY_FILE to "
            "it; a new key would open none of them, so none is made"
        )
    try:
        key_id = create_master_key_file(path, settings.cipher_suite)
    except FileExistsError:
        # another process sharing the data folder created it meanwhile: use that one
        log.info("master key file of the embedded database", path=str(path))
        return path
    except OSError as error:
        raise MasterKeyNotConfigured(
            f"cannot create the master key file {path} of the embedded database: "
            f"{error.strerror or error}; set COMPLAINTCORE_MASTER_KEY_FILE to a file made by "
            "`complaintcore keys create FILE`"
        ) from None
    log.info(
        "master key file created for the embedded database; keep a copy apart from it",
        path=str(path),
        key_id=key_id,
        suite=settings.cipher_suite,
    )
    return path


def load_key_provider(path: Path, suite_name: str) -> FileKeyProvider:
    """The master key of `path`, once `suite_name` (the deployment's suite) passed its self-test.

    Raises `SuiteUnavailable` / `UnknownSuite` for the suite, `MasterKeyMissing` /
    `MasterKeyRejected` for the file: all one-line messages.
    """
    suite_named(suite_name)
    provider = FileKeyProvider(path)
    _warn_if_others_may_read(path)
    if provider.suite.name != suite_name:
        # allowed (a deployment moving from one suite to the other rotates its master key when
        # it can), but said: a review pass found an sm4-gcm deployment wrapping every SM4 data
        # key under an AES master key, the top of its key hierarchy no GM algorithm, silently
        log.warning(
            "the master key's suite is not the deployment's: data keys of the new cases are "
            "wrapped under it; make one with `complaintcore keys create --suite "
            f"{suite_name} FILE` and `complaintcore keys rotate` to it",
            master_key_suite=provider.suite.name,
            cipher_suite=suite_name,
        )
    return provider


def _warn_if_others_may_read(path: Path) -> None:
    """A warning when the key file's mode lets users other than its owner at it: with the key and
    any backup of the database every case's personal data opens (docs/deployment.md asks for
    0600; found by a review pass: a 0644 file was taken without a word). Not a refusal: a
    read-only secret mount may show other modes than the file it mounts."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # read a moment ago: a file gone since is the next reader's to refuse
    if mode & 0o077:
        log.warning(
            "the master key file may be read or written by users other than its owner: "
            "make it mode 0600, owned by the service's user",
            path=str(path),
            mode=f"{mode:04o}",
        )


async def database_key_ids(connection: asyncpg.Connection) -> set[str]:
    """`recorded_key_ids`, or none for a database whose key tables are not made yet."""
    if not await connection.fetchval(_KEY_TABLES_MADE):
        return set()
    return await recorded_key_ids(connection)


async def check_against_database(
    connection: asyncpg.Connection, provider: KeyProvider, recorded: set[str] | None = None
) -> None:
    """`MasterKeyRejected`, naming both key ids, unless every data key the database records is
    wrapped under `provider`'s key (a database with no data keys accepts any key). Midway
    through a rotation it names the rotation instead: no single file will do until it ends.
    `recorded`: the ids `recorded_key_ids` read already, if the caller has them."""
    if recorded is None:
        recorded = await recorded_key_ids(connection)
    others = recorded - {provider.key_id}
    if not others:
        return
    holder = f"{_holder(provider)} holds key {provider.key_id}"
    target = await unfinished_rotation_target(connection, recorded)
    if target is not None:
        raise MasterKeyRejected(_unfinished_rotation(target, recorded - {target}, holder))
    raise MasterKeyRejected(
        f"{holder}, but the database's data keys are wrapped under "
        f"{', '.join(sorted(others))}: start with the file that holds that key"
    )


async def unfinished_rotation_target(
    connection: asyncpg.Connection, recorded: set[str] | None = None
) -> str | None:
    """The key id an interrupted `keys rotate` was moving the data keys to, or None.

    A rotation is unfinished while the keys are under more than one id and one of them is the
    latest a row was re-wrapped to; keys a process still holding the old key made after a
    rotation ended read the same way, and running it again moves them too. `recorded`: the
    ids `recorded_key_ids` read already, if the caller has them.
    """
    if recorded is None:
        recorded = await recorded_key_ids(connection)
    if len(recorded) < 2:
        return None
    target: str | None = await connection.fetchval(_LAST_REWRAPPED_KEY_ID)
    return target if target in recorded else None


_SERVICE_KEY_IDS = "SELECT DISTINCT key_id FROM service_keys"


async def rotated_away_from(connection: asyncpg.Connection, provider: KeyProvider) -> str | None:
    """The current master key's id when a `keys rotate` has moved the keys away from
    `provider`'s since this process started (it must be restarted with that key's file), else
    None. The service keys move first, in one transaction, so their key id is the current one."""
    current = {row["key_id"] for row in await connection.fetch(_SERVICE_KEY_IDS)}
    others = current - {provider.key_id}
    return min(others) if others else None


def _unfinished_rotation(target: str, old_key_ids: set[str], holder: str) -> str:
    """One line: what is half done, and the command that finishes it."""
    old = ", ".join(sorted(old_key_ids))
    return (
        f"a rotation to key {target} is unfinished: run `complaintcore keys rotate` again "
        f"(COMPLAINTCORE_MASTER_KEY_FILE: the file of key {old}; --new-key-file: the file of key "
        f"{target}), then start with the file of key {target}; the database's data keys are "
        f"wrapped under {old} and {target}, and {holder}"
    )


def _holder(provider: KeyProvider) -> str:
    source = getattr(provider, "path", None)
    return f"master key file {source}" if source is not None else "the master key provider"


def case_keys_of(provider: KeyProvider, suite_name: str) -> CaseKeys:
    """The data keys of cases as this process reads and makes them: wrapped by `provider`, new
    ones for `suite_name`, unwrapped ones cached (see `crypto.key_cache` for the bounds)."""
    return CaseKeys(provider, suite_named(suite_name), DataKeyCache())
