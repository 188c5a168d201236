"""The bench's table (printed), its JSON and its chart, and the machine they were measured on."""

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Throughput
from bench.probes import header_lines
from bench.rounds import RoundRatio, describe_spread
from bench.slow_machine import EMULATION_VARIABLE, cpu_quota_cores


@dataclass(frozen=True)
class Row:
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None  # None: a figure for information, or not measured
    note: str = ""
    # A ratio from interleaved rounds (bench/rounds.py): `value` and `baseline` are the medians
    # of the rounds' figures and baselines, `ratio` the median of the per-round ratios.
    ratio_rounds: list[float] | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None
    ratio_spread_pct: float | None = None  # half the range, in percent of the median
    figure_rounds: list[float] | None = None  # each round's figure, and its baseline below
    baseline_rounds: list[float] | None = None
    of_targets: bool = True  # False: a check of the bench itself, no row of TARGETS.md


def targets_met(rows: list[Row]) -> tuple[int, int]:
    """How many of the TARGETS.md rows judged are met, and how many were judged."""
    judged = [row.met for row in rows if row.of_targets and row.met is not None]
    return sum(judged), len(judged)


def ratio_row(
    figure: str,
    measured: RoundRatio,
    unit: str,
    baseline_name: str,
    at_least: float,
    note: str = "",
) -> Row:
    """A throughput that must be at least `at_least` times its baseline, both measured in
    interleaved rounds: met when the median of the per-round ratios is."""
    ratio = measured.ratio
    spread = describe_spread(measured)
    return Row(
        figure,
        measured.figure,
        unit,
        measured.baseline,
        baseline_name,
        ratio,
        f">= {at_least:g} x {baseline_name}",
        None if math.isnan(ratio) else ratio >= at_least,
        f"{spread}; {note}" if note else spread,
        ratio_rounds=measured.ratios,
        ratio_low=measured.low,
        ratio_high=measured.high,
        ratio_spread_pct=measured.spread_pct,
        figure_rounds=list(measured.figures),
        baseline_rounds=list(measured.baselines),
    )


def ceiling_row(figure: str, value: float, unit: str, at_most: float, note: str = "") -> Row:
    """A latency that must be at most `at_most`."""
    target = f"<= {at_most:g} {unit}"
    if math.isnan(value):
        return Row(figure, None, unit, target=target, note="no request measured")
    return Row(figure, value, unit, target=target, met=value <= at_most, note=note)


def unless_failed(row: Row, measured: list[Throughput]) -> Row:
    """`row`, not met when any of the operations it was measured from was answered with an
    error: a refusal or a 500 answers fast, and would count as a command done or a quick
    replay."""
    failed = sum(throughput.failed for throughput in measured)
    if not failed:
        return row
    answered = sum(throughput.operations for throughput in measured)
    note = f"{failed:,} of {answered:,} answers were errors"
    return replace(row, met=False, note=f"{note}; {row.note}" if row.note else note)


def info_row(figure: str, value: float | None, unit: str, note: str = "") -> Row:
    return Row(figure, value, unit, note=note)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    quota = cpu_quota_cores()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_quota_cores": None if quota is None else round(quota, 3),
        "emulation": os.environ.get(EMULATION_VARIABLE),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _format(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def _ratio_cell(row: Row) -> str:
    if row.ratio is None or math.isnan(row.ratio):
        return ""
    if row.ratio_spread_pct is None or math.isnan(row.ratio_spread_pct):
        return f"{row.ratio:.2f}x"
    return f"{row.ratio:.2f}x ±{row.ratio_spread_pct:.0f}%"


def table(rows: list[Row], machine_info: dict[str, Any] | None = None) -> str:
    """The table, under the machine's header lines when given."""
    headers = ["figure", "complaintcore", "baseline", "ratio", "target", "met"]
    cells = [
        [
            row.figure,
            f"{_format(row.value)} {row.unit}".strip(),
            f"{_format(row.baseline)} ({row.baseline_name})" if row.baseline_name else "",
            _ratio_cell(row),
            row.target,
            {True: "yes", False: "NO", None: ""}[row.met],
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    header = [*header_lines(machine_info), ""] if machine_info else []
    rounds = [
        f"- {row.figure}: "
        + ", ".join(f"{ratio:.2f}" for ratio in row.ratio_rounds)
        + f" (median {_ratio_cell(row)})"
        for row in rows
        if row.ratio_rounds
    ]
    if rounds:
        rounds.insert(0, "\nper-round ratios, each round a baseline then its figure:")
    met, judged = targets_met(rows)
    count = f"\ntargets met: {met} of {judged} (TARGETS.md rows judged; not the bench's own checks)"
    return "\n".join([*header, line(headers), rule, *(line(c) for c in cells), *rounds, count])


def write_json(
    path: Path, machine_info: dict[str, Any], rows: list[Row], extra: dict[str, Any]
) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, list):
            return [clean(item) for item in value]
        return None if isinstance(value, float) and math.isnan(value) else value

    met, judged = targets_met(rows)
    document = {
        "machine": machine_info,
        "targets_met": {"met": met, "judged": judged},
        "rows": [{key: clean(value) for key, value in asdict(row).items()} for row in rows],
        **extra,
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def write_chart(
    path: Path, throughputs: dict[str, float], latencies: dict[str, list[float]], title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (bars, cdf) = plt.subplots(1, 2, figsize=(14, 5.5))
    names = list(reversed(throughputs))  # the first bar on top
    bars.barh(
        names,
        [throughputs[n] for n in names],
        color=["#888" if n.startswith("baseline") else "#2a6" for n in names],
    )
    bars.set_xscale("log")
    bars.set_xlabel("per second (log scale)")
    bars.set_title("Throughput: complaintcore (green) and baselines (grey)")
    for index, name in enumerate(names):
        bars.text(throughputs[name], index, f" {throughputs[name]:,.0f}", va="center", fontsize=8)
    for name, values in latencies.items():
        if not values:
            continue
        ordered = sorted(values)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        cdf.plot(ordered, fractions, label=name)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency, ms (log scale)")
    cdf.set_ylabel("fraction of requests at or below")
    cdf.axhline(0.99, color="#c33", linewidth=0.6, linestyle="--")
    cdf.set_title("Latency distribution (dashed line: p99)")
    cdf.legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
