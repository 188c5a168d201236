"""`complaintcore institutions load` and `calendar load`: reference data from files."""

import argparse
from pathlib import Path
from typing import Any

from complaintcore.cli.common import database_url, fail, run_with_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings
from complaintcore.reference.calendars import CalendarRepository, read_calendar_file
from complaintcore.reference.institutions import (
    HierarchyRefused,
    InstitutionDirectory,
    read_institution_file,
)


def register(commands: Any) -> None:
    institutions_parser = commands.add_parser("institutions", help="the institution tree")
    institution_commands = institutions_parser.add_subparsers(
        dest="institutions_command", required=True
    )
    load_tree_parser = institution_commands.add_parser(
        "load", help="create or update nodes from JSON or CSV (code,name,kind,parent)"
    )
    load_tree_parser.add_argument("file", type=Path)
    load_tree_parser.set_defaults(handler=load_institutions)

    calendar_parser = commands.add_parser("calendar", help="holiday calendars")
    calendar_commands = calendar_parser.add_subparsers(dest="calendar_command", required=True)
    load_calendar_parser = calendar_commands.add_parser(
        "load", help="store years from JSON or CSV (date,kind)"
    )
    load_calendar_parser.add_argument("file", type=Path)
    load_calendar_parser.set_defaults(handler=load_calendar)


def load_institutions(args: argparse.Namespace, settings: Settings) -> int:
    try:
        nodes = read_institution_file(args.file, settings.max_file_bytes)
    except (OSError, ValueError, HierarchyRefused) as error:
        return fail(f"{args.file}: {error}")
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            created, updated = run_with_pool(
                url, lambda pool: InstitutionDirectory(pool).put_many(nodes)
            )
        except (HierarchyRefused, ValueError) as refusal:
            return fail(f"{args.file}: nothing loaded: {refusal}")
    print(f"{created + updated} institutions loaded ({created} created, {updated} updated)")
    return 0


def load_calendar(args: argparse.Namespace, settings: Settings) -> int:
    try:
        years = read_calendar_file(args.file, settings.max_file_bytes)
    except (OSError, ValueError) as error:
        return fail(f"{args.file}: {error}")
    with database_url(settings) as url:
        upgrade_to_head(url)
        run_with_pool(url, lambda pool: CalendarRepository(pool).put_years(years))
    listed = ", ".join(str(year_calendar.year) for year_calendar in years)
    print(f"{len(years)} calendar years loaded ({listed})")
    return 0
