"""The one settings object of fleetpipe (environment prefix FLEETPIPE_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

# The device gateways a worker can drive (devices/choice.py builds each).
GatewayName = Literal["simulated", "esper", "mqtt"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETPIPE_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".fleetpipe")
    database_url: str = ""  # empty: SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fleetpipe.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_problem(error: ValidationError) -> str:
    """A refused setting as one line an operator can act on (the variable, why, the value)."""
    parts = []
    for item in error.errors():
        name = "FLEETPIPE_" + "_".join(str(part) for part in item["loc"]).upper()
        parts.append(f"{name}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(parts)
