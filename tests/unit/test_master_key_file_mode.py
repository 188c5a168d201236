"""A master key file that users other than its owner may read is taken with a warning naming
the file and its mode (docs/deployment.md asks for 0600; found by a review pass: a 0644 file was
taken without a word); a 0600 file, without one."""

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from complaintcore.application.master_key import load_key_provider
from complaintcore.crypto.keys import create_master_key_file


def _warnings_loading(path: Path) -> list[dict]:
    with capture_logs() as logs:
        load_key_provider(path, "aes-256-gcm")
    return [entry for entry in logs if entry["log_level"] == "warning"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_a_key_file_others_may_read_is_warned_about(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    path.chmod(mode)
    (warning,) = _warnings_loading(path)
    assert warning["path"] == str(path) and warning["mode"] == f"{mode:04o}"
    assert "0600" in warning["event"]


def test_a_key_file_of_its_owner_alone_loads_quietly(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert _warnings_loading(path) == []
