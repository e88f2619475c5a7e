"""The compose file registers the same search attributes as the workflows use."""

from __future__ import annotations

from pathlib import Path

import yaml

from workflows.names import SEARCH_ATTRIBUTES

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_registers_every_search_attribute() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    pairs = services["temporal-setup"]["environment"]["SEARCH_ATTRIBUTES"].split()
    assert dict(pair.split("=", 1) for pair in pairs) == SEARCH_ATTRIBUTES


def test_workers_can_scale() -> None:
    worker = yaml.safe_load(COMPOSE.read_text())["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
