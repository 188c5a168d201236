"""Service settings, read from the environment (and a `.env` file if present).

Every variable is documented in README.md ("Configuration").
"""

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from complaintcore.infra.allow_list import allow_list_item
from complaintcore.infra.postgres_urls import check_postgres_url

# A delivery is claimed for `webhook_lease_s`; its send takes up to a name lookup
# (webhooks/urls.py, 5 s) and the receiver's `webhook_timeout_s`, then its outcome is written. A
# lease that ends first lets another round send it again while the first waits for its answer.
WEBHOOK_LEASE_OVER_TIMEOUT_S = 10.0


def _lower_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _list_items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        # a URL of another kind, or a port no number, was a traceback, or waited for as a
        # database down (found by review passes): `check_postgres_url`
        description="PostgreSQL URL. Unset: an embedded PostgreSQL under `data_dir` is used.",
    )
    data_dir: Path = Field(
        default=Path(".pgdata"),
        validation_alias="COMPLAINTCORE_DATA_DIR",
        description="Folder of the embedded PostgreSQL's data (git-ignored).",
    )
    master_key_file: Path | None = Field(
        default=None,
        validation_alias="COMPLAINTCORE_MASTER_KEY_FILE",
        description="File of the master key that wraps every case's data key (made by "
        "`complaintcore keys create FILE`). Unset: the embedded default creates "
        "`<data_dir>/master.key`; with `DATABASE_URL` set, `serve` refuses to start.",
    )
    cipher_suite: Literal["aes-256-gcm", "sm4-gcm"] = Field(
        default="aes-256-gcm",
        validation_alias="COMPLAINTCORE_CIPHER_SUITE",
        description="Cipher suite of new streams and data keys: `aes-256-gcm` (SHA-256 chains) "
        "or `sm4-gcm` (SM3 chains, for the PRC commercial cryptography rules).",
    )
    # an empty value would have uvicorn listen on every interface (found by a review pass)
    host: str = Field(default="127.0.0.1", pattern=r"^\S+$", validation_alias="COMPLAINTCORE_HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="COMPLAINTCORE_PORT")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        validation_alias="COMPLAINTCORE_LOG_FORMAT",
        description="`json` lines for production, `console` for a terminal, `auto` picks by tty.",
    )
    # any letter case (found by a review pass: an unknown level was a traceback)
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], BeforeValidator(_lower_case)
    ] = Field(default="info", validation_alias="COMPLAINTCORE_LOG_LEVEL")
    pool_min_size: int = Field(default=2, ge=0, validation_alias="COMPLAINTCORE_POOL_MIN")
    # As many connections as concurrent commands: a command queued for a connection waits out a
    # whole transaction of another (32 clients on a pool of 20: p99 1.4 times as long).
    pool_max_size: int = Field(default=32, ge=1, validation_alias="COMPLAINTCORE_POOL_MAX")
    runners: Literal["separate", "in-process", "none"] = Field(
        default="separate",
        validation_alias="COMPLAINTCORE_RUNNERS",
        description="Where `serve` runs the projection runners and the webhook workers: "
        "`separate`, a `complaintcore runners` child process it supervises; `in-process`, in "
        "every request worker; `none`, not at all (`complaintcore runners` runs elsewhere).",
    )
    runner_processes: int = Field(
        default=1,
        ge=1,
        le=8,
        validation_alias="COMPLAINTCORE_RUNNER_PROCESSES",
        description="How many `complaintcore runners` children `serve` supervises (with "
        "`separate`). The projection runners are active in one at a time, the others standing "
        "by; the webhook dispatchers all send, sharing the deliveries by their claims: more "
        "than one when one process cannot send the alerts as fast as they come.",
    )
    projection_runner: bool = Field(
        default=True,
        validation_alias="COMPLAINTCORE_PROJECTION_RUNNER",
        description="Run the statistics projection runner in this process (one is active at a "
        "time across all processes; the others stand by).",
    )
    projection_poll_s: float = Field(
        default=0.5,
        gt=0,
        validation_alias="COMPLAINTCORE_PROJECTION_POLL",
        description="Seconds the active runner waits before asking the feed again when idle.",
    )
    projection_standby_s: float = Field(
        default=2.0,
        gt=0,
        validation_alias="COMPLAINTCORE_PROJECTION_STANDBY",
        description="Seconds a standby runner waits between attempts to take over.",
    )
    database_wait_s: float = Field(
        default=30.0,
        ge=0,
        validation_alias="COMPLAINTCORE_DATABASE_WAIT",
        description="Seconds `serve` waits for an unreachable database at start-up before failing.",
    )
    database_connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT",
        description="Seconds to connect to one host of DATABASE_URL before the next is tried.",
    )
    database_keepalive_s: int = Field(
        default=30,
        ge=0,
        le=3600,
        validation_alias="COMPLAINTCORE_DATABASE_KEEPALIVE",
        description="Seconds of silence after which PostgreSQL probes each of the service's "
        "connections (3 probes 10 s apart), so the session of a host that died without "
        "closing it (powered off, cut off) ends, with its locks, within about this plus 30 s "
        "instead of the server's default two hours. 0: the server's own settings.",
    )
    database_command_timeout_s: float = Field(
        default=60.0,
        ge=0,
        validation_alias="COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT",
        description="Seconds a statement of the service's pools may take before it is given up "
        "(and its connection dropped): a primary that hangs is left. 0: no limit.",
    )
    read_replica_urls: str = Field(
        default="",
        validation_alias="COMPLAINTCORE_READ_REPLICA_URLS",
        description="Comma-separated URLs of hot standbys of the primary: lists, deadlines, "
        "statistics, replay and audit are read there while they keep up (infra/read_replicas.py).",
    )
    read_replica_max_lag_s: float = Field(
        default=5.0,
        ge=0,
        validation_alias="COMPLAINTCORE_READ_REPLICA_MAX_LAG",
        description="Seconds a standby may be behind the primary and still serve reads.",
    )
    read_replica_check_s: float = Field(
        default=1.0,
        gt=0,
        validation_alias="COMPLAINTCORE_READ_REPLICA_CHECK",
        description="Seconds between two readings of each standby's lag.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        validation_alias="COMPLAINTCORE_MAX_BODY_BYTES",
        description="Largest request body accepted; larger ones get 413 before they are read.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="COMPLAINTCORE_HEADER_TIMEOUT",
        description="Seconds a client has to send a request's headers, from its first byte.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="COMPLAINTCORE_BODY_TIMEOUT",
        description="Seconds a client has to send a request's whole body, after its headers.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        validation_alias="COMPLAINTCORE_MAX_HEADER_BYTES",
        description="Largest request line and headers accepted, in bytes (431 beyond).",
    )
    max_header_count: int = Field(
        default=100,
        ge=10,
        validation_alias="COMPLAINTCORE_MAX_HEADERS",
        description="Most request headers accepted (431 beyond).",
    )
    max_file_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        validation_alias="COMPLAINTCORE_MAX_FILE_BYTES",
        description="Largest file the command line reads (reference data, imports).",
    )

    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias="COMPLAINTCORE_METRICS_TOKEN",
        description="Bearer token a scraper of `GET /metrics` must send. Unset: `/metrics` "
        "answers loopback clients only.",
    )

    # --- webhooks (API.md "Webhooks"; README "Webhooks") ---
    webhook_allow_hosts: str = Field(
        default="",
        validation_alias="COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS",
        description="Comma-separated host names, IP addresses and networks (CIDR) webhooks may "
        "use beyond public https: a name allows `http` to it, an address or network allows "
        "those (otherwise private, loopback, link-local) addresses. Example: `127.0.0.1`.",
    )
    webhook_workers: bool = Field(
        default=True,
        validation_alias="COMPLAINTCORE_WEBHOOK_WORKERS",
        description="Run the webhook fan-out and dispatcher in this process (every process may: "
        "they share the work through the database).",
    )
    webhook_poll_s: float = Field(default=0.25, gt=0, validation_alias="COMPLAINTCORE_WEBHOOK_POLL")
    webhook_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="COMPLAINTCORE_WEBHOOK_TIMEOUT",
        description="Seconds a receiver has to answer a delivery, all in.",
    )
    webhook_lease_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="COMPLAINTCORE_WEBHOOK_LEASE",
        description="Seconds a claimed delivery stays with its dispatcher; after a crash it "
        "is sent again once this has passed. At least the timeout plus 10 s (refused at start "
        "otherwise).",
    )
    webhook_retry_base_s: float = Field(
        default=10.0, gt=0, validation_alias="COMPLAINTCORE_WEBHOOK_RETRY_BASE"
    )
    webhook_retry_cap_s: float = Field(
        default=3600.0, gt=0, validation_alias="COMPLAINTCORE_WEBHOOK_RETRY_CAP"
    )
    webhook_retry_window_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        validation_alias="COMPLAINTCORE_WEBHOOK_RETRY_WINDOW",
        description="Seconds from a delivery's first attempt after which a failed attempt "
        "marks it `failed`.",
    )
    webhook_concurrency: int = Field(
        default=64, ge=1, validation_alias="COMPLAINTCORE_WEBHOOK_CONCURRENCY"
    )
    webhook_per_subscription: int = Field(
        default=4,
        ge=1,
        validation_alias="COMPLAINTCORE_WEBHOOK_PER_SUBSCRIPTION",
        description="Deliveries of one subscription sent and not yet answered at once per "
        "process (the connections its receiver gets at most).",
    )

    @model_validator(mode="after")
    def _pool_min_within_max(self) -> "Settings":
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"COMPLAINTCORE_POOL_MIN ({self.pool_min_size}) must not exceed "
                f"COMPLAINTCORE_POOL_MAX ({self.pool_max_size})"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> "Settings":
        shortest = self.webhook_timeout_s + WEBHOOK_LEASE_OVER_TIMEOUT_S
        if self.webhook_lease_s < shortest:
            raise ValueError(
                f"COMPLAINTCORE_WEBHOOK_LEASE ({self.webhook_lease_s:g} s) must be at least "
                f"COMPLAINTCORE_WEBHOOK_TIMEOUT ({self.webhook_timeout_s:g} s) plus "
                f"{WEBHOOK_LEASE_OVER_TIMEOUT_S:g} s: a delivery whose lease ends while its "
                "receiver may still answer is sent again meanwhile"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _token_says_something(cls, token: SecretStr | None) -> SecretStr | None:
        # set but empty, it matched a request sending no token at all (found by a review pass)
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("must not be empty: unset it to let loopback clients alone scrape")
        return token

    @field_validator("read_replica_urls")
    @classmethod
    def _replicas_are_postgres_urls(cls, urls: str) -> str:
        for url in _list_items(urls):
            check_postgres_url(url)
        return urls

    @field_validator("database_url")
    @classmethod
    def _database_url_readable(cls, url: str | None) -> str | None:
        return None if url is None else check_postgres_url(url)

    @field_validator("master_key_file", "data_dir", mode="before")
    @classmethod
    def _path_says_something(cls, path: object) -> object:
        # an empty value was read as the working directory (found by a review pass)
        if isinstance(path, str) and not path.strip():
            raise ValueError("must not be empty: unset it for the default")
        return path

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _allowed_hosts_are_names_or_networks(cls, allowed: str) -> str:
        for item in allowed.split(","):
            allow_list_item(item)  # ValueError: named in one line with the variable
        return allowed

    @property
    def read_replicas(self) -> list[str]:
        return _list_items(self.read_replica_urls)


@lru_cache
def get_settings() -> Settings:
    return Settings()


# the fields read from a variable of their own name, as the variable is spelled
_VARIABLES_BY_FIELD = {"database_url": "DATABASE_URL"}


def settings_refusal(refused: ValidationError) -> str:
    """What is wrong with the settings, one clause per variable, naming each variable and never
    its value (a URL's password, a token)."""
    clauses = []
    for error in refused.errors():
        where = ".".join(str(part) for part in error["loc"])
        where = _VARIABLES_BY_FIELD.get(where, where)
        message = error["msg"].removeprefix("Value error, ")
        clauses.append(f"{where}: {message}" if where else message)
    return "bad settings: " + "; ".join(clauses)


def otel_traces_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where this process sends its traces (OTLP over HTTP/protobuf, api/tracing.py), or None:
    tracing is off, the default. OpenTelemetry's own variables, read from the process environment
    as its SDK reads all the others (`OTEL_SERVICE_NAME`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`, ...),
    not from `.env`: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL), else
    `OTEL_EXPORTER_OTLP_ENDPOINT` (a base, its signal path appended as OpenTelemetry's exporters
    do); `OTEL_SDK_DISABLED=true` turns tracing off whatever is set."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if traces := environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return None
    return f"{base}v1/traces" if base.endswith("/") else f"{base}/v1/traces"
