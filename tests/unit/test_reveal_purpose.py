"""The purpose a reveal states (API.md: required, 1 to 200 characters): one line that says
something, checked the same by the route's query parameter and by `reveal` itself."""

import re
from pathlib import Path

import pytest
import yaml

from complaintcore.application.personal_data_reveal import PURPOSE_PATTERN, valid_purpose

SAID = ["复核投诉", " 复核 投诉 2026-11 ", "x" * 200, "a", "复核\u200b投诉"]
NOT_SAID = [
    "",
    " ",
    "\u3000\u3000",
    "x" * 201,
    "audit\n",  # `$` alone matches before a final line break
    "line\nbreak",
    "tab\there",
    "line\u2028separator",
    "paragraph\u2029separator",
    "nul\x00",
    "del\x7f",
    # invisible or blank alone: read back from the access log as nothing (a review pass)
    "\u200b",
    "\u200b\u200c\u200d",
    "\ufeff",
    "\u2060",
    "\u00ad",
    "\u3164",
    "\u2800",
    " \u200e ",
    # and every other format character, combining mark or filler alone (a second pass)
    "\u061c",
    "\u180e",
    "\u034f",
    "\ufe0f",
    "\U000e0020",
    "\u0301",
    "\uffff",  # noncharacters and unassigned code points (a third pass)
    "\U000e0080",
    "\u0378\u0378",
    "\U0010fffe",
    # who rather than why: kept in clear in the access log, and sent in a URL (a fourth pass)
    "核对 13812345678 的来电",
    "为11010519491231002X核对",
    "核对 110105-19491231-002X",  # in groups, or in full-width digits (a review pass)
    "回电 １３８００１３８０００",
]


@pytest.mark.parametrize("purpose", SAID)
def test_a_line_that_says_something_is_a_purpose(purpose: str) -> None:
    assert valid_purpose(purpose)


@pytest.mark.parametrize("purpose", NOT_SAID)
def test_blank_multi_line_or_control_characters_are_no_purpose(purpose: str) -> None:
    assert not valid_purpose(purpose)


@pytest.mark.parametrize("purpose", SAID + NOT_SAID)
def test_the_pattern_the_route_publishes_refuses_no_purpose_the_check_takes(purpose: str) -> None:
    """openapi.yaml's pattern, read as a JSON Schema reader reads it (the whole text): what it
    refuses is no purpose; the route and `reveal` also refuse a text of characters that show
    nothing, which a portable pattern cannot list."""
    if valid_purpose(purpose):
        assert re.fullmatch(PURPOSE_PATTERN, purpose) is not None


def test_the_route_publishes_the_pattern() -> None:
    """openapi.yaml's `purpose` carries the pattern (a validator beside the query's metadata,
    in front of it, once made FastAPI drop it from the schema)."""
    document = yaml.safe_load((Path(__file__).parents[2] / "openapi.yaml").read_text())
    operation = document["paths"]["/v1/complaints/{case_id}/personal-data"]["get"]
    (purpose,) = [p for p in operation["parameters"] if p["name"] == "purpose"]
    assert purpose["schema"]["pattern"] == PURPOSE_PATTERN
