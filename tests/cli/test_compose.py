"""The compose file's production shape: the search attributes the workflows use, only the API
published and only on 127.0.0.1, no default password, the Web UI opt-in, healthchecks on every
long-running service, the migrations as a one-shot job the API and workers wait for."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.names import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ONE_SHOT = {"temporal-schema", "temporal-setup", "store-migrate"}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_compose_registers_every_search_attribute() -> None:
    pairs = _services()["temporal-setup"]["environment"]["SEARCH_ATTRIBUTES"].split()
    assert dict(pair.split("=", 1) for pair in pairs) == SEARCH_ATTRIBUTES


def test_workers_can_scale() -> None:
    worker = _services()["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_only_the_api_and_the_opt_in_ui_are_published_and_only_on_localhost() -> None:
    services = _services()
    published = {name: service["ports"] for name, service in services.items()
                 if service.get("ports")}
    assert set(published) == {"api", "temporal-ui"}
    assert published["api"] == ["${API_PUBLISH_ADDRESS:-127.0.0.1}:${API_PUBLISH_PORT:-8000}:8000"]
    assert published["temporal-ui"] == ["127.0.0.1:${UI_PUBLISH_PORT:-8233}:8080"]
    assert services["temporal-ui"]["profiles"] == ["ui"]
    assert all("profiles" not in s for name, s in services.items() if name != "temporal-ui")


def test_no_password_has_a_default() -> None:
    text = COMPOSE.read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", text)
    assert uses == ["${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (copy .env.example)}"]
    assert "fleetpipe:fleetpipe@" not in text and "PASSWORD: fleetpipe" not in text
    example = (REPO / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.MULTILINE)


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _services()
    long_running = set(services) - ONE_SHOT
    assert long_running == {"postgres", "temporal", "temporal-ui", "api", "worker"}
    assert all("healthcheck" in services[name] for name in long_running)
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert ":9464/readyz" in " ".join(services["worker"]["healthcheck"]["test"])


def test_the_migrations_run_once_before_the_api_and_the_workers() -> None:
    services = _services()
    assert services["store-migrate"]["command"] == ["fleetpipe", "db", "upgrade"]
    assert "restart" not in services["store-migrate"]
    for name in ("api", "worker"):
        waits_for = services[name]["depends_on"]
        assert waits_for["store-migrate"] == {"condition": "service_completed_successfully"}
        assert waits_for["temporal-setup"] == {"condition": "service_completed_successfully"}


def test_temporal_is_the_server_image_with_its_schema_set_up_by_admin_tools() -> None:
    services = _services()
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert "auto-setup" not in COMPOSE.read_text()
    schema = services["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert "setup-schema" in schema["command"][0] and "update-schema" in schema["command"][0]
    assert services["temporal"]["depends_on"]["temporal-schema"] == {
        "condition": "service_completed_successfully"}


def _compose_config(env_file: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    if password is not None:
        env["POSTGRES_PASSWORD"] = password
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True, text=True, env=env, timeout=60, check=False)


def test_compose_refuses_to_run_without_a_password() -> None:
    refused = _compose_config(REPO / ".env.example", None)
    assert refused.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in refused.stderr
    accepted = _compose_config(REPO / ".env.example", "only-for-this-test")
    assert accepted.returncode == 0, accepted.stderr
