"""`complaintcore institutions load` and `calendar load`: reference data from files (their
arguments: `cli/parsers/reference.py`)."""

import argparse

from complaintcore.cli.common import database_url, fail, run_with_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings
from complaintcore.reference.calendars import CalendarRepository, read_calendar_file
from complaintcore.reference.institutions import (
    HierarchyRefused,
    InstitutionDirectory,
    read_institution_file,
)


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
