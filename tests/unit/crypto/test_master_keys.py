"""The master key file and data key wrapping: a new file is 0600 and never overwrites one; a
missing, damaged or wrong file is refused at load with a one-line message naming it; wrapping
round-trips under both suites and rotation re-wraps without changing the data key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from complaintcore.crypto.keys import (
    FILE_MAGIC,
    FileKeyProvider,
    KeyProvider,
    MasterKeyError,
    MasterKeyMissing,
    MasterKeyRejected,
    create_master_key_file,
    rewrap,
    wrapped_key_id,
)
from complaintcore.crypto.suites import (
    AES_256_GCM,
    SM4_GCM,
    SUITE_NAMES,
    CiphertextRejected,
    suite_named,
)


@pytest.fixture(params=SUITE_NAMES)
def suite_name(request: pytest.FixtureRequest) -> str:
    return request.param


def key_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith(FILE_MAGIC))


def replace_key_line(path: Path, line: str) -> None:
    path.write_text(path.read_text().replace(key_line(path), line))


def one_line_naming(error: MasterKeyError, path: Path) -> str:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_a_new_key_file_is_mode_0600_and_names_its_key(tmp_path: Path, suite_name: str) -> None:
    path = tmp_path / "master.key"
    previous = os.umask(0)  # even with nothing masked, the file is readable by its owner only
    try:
        key_id = create_master_key_file(path, suite_name)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    magic, version, suite, file_key_id, _key = key_line(path).split()
    assert (magic, version, suite, file_key_id) == (FILE_MAGIC, "v1", suite_name, key_id)
    assert FileKeyProvider(path).key_id == key_id
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists: a master key file is never"):
        create_master_key_file(path)
    assert path.read_bytes() == before
    other = tmp_path / "notes.txt"
    other.write_text("not a key")
    with pytest.raises(FileExistsError, match=str(other)):
        create_master_key_file(other)
    assert other.read_text() == "not a key"
    assert sorted(tmp_path.iterdir()) == [path, other]


def test_two_new_keys_differ(tmp_path: Path) -> None:
    assert create_master_key_file(tmp_path / "a") != create_master_key_file(tmp_path / "b")


def test_a_missing_key_file_is_refused_naming_the_file_and_setting(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(MasterKeyMissing) as refused:
        FileKeyProvider(path)
    message = one_line_naming(refused.value, path)
    assert "COMPLAINTCORE_MASTER_KEY_FILE" in message
    assert "complaintcore keys create FILE" in message


def test_the_wrong_key_file_is_refused_naming_both_keys(tmp_path: Path) -> None:
    right_id = create_master_key_file(tmp_path / "right.key")
    wrong = tmp_path / "wrong.key"
    wrong_id = create_master_key_file(wrong)
    with pytest.raises(MasterKeyRejected) as refused:
        FileKeyProvider(wrong, expected_key_ids={right_id})
    message = one_line_naming(refused.value, wrong)
    assert f"holds key {wrong_id}" in message and f"wrapped under {right_id}" in message
    assert FileKeyProvider(wrong, expected_key_ids={right_id, wrong_id}).key_id == wrong_id


def test_a_key_wrapped_under_another_master_key_is_refused(tmp_path: Path) -> None:
    create_master_key_file(tmp_path / "right.key")
    create_master_key_file(tmp_path / "wrong.key")
    right, wrong = FileKeyProvider(tmp_path / "right.key"), FileKeyProvider(tmp_path / "wrong.key")
    wrapped = right.wrap(suite_named(AES_256_GCM).new_data_key())
    with pytest.raises(MasterKeyRejected) as refused:
        wrong.unwrap(wrapped)
    message = one_line_naming(refused.value, tmp_path / "wrong.key")
    assert f"wrapped under master key {right.key_id}" in message


def test_an_edited_key_is_refused_by_its_check_value(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    magic, version, suite, key_id, key = key_line(path).split()
    edited = key[:5] + ("B" if key[5] != "B" else "C") + key[6:]
    replace_key_line(path, f"{magic} {version} {suite} {key_id} {edited}")
    with pytest.raises(MasterKeyRejected) as refused:
        FileKeyProvider(path)
    message = one_line_naming(refused.value, path)
    assert f"damaged or was edited: its key does not match its check value {key_id}" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "expected one line"),
        ("hello world\n", "is not a complaintcore master key file"),
        (f"{FILE_MAGIC} v9 aes-256-gcm 00 AAAA\n", "of format v9; this version reads v1"),
        (f"{FILE_MAGIC} v1 des-cbc 00 AAAA\n", "names cipher suite 'des-cbc'"),
        (f"{FILE_MAGIC} v1 aes-256-gcm 00 AAAA\n", "its key is not 32 bytes of base64url"),
        (f"{FILE_MAGIC} v1 sm4-gcm 00 {'A' * 22}\n", "does not match its check value 00"),
    ],
)
def test_a_malformed_key_file_is_refused(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "master.key"
    path.write_text(content)
    with pytest.raises(MasterKeyRejected, match=reason) as refused:
        FileKeyProvider(path)
    one_line_naming(refused.value, path)


def test_a_folder_or_a_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyRejected, match=r"not a regular file|is a directory"):
        FileKeyProvider(tmp_path)
    huge = tmp_path / "huge.key"
    huge.write_text("# padding\n" * 1000)
    with pytest.raises(MasterKeyRejected, match="too large"):
        FileKeyProvider(huge)


def test_comments_and_blank_lines_around_the_key_line_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key_id = create_master_key_file(path, SM4_GCM)
    path.write_text(f"\n# kept in the vault, copy 2 of 2\n\n  {key_line(path)}  \n\n")
    assert FileKeyProvider(path).key_id == key_id


def test_wrap_and_unwrap_round_trip(tmp_path: Path, suite_name: str) -> None:
    create_master_key_file(tmp_path / "master.key", suite_name)
    provider = FileKeyProvider(tmp_path / "master.key")
    assert isinstance(provider, KeyProvider)
    for data_suite in SUITE_NAMES:
        data_key = suite_named(data_suite).new_data_key()
        wrapped = provider.wrap(data_key)
        assert data_key not in wrapped
        assert wrapped_key_id(wrapped) == provider.key_id
        assert provider.unwrap(wrapped) == data_key
        assert FileKeyProvider(tmp_path / "master.key").unwrap(wrapped) == data_key


def test_every_altered_byte_of_a_wrapped_key_is_refused(tmp_path: Path, suite_name: str) -> None:
    create_master_key_file(tmp_path / "master.key", suite_name)
    provider = FileKeyProvider(tmp_path / "master.key")
    wrapped = provider.wrap(suite_named(AES_256_GCM).new_data_key())
    for index in range(len(wrapped)):
        altered = bytearray(wrapped)
        altered[index] ^= 0x01
        with pytest.raises((CiphertextRejected, MasterKeyRejected)):
            provider.unwrap(bytes(altered))
    with pytest.raises(CiphertextRejected, match="truncated"):
        provider.unwrap(wrapped[: 2 + len(provider.key_id)])


def test_rewrap_moves_a_data_key_to_the_new_master_key(tmp_path: Path) -> None:
    create_master_key_file(tmp_path / "old.key", AES_256_GCM)
    create_master_key_file(tmp_path / "new.key", SM4_GCM)
    old, new = FileKeyProvider(tmp_path / "old.key"), FileKeyProvider(tmp_path / "new.key")
    data_key = suite_named(SM4_GCM).new_data_key()
    rewrapped = rewrap(old, new, old.wrap(data_key))
    assert wrapped_key_id(rewrapped) == new.key_id
    assert new.unwrap(rewrapped) == data_key
    with pytest.raises(MasterKeyRejected):
        old.unwrap(rewrapped)


def test_the_provider_never_shows_its_key(tmp_path: Path) -> None:
    create_master_key_file(tmp_path / "master.key")
    provider = FileKeyProvider(tmp_path / "master.key")
    key = key_line(tmp_path / "master.key").split()[-1]
    assert key not in repr(provider)
    assert (
        repr(provider)
        == f"FileKeyProvider({str(tmp_path / 'master.key')!r}, key_id={provider.key_id!r})"
    )
