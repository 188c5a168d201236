"""Ratios taken from interleaved rounds (TARGETS.md, "Headroom"): baseline, figure, baseline,
figure, ... each round a short window of each; the ratio reported is the median of the per-round
ratios, with their spread (lowest and highest, and half their range as a percent of the median).

A baseline and its figure measured side by side see the same moment of a shared machine: a disk
or core that slows down for a minute slows both, and the round's ratio holds where the two
figures measured minutes apart would not. Nothing here measures: the callers pass the steps.
"""

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def schedule(rounds: int, steps: Sequence[str]) -> list[tuple[int, str]]:
    """The order of the measurements: every step of round 0 in the given order (the baseline
    first), then every step of round 1, ... as (round, step) pairs."""
    if rounds < 1:
        raise ValueError("at least one round")
    if len(set(steps)) != len(steps) or not steps:
        raise ValueError(f"steps must be distinct and at least one: {list(steps)}")
    return [(number, step) for number in range(rounds) for step in steps]


def run_rounds(rounds: int, steps: dict[str, Callable[[int], T]]) -> dict[str, list[T]]:
    """Call each step with its round number, in `schedule`'s order; each step's results by
    round."""
    results: dict[str, list[T]] = {name: [] for name in steps}
    for number, name in schedule(rounds, list(steps)):
        results[name].append(steps[name](number))
    return results


def median(values: Sequence[float]) -> float:
    """The median of the values that are numbers; NaN when there are none."""
    numbers = [value for value in values if not math.isnan(value)]
    return statistics.median(numbers) if numbers else float("nan")


def per_round_ratios(figures: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Each round's figure over the same round's baseline; NaN for a baseline of 0."""
    if len(figures) != len(baselines):
        raise ValueError(f"{len(figures)} figures for {len(baselines)} baselines")
    return [f / b if b else float("nan") for f, b in zip(figures, baselines, strict=True)]


@dataclass(frozen=True)
class RoundRatio:
    """A figure against its baseline over interleaved rounds."""

    figures: tuple[float, ...]
    baselines: tuple[float, ...]

    @classmethod
    def of(cls, figures: Sequence[float], baselines: Sequence[float]) -> "RoundRatio":
        per_round_ratios(figures, baselines)  # the same number of each
        return cls(tuple(figures), tuple(baselines))

    @property
    def ratios(self) -> list[float]:
        return per_round_ratios(self.figures, self.baselines)

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios (not the ratio of the medians)."""
        return median(self.ratios)

    @property
    def figure(self) -> float:
        return median(self.figures)

    @property
    def baseline(self) -> float:
        return median(self.baselines)

    @property
    def low(self) -> float:
        numbers = [r for r in self.ratios if not math.isnan(r)]
        return min(numbers) if numbers else float("nan")

    @property
    def high(self) -> float:
        numbers = [r for r in self.ratios if not math.isnan(r)]
        return max(numbers) if numbers else float("nan")

    @property
    def spread_pct(self) -> float:
        """Half the range of the per-round ratios, in percent of their median: 0.9, 1.0 and 1.1
        are ±10 %."""
        middle = self.ratio
        if math.isnan(middle) or middle == 0:
            return float("nan")
        return (self.high - self.low) / 2 / middle * 100


def describe_spread(ratio: RoundRatio) -> str:
    """`±6 % over 3 rounds (0.80-0.91x)`, the table's words for a ratio's spread."""
    if math.isnan(ratio.spread_pct):
        return f"no spread: {len(ratio.figures)} rounds"
    return (
        f"±{ratio.spread_pct:.0f} % over {len(ratio.figures)} rounds"
        f" ({ratio.low:.2f}-{ratio.high:.2f}x)"
    )
