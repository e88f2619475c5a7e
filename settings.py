"""The one settings object of fleetpipe (environment prefix FLEETPIPE_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.codec import CodecKeysInvalid, KeyRing, parse_keyring
from workflows.names import targets_task_queue

# The device gateways a worker can drive (devices/choice.py builds each).
GatewayName = Literal["simulated", "esper", "mqtt"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETPIPE_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".fleetpipe")
    database_url: str = ""  # empty: SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # The Temporal Web UI the run page links each run's workflow to.
    temporal_ui_url: str = "http://127.0.0.1:8233"
    task_queue: str = "fleetpipe"
    # Custom search attributes need registering on the server; the time-skipping test server
    # has none, so tests there switch them off.
    search_attributes: bool = True
    gateway: GatewayName = "simulated"
    sim_seed: int = 0
    # The MQTT gateway (AWS IoT Jobs over any broker): mqtt:// or mqtts://, user:pass@ allowed.
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_topic_root: str = "$aws/things"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # In-flight target-run children per stage-run workflow (Temporal advises <= 500 pending).
    stage_window: int = 200
    max_request_bytes: int = 1_048_576
    # The worker resends owed command-event signals this often (backing off while Temporal
    # refuses them), and looks for runs whose workflow closed without ending them this often.
    resend_interval_seconds: float = 5.0
    reconcile_interval_seconds: float = 60.0

    # Run event streams (SSE): a keep-alive comment this often while a stream is idle; one
    # shared read of the run logs per API process this often; a hole in the log's ids (a
    # transaction not yet committed, or rolled back) is waited for at most this long.
    event_stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    event_stream_poll_seconds: float = Field(default=0.5, gt=0)
    event_stream_gap_grace_seconds: float = Field(default=5.0, ge=0)

    # Where clients reach the API (`https://fleet.example.com`): page links start with it. Empty:
    # links are relative (path and query), never built from the request's Host header.
    public_base_url: str = ""

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base(cls, value: str) -> str:
        if value and not (value.startswith(("http://", "https://")) and "?" not in value):
            raise ValueError(f"FLEETPIPE_PUBLIC_BASE_URL must be an http(s) URL without a "
                             f"query, like https://fleet.example.com; got {value!r}")
        return value.rstrip("/")

    # The Esper gateway (devices/esper): the tenant's API (the SDK's host), its key and
    # enterprise, and the bounds on how hard fleetpipe calls it.
    esper_url: str = ""  # e.g. https://<tenant>-api.esper.cloud/api
    esper_api_key: str = ""
    esper_enterprise_id: str = ""
    esper_max_requests_per_second: float = 10.0  # every call to Esper, per worker process
    esper_poll_interval_s: float = 5.0  # a command's first status poll; doubles while unchanged
    esper_poll_max_interval_s: float = 60.0

    # Target runs poll a task queue of their own; empty: `<task_queue>-targets`.
    targets_task_queue: str = ""
    # Worker concurrency: the runs' worker (pipeline and stage runs) and the targets' worker.
    worker_runs_max_workflow_tasks: int = 20
    worker_runs_max_activities: int = 50
    worker_runs_max_local_activities: int = 100
    worker_targets_max_workflow_tasks: int = 100
    worker_targets_max_activities: int = 200
    worker_targets_max_local_activities: int = 200
    # The worker's /metrics, /healthz and /readyz; port 0 serves none of them.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464
    log_format: Literal["text", "json"] = "text"

    # The payload codec's keys, `kid:base64key,...` (32-byte AES keys; the first encrypts, all
    # decrypt): every API and worker process needs the same. Empty: sensitive run inputs are
    # refused. The Web UI origins allowed to call the codec endpoint (comma-separated).
    codec_keys: str = Field(default="", repr=False)
    codec_cors_origins: str = "http://127.0.0.1:8233,http://localhost:8233"

    @field_validator("codec_keys")
    @classmethod
    def _readable_keys(cls, value: str) -> str:
        try:
            parse_keyring(value)
        except CodecKeysInvalid as exc:
            raise ValueError(f"FLEETPIPE_CODEC_KEYS: {exc}") from None
        return value

    def codec_keyring(self) -> KeyRing:
        return parse_keyring(self.codec_keys)

    def codec_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.codec_cors_origins.split(",") if o.strip()]

    def resolved_targets_task_queue(self) -> str:
        return self.targets_task_queue or targets_task_queue(self.task_queue)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fleetpipe.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


_SECRET_SETTINGS = {"FLEETPIPE_CODEC_KEYS", "FLEETPIPE_ESPER_API_KEY"}


def settings_problem(error: ValidationError) -> str:
    """A refused setting as one line an operator can act on (the variable, why, the value)."""
    parts = []
    for item in error.errors():
        name = "FLEETPIPE_" + "_".join(str(part) for part in item["loc"]).upper()
        if name in _SECRET_SETTINGS:  # a key is never echoed, even a malformed one
            parts.append(f"{name}: {item['msg']}")
        else:
            parts.append(f"{name}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(parts)
