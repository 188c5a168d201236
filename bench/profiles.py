"""`make profile`: where the time goes in the figures of TARGETS.md that are bound by the CPU here.

    python -m bench.profiles [--cases N] [--seconds S]

On a fresh database of the bench's server (the embedded one unless `DATABASE_URL` is set) it
imports N bench histories, then samples each of these with py-spy, a sampling profiler attached
from outside, so the code profiled runs exactly as in `make bench`:

- `import`: `complaintcore import` of those cases (a process of its own);
- `rebuild`: `complaintcore projections rebuild` of the events they made;
- `commands`: the server (`complaintcore serve`) under the bench's 32-client command load, and
  the runner process it supervises (folding the commands' events on the same cores);
- `replay`: the server answering the regulator's `/audit` of a 30-event case, one at a time.

For each it writes `bench/results/profiles/<name>.txt`: how busy the process was, the share of
its samples by layer (whose code was running: ours by package, the web framework, validation,
the driver, the event loop), a few inclusive shares (the statistics runner, event decoding,
hashing, response validation), and the functions with the most own time. It also times the pure
part of a rebuild (decoding and folding, no database) in this process: the ceiling a rebuild
cannot pass on one core of this machine, whatever the database does.
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson

from bench import figures, histories
from bench.database import BENCH_DATABASE, bench_master_key_file, bench_server, fresh_database
from bench.service import load, serving
from complaintcore.application.bulk_import import (
    AcceptedCase,
    ActorBody,
    ReferenceData,
    judge_case,
    parse_line,
)
from complaintcore.domain.calendar import seeded_calendar
from complaintcore.domain.events import event_to_payload
from complaintcore.domain.state import fold
from complaintcore.events.codec import decoded_event

PROFILES = Path(__file__).resolve().parent / "results" / "profiles"
SAMPLES_PER_SECOND = 200

# (layer, what a leaf frame's file path contains); the first match wins.
LAYERS = (
    ("complaintcore: domain (rules, codecs, fold)", "complaintcore/domain/"),
    ("complaintcore: event store (rows, hashing)", "complaintcore/events/"),
    ("complaintcore: application services", "complaintcore/application/"),
    ("complaintcore: projections", "complaintcore/projections/"),
    ("complaintcore: api (routes, auth, schemas)", "complaintcore/api/"),
    ("complaintcore: other", "complaintcore/"),
    ("pydantic (validation, serialisation)", "pydantic"),
    ("FastAPI / Starlette", "fastapi/"),
    ("FastAPI / Starlette", "starlette/"),
    ("uvicorn / HTTP parsing", "uvicorn/"),
    ("uvicorn / HTTP parsing", "h11/"),
    ("uvicorn / HTTP parsing", "httptools/"),
    ("asyncpg (driver, protocol)", "asyncpg/"),
    ("event loop (asyncio, and uvloop's C code)", "asyncio/"),
    ("structlog (logging)", "structlog/"),
    ("logging", "logging/"),
)
# (label, what a frame of the stacks counted contains, or a tuple of such): inclusive shares.
MARKERS: tuple[tuple[str, str | tuple[str, ...]], ...] = (
    ("projection runners (the runner process beside the server)", "projections/runner.py"),
    ("event decoding (event_from_payload)", "event_from_payload"),
    ("event encoding (event_to_payload)", "event_to_payload"),
    ("the domain's decide", "decide (complaintcore/domain/decider.py"),
    ("the fold (evolve)", "evolve (complaintcore/domain/state.py"),
    ("hash chain (event_hash, check_storable)", "complaintcore/events/hashing.py"),
    ("FastAPI response validation/serialisation", "serialize_response"),
    ("request body validation", "request_body_to_args"),
    ("asyncpg round trips (protocol)", "asyncpg/connection.py"),
    # issue 13's cost of encryption, read off the CPU: sealing and opening personal fields (and
    # the walk over them), data keys made, wrapped, unwrapped, read and cached, blind indexes
    (
        "personal data: sealing, opening, data keys, blind index",
        ("complaintcore/crypto/", "stream_cipher.py", "case_keys.py"),
    ),
)
_IMPORTING = "(<frozen importlib._bootstrap>"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


@dataclass
class Profile:
    samples: int
    seconds: float
    stacks: Counter[str]

    @property
    def busy_share(self) -> float:
        return self.samples / max(self.seconds * SAMPLES_PER_SECOND, 1)


def parse_collapsed(lines: Iterable[str]) -> Counter[str]:
    """py-spy's raw output: `frame;frame;...;leaf count` per line."""
    stacks: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def leaf(stack: str) -> tuple[str, str]:
    """The innermost frame: (function, file)."""
    frame = stack.rsplit(";", 1)[-1]
    match = _FRAME.match(frame)
    return (match["function"], match["file"]) if match else (frame, "")


def layer_of(path: str) -> str:
    for layer, marker in LAYERS:
        if marker in path:
            return layer
    return "other (stdlib, C extensions, ...)"


def report(name: str, what: str, profile: Profile, extra: list[str] | None = None) -> str:
    stacks = Counter(
        {stack: count for stack, count in profile.stacks.items() if _IMPORTING not in stack}
    )
    startup = profile.samples - sum(stacks.values())
    total = max(sum(stacks.values()), 1)
    by_layer: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for stack, count in stacks.items():
        function, path = leaf(stack)
        by_layer[layer_of(path)] += count
        by_function[f"{function} ({_short(path)})"] += count
    lines = [
        f"# {name}: {what}",
        f"{profile.samples} samples in {profile.seconds:.1f} s at {SAMPLES_PER_SECOND}/s:"
        f" the process (and its workers) ran Python {profile.busy_share:.0%} of one core's time",
        f"{startup} samples importing modules at start-up are left out of the shares below",
        "",
        "## own time by layer",
        *(f"{count / total:6.1%}  {layer}" for layer, count in by_layer.most_common()),
        "",
        "## inclusive time of",
        *(
            f"{_inclusive(stacks, marker) / total:6.1%}  {label}"
            for label, marker in MARKERS
            if _inclusive(stacks, marker)
        ),
        "",
        "## functions with the most own time",
        *(f"{count / total:6.1%}  {function}" for function, count in by_function.most_common(25)),
    ]
    return "\n".join([*lines, *(["", *extra] if extra else []), ""])


def _inclusive(stacks: Counter[str], marker: str | tuple[str, ...]) -> int:
    markers = (marker,) if isinstance(marker, str) else marker
    return sum(count for stack, count in stacks.items() if any(m in stack for m in markers))


def _short(path: str) -> str:
    for root in ("site-packages/", "src/", "lib/python3.11/"):
        if root in path:
            return path.split(root, 1)[1]
    return path


def sampling(
    target: list[str], output: Path, seconds: float | None = None, *, subprocesses: bool = False
) -> list[str]:
    """The py-spy command sampling `target` (`--pid N`, or `-- command ...`) into `output`; with
    `subprocesses`, its child processes too."""
    command = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--format",
        "raw",
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--gil",  # only samples holding the GIL: Python at work, not threads waiting
        "--output",
        str(output),
    ]
    if seconds is not None:
        command += ["--duration", str(round(seconds))]
    if subprocesses:
        command.append("--subprocesses")
    return [*command, *target]


def profile_command(
    arguments: list[str], database_url: str, *, subprocesses: bool = False
) -> Profile:
    """Run `complaintcore ARGUMENTS` on `database_url` under py-spy, to its end (with its worker
    processes when `subprocesses`: their samples add up, so the busy share can pass 100 %)."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        # the bench's master key, as `serve` gets it (bench/service.py): with DATABASE_URL set,
        # a command that seals or opens personal data refuses to start without one
        "COMPLAINTCORE_MASTER_KEY_FILE": str(bench_master_key_file()),
    }
    target = ["--", sys.executable, "-m", "complaintcore.cli", *arguments]
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "stacks.txt"
        started = time.monotonic()
        command = sampling(target, output, subprocesses=subprocesses)
        ran = subprocess.run(command, env=environment, check=True, capture_output=True)
        if b"complaintcore: " in ran.stderr:  # a refusal; py-spy exits 0 whatever its target does
            raise RuntimeError(
                f"complaintcore {arguments[0]} failed: {ran.stderr.decode()[-2000:]}"
            )
        elapsed = time.monotonic() - started
        return _profile(output, elapsed)


def profile_server(
    pid: int, seconds: float, make_load: Callable[[], object], *, subprocesses: bool = False
) -> Profile:
    """Sample the server for `seconds` while `make_load` loads it from another process (with
    the runner process it supervises when `subprocesses`)."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "stacks.txt"
        sampler = subprocess.Popen(
            sampling(["--pid", str(pid)], output, seconds, subprocesses=subprocesses),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        make_load()
        sampler.wait(timeout=seconds + 120)
        return _profile(output, seconds)


def _profile(output: Path, seconds: float) -> Profile:
    stacks = parse_collapsed(output.read_text().splitlines())
    return Profile(sum(stacks.values()), seconds, stacks)


def pure_rebuild_ceiling(lines: list[bytes]) -> str:
    """Decode and fold the histories' events with no database: events per second on one core."""
    reference = ReferenceData(
        today=date.today(),
        calendar=seeded_calendar(),
        superiors={node["code"]: node["parent"] for node in histories.institution_tree()},
        default_actor=ActorBody(id="profile", role="staff"),
        correlation_id="profile",
    )
    started = time.perf_counter()
    cases = []
    for number, line in enumerate(lines, start=1):
        verdict = judge_case(number, parse_line(line), reference, {})
        if isinstance(verdict, AcceptedCase):
            cases.append(verdict.events)
    judging = time.perf_counter() - started
    stored = [
        [(e.event_type, e.schema_version, orjson.dumps(event_to_payload(e))) for e in case]
        for case in cases
    ]
    events = sum(len(case) for case in stored)
    started = time.perf_counter()
    for case in stored:
        fold(decoded_event(kind, version, orjson.loads(data)) for kind, version, data in case)
    folding = time.perf_counter() - started
    return (
        "## the pure part alone, one core, no database\n"
        f"JSON parse + decode + fold: {events / folding:,.0f} events/s"
        f" ({events:,} events of {len(cases):,} cases)\n"
        f"judging the histories (request models + decide + evolve): {events / judging:,.0f}"
        " events/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profiles", description=__doc__)
    parser.add_argument("--cases", type=int, default=20_000, help="bench histories imported")
    parser.add_argument("--seconds", type=float, default=10, help="each server profile's length")
    args = parser.parse_args(argv)
    PROFILES.mkdir(parents=True, exist_ok=True)
    lines = list(histories.case_lines(args.cases))
    with bench_server() as server, tempfile.TemporaryDirectory() as scratch:
        url = fresh_database(server, f"{BENCH_DATABASE}_profile")
        token = asyncio.run(figures.seed_reference_data(url))
        source = Path(scratch) / "cases.jsonl"
        source.write_bytes(b"\n".join(lines) + b"\n")
        imported = profile_command(["import", str(source)], url)
        _write("import", f"complaintcore import of {args.cases:,} bench histories", imported)
        extra = [histories.long_case_line(figures.LONG_CASE), *figures.open_case_lines(640)]
        asyncio.run(figures.bulk_import(url, extra))
        events = figures.event_count(url)
        # the scan runs in worker processes: sample them with the command
        rebuilt = profile_command(["projections", "rebuild", "--restart"], url, subprocesses=True)
        ceiling = pure_rebuild_ceiling(lines[:5000])
        _write(
            "rebuild", f"complaintcore projections rebuild of {events:,} events", rebuilt, ceiling
        )
        open_ids = histories.case_ids(640, figures.OPEN_PREFIX)
        audit = f"/v1/complaints/{figures.case_id_for(figures.LONG_CASE)}/audit"
        with serving(url, Path(scratch) / "serve.log") as base_url:
            pid = _server_pid(base_url)
            commands = profile_server(
                pid,
                args.seconds,
                lambda: figures.http_commands(base_url, token, open_ids, args.seconds),
                subprocesses=True,
            )
            _write(
                "commands",
                "the server under 32 clients posting commands, and its runner process",
                commands,
            )
            replays = profile_server(
                pid,
                args.seconds,
                lambda: load(base_url, [("GET", audit, None)], 1, args.seconds, token),
            )
            _write(
                "replay", "the server answering /audit of a 30-event case, one at a time", replays
            )
    print(f"profiles written under {PROFILES}")
    return 0


def _write(name: str, what: str, profile: Profile, extra: str = "") -> None:
    text = report(name, what, profile, [extra] if extra else None)
    (PROFILES / f"{name}.txt").write_text(text)
    print(text)


def _server_pid(base_url: str) -> int:
    port = base_url.rsplit(":", 1)[1]
    found = subprocess.run(
        ["pgrep", "-f", f"complaintcore.cli serve --port {port}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(found.stdout.split()[0])


if __name__ == "__main__":
    sys.exit(main())
