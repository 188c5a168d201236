"""`complaintcore keys create` and `complaintcore keys rotate` (their arguments:
`cli/parsers/keys.py`).

**Rotation** re-wraps every data key, the service's (`events/service_keys.py`) and each case's
(`CaseKeys.rewrap_all`), under the new file's master key, unwrapping with the current one (found
as `serve` finds it). The data keys themselves stay, so not one event changes. The service keys go
first, in one transaction: from then on the database shows a rotation under way, and start-up
names it (`application/master_key.py`) rather than ask for "the file that holds" one of two keys.
The case keys follow in batches, each a transaction of its own, under a tqdm bar on stderr; Ctrl-C
or SIGKILL leaves whole batches done, and the same command again re-wraps only what is left.

**The embedded default's master.key is left as it is.** It is the only copy of the old key that
the backups taken before the rotation need, and a key file is never overwritten
(`create_master_key_file`); the summary says to point COMPLAINTCORE_MASTER_KEY_FILE at the new
file instead, and how to make the new key the default by hand.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import asyncpg
import structlog
from tqdm import tqdm

from complaintcore.application.master_key import (
    load_key_provider,
    resolve_master_key_file,
    unfinished_rotation_target,
)
from complaintcore.cli.common import (
    INTERRUPTED,
    KEY_REFUSALS,
    StopAtCommit,
    database_url,
    fail,
    key_ids_at,
    run_with_pool,
)
from complaintcore.crypto.keys import FileKeyProvider, MasterKeyMissing, create_master_key_file
from complaintcore.crypto.suites import CiphertextRejected, SuiteUnavailable
from complaintcore.events.case_keys import CaseKeys, recorded_key_ids
from complaintcore.events.service_keys import rewrap_service_keys
from complaintcore.events.stream_cipher import CaseKeyUnusable
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")


def create_key_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the file and print one line naming its key id; refuse in one line on stderr."""
    path = args.file
    try:
        key_id = create_master_key_file(path, args.suite)
    except FileExistsError as error:
        return fail(str(error))
    except FileNotFoundError:
        return fail(
            f"{path}: cannot create the master key file: folder {path.parent} does not exist"
        )
    except OSError as error:
        return fail(
            f"{path}: cannot create the master key file in folder {path.parent}: "
            f"{error.strerror or error}"
        )
    except SuiteUnavailable as error:
        return fail(str(error))
    log.info("master key file created", path=str(path), key_id=key_id, suite=args.suite)
    print(
        f"master key {key_id} written to {path} ({args.suite}); "
        "keep it apart from the database and its backups"
    )
    return 0


# --- keys rotate ------------------------------------------------------------------------------


class RotationRefused(Exception):
    """The rotation cannot start; the message is one line saying what to fix."""


@dataclass(frozen=True)
class Rotated:
    service_keys: int
    case_keys: int
    # key ids other than the new one found once the run ended: keys a process still holding
    # the old key made after the last pass
    left_behind: frozenset[str]


class RewrapBar:
    """A tqdm bar over the case keys on stderr, opened at the first batch committed (the count of
    keys to re-wrap is `rewrap_all`'s, taken as it starts). `done` outlives the bar, for the
    message of an interrupted run."""

    def __init__(self, stop: StopAtCommit | None = None) -> None:
        self._bar: tqdm | None = None
        self._stop = stop
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        self._show(done, total)
        if self._stop is not None:
            self._stop.raise_if_asked()  # the batch just counted is committed

    def _show(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=total, desc="re-wrapping case keys", unit=" keys", file=sys.stderr
            )
        self._bar.total = total
        self._bar.update(done - self.done)
        self.done = done

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Closed before a refusal or the summary is printed, so neither lands on the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def rotate_keys_command(args: argparse.Namespace, settings: Settings) -> int:
    """Re-wrap every data key under `--new-key-file`'s key, then say what the operator must do."""
    new_file = args.new_key_file.expanduser().absolute()
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            old = load_key_provider(current_key_file(settings, url), settings.cipher_suite)
            new = new_key_provider(new_file, settings.cipher_suite)
        except KEY_REFUSALS as error:
            return fail(str(error))
        try:
            with StopAtCommit() as stop, RewrapBar(stop) as progress:
                rotated = run_with_pool(
                    url, lambda pool: rotate(pool, old, new, args.batch, progress)
                )
        except KeyboardInterrupt:
            return _interrupted(progress.done, new)
        except RotationRefused as refused:
            return fail(str(refused))
        except CaseKeyUnusable as damaged:
            return fail(
                f"the rotation stopped: {damaged}; the keys re-wrapped so far stay re-wrapped. "
                "Restore that case's row of case_keys from a backup taken before it was "
                "altered, then run keys rotate again"
            )
        except (*KEY_REFUSALS, CiphertextRejected) as error:
            return fail(
                f"the rotation stopped: a stored key would not unwrap ({error}); the keys "
                "re-wrapped so far stay re-wrapped"
            )
    return report(rotated, old, new, embedded_default=_uses_embedded_default(settings))


def current_key_file(settings: Settings, url: str) -> Path:
    """The master key file in use, found as `serve` finds it."""
    return resolve_master_key_file(
        settings, embedded=not settings.database_url, database_key_ids=key_ids_at(url)
    )


def new_key_provider(path: Path, suite_name: str) -> FileKeyProvider:
    """The key to rotate to; a missing file is named as the new one (the provider's own message
    would send the operator to COMPLAINTCORE_MASTER_KEY_FILE)."""
    try:
        return load_key_provider(path, suite_name)
    except MasterKeyMissing:
        raise MasterKeyMissing(
            f"new master key file {path} does not exist: create it first with "
            f"`complaintcore keys create {path}`"
        ) from None


async def rotate(
    pool: asyncpg.Pool,
    old: FileKeyProvider,
    new: FileKeyProvider,
    batch: int,
    progress: RewrapBar,
) -> Rotated:
    """The service keys, then the case keys, then what is still under another key."""
    async with pool.acquire() as connection:
        await refuse_keys_neither_file_holds(connection, old, new)
        await _announce(connection, old, new)
    service_keys = await rewrap_service_keys(pool, old, new)
    case_keys = await CaseKeys(old, old.suite).rewrap_all(pool, new, batch, progress)
    async with pool.acquire() as connection:
        left_behind = await recorded_key_ids(connection) - {new.key_id}
    return Rotated(service_keys, case_keys, frozenset(left_behind))


async def refuse_keys_neither_file_holds(
    connection: asyncpg.Connection, old: FileKeyProvider, new: FileKeyProvider
) -> None:
    """`RotationRefused` if some data key is under a key neither file holds: a rotation must
    unwrap every key it moves, and one it cannot unwrap would stop it halfway. An unfinished
    rotation to yet another key is named first: it is the one to finish."""
    unopenable = await recorded_key_ids(connection) - {old.key_id, new.key_id}
    if not unopenable:
        return
    ids = ", ".join(sorted(unopenable))
    neither = f"the database has data keys wrapped under {ids}, which {_neither(old, new)}"
    target = await unfinished_rotation_target(connection)
    if target is not None and target != new.key_id:
        raise RotationRefused(
            f"a rotation to key {target} is unfinished: finish it first, with --new-key-file the "
            f"file of key {target}; {neither}"
        )
    raise RotationRefused(
        f"{neither}: a rotation unwraps every key it moves; set COMPLAINTCORE_MASTER_KEY_FILE to "
        f"the file of key {ids} and run again"
    )


def _neither(old: FileKeyProvider, new: FileKeyProvider) -> str:
    if old.key_id == new.key_id:
        return f"the current and new master key file {new.path} (key {new.key_id}) does not hold"
    return (
        f"neither the current master key file {old.path} (key {old.key_id}) nor the new one "
        f"{new.path} (key {new.key_id}) holds"
    )


async def _announce(
    connection: asyncpg.Connection, old: FileKeyProvider, new: FileKeyProvider
) -> None:
    """One line on stderr before the bar: which key to which, and whether this run resumes."""
    resuming = await unfinished_rotation_target(connection) == new.key_id
    print(
        f"{'resuming the rotation' if resuming else 'rotating'} from master key {old.key_id} "
        f"({old.path}) to {new.key_id} ({new.path})",
        file=sys.stderr,
    )


def report(
    rotated: Rotated, old: FileKeyProvider, new: FileKeyProvider, *, embedded_default: bool
) -> int:
    """The summary on stdout, and what the operator must do next; 1 if keys were left behind."""
    moved = (
        f"{_count(rotated.case_keys, 'case key')} and {_count(rotated.service_keys, 'service key')}"
    )
    if old.key_id == new.key_id:
        print(f"re-wrapped {moved}: {new.path} holds the current master key {new.key_id} itself")
        return _left_behind(rotated, old)
    print(f"re-wrapped {moved} under master key {new.key_id} ({new.path})")
    log.info(
        "master key rotated",
        case_keys=rotated.case_keys,
        service_keys=rotated.service_keys,
        old_key_id=old.key_id,
        new_key_id=new.key_id,
        new_path=str(new.path),
    )
    if rotated.left_behind:
        return _left_behind(rotated, old)
    print(f"every data key is under {new.key_id} now. Next:")
    for number, step in enumerate(_next_steps(old, new, embedded_default), start=1):
        print(f"  {number}. {step}")
    return 0


def _next_steps(old: FileKeyProvider, new: FileKeyProvider, embedded_default: bool) -> list[str]:
    if embedded_default:
        point = (
            f"set COMPLAINTCORE_MASTER_KEY_FILE={new.path} for every complaintcore process and "
            f"command on this data folder: {old.path} still holds the old key {old.key_id} and "
            "is left as it is (serve started with it is refused from now on); to make the new "
            "key the default instead, with every process stopped, move that file somewhere safe "
            "and the new one to its place"
        )
    else:
        point = (
            f"set COMPLAINTCORE_MASTER_KEY_FILE={new.path} for every complaintcore process and "
            "command"
        )
    return [
        point,
        f"restart every running process (serve and its workers): one still holding key "
        f"{old.key_id} cannot open a re-wrapped key",
        f"keep the old key file (key {old.key_id}, {old.path}) until no backup needs it: a "
        f"backup taken before this rotation has its data keys under {old.key_id} only",
    ]


def _left_behind(rotated: Rotated, old: FileKeyProvider) -> int:
    if not rotated.left_behind:
        return 0
    return fail(
        f"data keys under {', '.join(sorted(rotated.left_behind))} were made while the rotation "
        f"ran, by a process still holding key {old.key_id}: stop every such process and run the "
        "same command again"
    )


def _interrupted(done: int, new: FileKeyProvider) -> int:
    print(
        f"complaintcore: rotation to master key {new.key_id} interrupted after "
        f"{_count(done, 'case key')}: run the same command again to finish it (until then serve "
        "refuses to start, naming the unfinished rotation)",
        file=sys.stderr,
    )
    return INTERRUPTED


def _uses_embedded_default(settings: Settings) -> bool:
    return not settings.database_url and settings.master_key_file is None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
