"""The demo data of `fleetpipe dev`: an enterprise, its API token, five simulated devices and a
two-stage pipeline. Idempotent: a second run finds what the first one made."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from store.db import transaction
from store.definitions.devices import Device, DeviceCreate, create_device
from store.definitions.operation_lists import OperationCreate
from store.definitions.pipelines import Pipeline
from store.definitions.tenants import create_token, ensure_enterprise, enterprise_for_key
from store.definitions.whole_pipelines import NestedStageCreate, PipelineCreate, create_pipeline

DEMO_ENTERPRISE = "demo"
DEMO_PIPELINE = "demo-rollout"
DEMO_DEVICE_COUNT = 5
DEMO_PACKAGE = {"package_name": "com.example.fleetapp", "app_version": "1.0.0"}
# (name, trigger): the first stage starts by itself, the second waits at a manual gate.
DEMO_STAGES: tuple[tuple[str, Literal["manual", "automatic"]], ...] = (
    ("canary", "automatic"),
    ("fleet", "manual"),
)


@dataclass(frozen=True)
class DemoSeed:
    enterprise_id: UUID
    pipeline_id: UUID
    device_ids: list[UUID]
    token: str


def seed_demo(engine: Engine, token_file: Path) -> DemoSeed:
    enterprise = ensure_enterprise(engine, DEMO_ENTERPRISE)
    token = _demo_token(engine, enterprise.id, token_file)
    with transaction(engine) as session:
        devices = _ensure_devices(session, enterprise.id)
        pipeline = _ensure_pipeline(session, enterprise.id, devices)
    return DemoSeed(enterprise.id, pipeline.id, [d.id for d in devices], token)


def _demo_token(engine: Engine, enterprise_id: UUID, token_file: Path) -> str:
    """The store keeps only a hash, so the plain key lives in a 0600 file: the same token across
    restarts. A file whose key the store no longer knows (a wiped database) is replaced."""
    if token_file.exists():
        key = token_file.read_text().strip()
        if key and enterprise_for_key(engine, key) == enterprise_id:
            return key
    key = create_token(engine, enterprise_id, name="fleetpipe dev")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.chmod(token_file, 0o600)  # an older file may have had wider permissions
    return key


def _ensure_devices(session: Session, enterprise_id: UUID) -> list[Device]:
    devices = []
    for n in range(1, DEMO_DEVICE_COUNT + 1):
        name = f"demo-device-{n}"
        device = session.exec(
            select(Device).where(Device.enterprise_id == enterprise_id, Device.name == name)
        ).first()
        if device is None:
            device = create_device(
                session,
                enterprise_id,
                DeviceCreate(
                    name=name,
                    alias=f"Demo device {n}",
                    attributes={"sim_behavior": "succeed", "sim_latency_ms": str(100 + 50 * n)},
                ),
            )
        devices.append(device)
    return devices


def _ensure_pipeline(session: Session, enterprise_id: UUID, devices: list[Device]) -> Pipeline:
    found = session.exec(
        select(Pipeline).where(
            Pipeline.enterprise_id == enterprise_id, Pipeline.name == DEMO_PIPELINE
        )
    ).first()
    if found is not None:  # left as it is: an operator may have edited it since
        return found
    device_ids = [d.id for d in devices]
    install = OperationCreate(operation_type="INSTALL", args=dict(DEMO_PACKAGE))
    return create_pipeline(
        session,
        enterprise_id,
        PipelineCreate(
            name=DEMO_PIPELINE,
            description=f"Install {DEMO_PACKAGE['package_name']} on the demo devices: "
            "a canary stage, then the fleet after a manual gate.",
            stages=[
                NestedStageCreate(
                    name=name, trigger=trigger, device_ids=device_ids, operations=[install]
                )
                for name, trigger in DEMO_STAGES
            ],
        ),
    )
