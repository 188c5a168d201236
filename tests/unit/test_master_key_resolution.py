"""Which master key file the service loads (`application/master_key.py`): the setting; else, for
the embedded default only, `<data_dir>/master.key`, made once; else a one-line refusal."""

from pathlib import Path

import pytest
import structlog

from complaintcore.application.master_key import (
    MasterKeyNotConfigured,
    load_key_provider,
    resolve_master_key_file,
)
from complaintcore.crypto.keys import FileKeyProvider, MasterKeyMissing, create_master_key_file
from complaintcore.infra.settings import Settings


@pytest.fixture(autouse=True)
def no_key_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE"):
        monkeypatch.delenv(name, raising=False)


def settings(data_dir: Path, **values: str) -> Settings:
    return Settings(_env_file=None, COMPLAINTCORE_DATA_DIR=str(data_dir), **values)


def test_the_setting_wins_and_nothing_is_created(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere.key"
    for embedded in (True, False):
        resolved = resolve_master_key_file(
            settings(tmp_path / "data", COMPLAINTCORE_MASTER_KEY_FILE=str(chosen)), embedded
        )
        assert resolved == chosen
    assert not chosen.exists()
    assert not (tmp_path / "data").exists()


def test_a_relative_setting_is_made_absolute_for_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    resolved = resolve_master_key_file(
        settings(tmp_path, COMPLAINTCORE_MASTER_KEY_FILE="keys/master.key"), embedded=False
    )
    assert resolved == tmp_path / "keys" / "master.key"


def test_a_database_url_without_a_key_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyNotConfigured) as refused:
        resolve_master_key_file(settings(tmp_path), embedded=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "COMPLAINTCORE_MASTER_KEY_FILE" in message
    assert "complaintcore keys create FILE" in message
    assert list(tmp_path.iterdir()) == []


def test_the_embedded_default_creates_its_key_0600_once_and_logs_where(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    data_dir.mkdir()
    with structlog.testing.capture_logs() as logs:
        path = resolve_master_key_file(settings(data_dir), embedded=True)
    assert path == data_dir.resolve() / "master.key"
    assert path.stat().st_mode & 0o777 == 0o600
    key_id = FileKeyProvider(path).key_id
    assert [entry["path"] for entry in logs] == [str(path)]
    assert "created" in logs[0]["event"]
    secret = path.read_text().split()[-1]
    assert secret not in repr(logs)

    with structlog.testing.capture_logs() as logs:
        again = resolve_master_key_file(settings(data_dir), embedded=True)
    assert again == path
    assert FileKeyProvider(path).key_id == key_id
    assert [entry["path"] for entry in logs] == [str(path)]
    assert "created" not in logs[0]["event"]


def test_the_embedded_default_key_is_of_the_configured_suite(tmp_path: Path) -> None:
    path = resolve_master_key_file(
        settings(tmp_path, COMPLAINTCORE_CIPHER_SUITE="sm4-gcm"), embedded=True
    )
    assert load_key_provider(path, "sm4-gcm").suite.name == "sm4-gcm"


def test_loading_names_a_missing_file_and_checks_the_suite(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyMissing, match="COMPLAINTCORE_MASTER_KEY_FILE"):
        load_key_provider(tmp_path / "absent.key", "aes-256-gcm")
    path = tmp_path / "master.key"
    create_master_key_file(path)
    with pytest.raises(ValueError):
        load_key_provider(path, "rot13")
    assert load_key_provider(path, "aes-256-gcm").path == path


def test_a_missing_embedded_key_is_not_replaced_while_the_database_holds_keys(
    tmp_path: Path,
) -> None:
    """Before, a new key file was made and the start then refused on the key ids: the next start
    found the stray file and refused as for a wrong key, never saying the real one was lost."""
    with pytest.raises(MasterKeyMissing) as refused:
        resolve_master_key_file(
            settings(tmp_path), embedded=True, database_key_ids=lambda: {"b2", "a1"}
        )
    message = str(refused.value)
    assert "\n" not in message
    assert str(tmp_path.resolve() / "master.key") in message and "a1, b2" in message
    assert list(tmp_path.iterdir()) == []


def test_the_database_is_asked_only_when_the_embedded_key_file_is_missing(
    tmp_path: Path,
) -> None:
    asked: list[bool] = []

    def held() -> set[str]:
        asked.append(True)
        return set()

    made = resolve_master_key_file(settings(tmp_path), embedded=True, database_key_ids=held)
    assert made.exists() and asked == [True]
    resolve_master_key_file(settings(tmp_path), embedded=True, database_key_ids=held)
    chosen = tmp_path / "elsewhere.key"
    resolve_master_key_file(
        settings(tmp_path, COMPLAINTCORE_MASTER_KEY_FILE=str(chosen)), True, database_key_ids=held
    )
    assert asked == [True]


@pytest.mark.parametrize(("key_suite", "deployment_suite"), [("aes-256-gcm", "sm4-gcm")])
def test_a_master_key_of_another_suite_than_the_deployments_is_said_at_start_up(
    tmp_path: Path, key_suite: str, deployment_suite: str
) -> None:
    """Found by a review pass: an sm4-gcm deployment wrapped its SM4 data keys under an AES
    master key without a word."""
    path = tmp_path / "master.key"
    create_master_key_file(path, key_suite)
    with structlog.testing.capture_logs() as logs:
        load_key_provider(path, deployment_suite)
        load_key_provider(path, key_suite)
    assert [(e["master_key_suite"], e["cipher_suite"]) for e in logs] == [
        (key_suite, deployment_suite)
    ]
    assert "keys rotate" in logs[0]["event"]
