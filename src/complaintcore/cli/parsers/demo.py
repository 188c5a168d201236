"""`complaintcore demo` (handler: `cli/demo.py`)."""

import argparse
from typing import Any

from complaintcore.cli.parsers.shared import READS_KEYS, add_command

# `cli.demo_data.DEFAULT_SEED` and `DEFAULT_CASES` (a unit test holds them together)
DEFAULT_SEED = 20200301
DEFAULT_CASES = 300


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "demo",
        help="seed an institution tree, tokens and realistic cases, for a first look",
        handler="complaintcore.cli.demo:demo",
        environment=READS_KEYS,
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="the same seed on the same day, the same cases",
    )
    parser.add_argument(
        "--cases", type=case_count, default=DEFAULT_CASES, help="how many cases to add"
    )


def case_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= count <= 100_000:
        raise argparse.ArgumentTypeError("between 0 and 100000")
    return count
