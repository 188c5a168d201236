"""`open_user_file`, the one way the command line opens a file it is given: regular files only,
at most `max_file_bytes` (checked before reading and while reading), and reference data nested
too deeply refused as a `ValueError` rather than a `RecursionError`."""

import codecs
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from complaintcore.reference.files import UserFileRefused, open_user_file, read_json_or_csv
from complaintcore.reference.institutions import institutions_from_json, read_institution_file

TREE = [{"code": "BOC", "name": "中国银行", "kind": "head_office", "parent": None}]
WAIT_S = 10.0


def promptly(work: Callable[[], Any]) -> Any:
    """`work()`'s result or exception, failing the test if it blocks (a FIFO, `/dev/zero`)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), f"still blocked after {WAIT_S:g} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_regular_file_reads_whole(tmp_path: Path) -> None:
    file = tmp_path / "cases.jsonl"
    file.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    with open_user_file(file, 1024) as opened:
        assert list(opened) == [b'{"a": 1}\n', b'{"b": 2}\n']


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    file = tmp_path / "exact.jsonl"
    file.write_bytes(b"x" * 1024)
    with open_user_file(file, 1024) as opened:
        assert opened.read() == b"x" * 1024


def test_a_symlink_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(UserFileRefused, match="character device, not a regular file"):
        promptly(lambda: open_user_file(link, 1024))


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_bytes(b"[]")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with open_user_file(link, 1024) as opened:
        assert opened.read() == b"[]"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(UserFileRefused, match="FIFO, not a regular file"):
        promptly(lambda: open_user_file(fifo, 1024))


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserFileRefused, match="directory, not a regular file"):
        open_user_file(tmp_path, 1024)


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_user_file(tmp_path / "missing.json", 1024)


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    file = tmp_path / "big.jsonl"
    file.write_bytes(b"x" * 1025)
    with pytest.raises(UserFileRefused, match="limit of 1024 bytes"):
        open_user_file(file, 1024)


def test_a_file_that_grows_past_the_limit_while_read_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "growing.jsonl"
    file.write_bytes(b"x\n" * 500)
    with open_user_file(file, 1024) as opened:
        with file.open("ab") as writer:
            writer.write(b"y\n" * 500)
        with pytest.raises(UserFileRefused, match="limit of 1024 bytes"):
            for _line in opened:
                pass


def test_the_limit_defaults_to_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from complaintcore.infra.settings import get_settings

    file = tmp_path / "big.json"
    file.write_bytes(b" " * 2048 + b"[]")
    monkeypatch.setenv("COMPLAINTCORE_MAX_FILE_BYTES", "1024")
    get_settings.cache_clear()
    try:
        with pytest.raises(UserFileRefused, match="limit of 1024 bytes"):
            open_user_file(file)
    finally:
        get_settings.cache_clear()


def test_json_nested_too_deeply_is_a_value_error_not_a_recursion_error(tmp_path: Path) -> None:
    file = tmp_path / "deep.json"
    file.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserFileRefused, match="nested too deeply"):
        read_institution_file(file)


def test_json_reads_as_the_json_module_reads_it_with_or_without_a_byte_order_mark(
    tmp_path: Path,
) -> None:
    text = json.dumps(TREE, ensure_ascii=False) + "\r\n"
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(codecs.BOM_UTF8 + text.encode())
    expected = institutions_from_json(json.loads(text))
    assert read_institution_file(plain) == read_institution_file(marked) == expected
    # Values the json module takes and orjson would not (NaN, a 100-digit integer) still parse.
    odd = tmp_path / "odd.json"
    odd.write_text("[NaN, 1" + "0" * 100 + "]")
    assert read_json_or_csv(odd, lambda data: [repr(data)], lambda lines: []) == [
        repr([float("nan"), 10**100])
    ]


def test_csv_lines_keep_their_line_endings_for_the_csv_reader(tmp_path: Path) -> None:
    file = tmp_path / "cells.csv"
    file.write_bytes(codecs.BOM_UTF8 + b'a,"x\r\ny"\r\nb,z\n')
    rows = read_json_or_csv(file, lambda data: [], lambda lines: [list(lines)])
    assert rows == [['a,"x\r\n', 'y"\r\n', "b,z\n"]]


def test_a_csv_field_past_the_csv_modules_limit_is_a_value_error(tmp_path: Path) -> None:
    file = tmp_path / "tree.csv"
    file.write_text("code,name,kind,parent\nA," + "甲" * 200_000 + ",head_office,\n")
    with pytest.raises(ValueError, match="unreadable CSV: field larger than field limit"):
        read_institution_file(file)


def test_bytes_not_utf8_are_a_value_error(tmp_path: Path) -> None:
    file = tmp_path / "tree.json"
    file.write_bytes(b"\xff\xfe[]")
    with pytest.raises(ValueError):
        read_institution_file(file)


def test_no_descriptor_is_left_open_by_a_refusal(tmp_path: Path) -> None:
    big, fifo = tmp_path / "big.jsonl", tmp_path / "pipe.jsonl"
    big.write_bytes(b"x" * 2048)
    os.mkfifo(fifo)
    before = len(os.listdir("/proc/self/fd"))
    for path in (big, fifo, Path("/dev/zero")) * 20:
        with pytest.raises(UserFileRefused):
            open_user_file(path, 1024)
    assert len(os.listdir("/proc/self/fd")) == before
