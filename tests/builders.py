"""Definitions written straight into the store as rows, for every tier of tests: enterprises,
devices and groups, and pipelines whose stages list existing devices and groups or make fresh
devices of their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.engine import Engine

from devices.sim_records import create_tables
from domain.commands import DeviceCommand
from store.db import transaction
from store.definitions.devices import Device, DeviceGroup, DeviceGroupMember
from store.definitions.operation_lists import Operation, OperationList
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import (
    StageTargetList,
    TargetList,
    TargetListDevice,
    TargetListGroup,
)
from store.definitions.tenants import Enterprise, ensure_enterprise
from store.runs.commands import Command
from store.types import utcnow

INSTALL = {"operation_type": "INSTALL",
           "args": {"package_name": "com.example.app", "app_version": "1.2.3"}}
REBOOT = {"operation_type": "REBOOT", "args": {}}


def new_enterprise(engine: Engine) -> UUID:
    """A fresh enterprise, so no test sees another's rows."""
    return ensure_enterprise(engine, f"ent-{uuid4().hex[:10]}").id


def add_devices(engine: Engine, enterprise_id: UUID, count: int,
                prefix: str = "dev") -> list[UUID]:
    ids = []
    with transaction(engine) as session:
        for index in range(count):
            device = Device(enterprise_id=enterprise_id, name=f"{prefix}-{index}",
                            alias=f"{prefix}-alias-{index}")
            session.add(device)
            session.flush()
            ids.append(device.id)
    return ids


def add_group(engine: Engine, enterprise_id: UUID, device_ids: list[UUID],
              name: str = "group") -> UUID:
    with transaction(engine) as session:
        group = DeviceGroup(enterprise_id=enterprise_id, name=name)
        session.add(group)
        session.flush()
        for device_id in device_ids:
            session.add(DeviceGroupMember(device_group_id=group.id, device_id=device_id))
        return group.id


@dataclass
class TargetListSpec:
    devices: list[UUID] = field(default_factory=list)
    groups: list[UUID] = field(default_factory=list)


@dataclass
class StageSpec:
    name: str
    target_lists: list[TargetListSpec] = field(default_factory=list)  # existing devices, groups
    operations: list[dict[str, Any]] = field(default_factory=lambda: [INSTALL])
    trigger: str = "automatic"
    timeout_seconds: int | None = None  # None: the stage's default
    rollout: dict[str, Any] = field(default_factory=dict)
    # Fresh devices made for this stage (their attributes, one dict each), in a list of their own.
    devices: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Built:
    pipeline_id: UUID
    stage_ids: list[UUID]
    target_list_ids: list[list[UUID]]
    operation_ids: list[list[UUID]]


def build_pipeline(engine: Engine, enterprise_id: UUID, stages: list[StageSpec],
                   name: str = "rollout", timeout_seconds: int | None = None) -> Built:
    listed_at, position = utcnow(), count()
    with transaction(engine) as session:
        pipeline = Pipeline(enterprise_id=enterprise_id, name=name)
        if timeout_seconds is not None:
            pipeline.timeout_seconds = timeout_seconds
        session.add(pipeline)
        session.flush()
        built = Built(pipeline.id, [], [], [])
        for order, spec in enumerate(stages):
            stage = Stage(pipeline_id=pipeline.id, name=spec.name, order=order,
                          trigger=spec.trigger, rollout=spec.rollout)
            if spec.timeout_seconds is not None:
                stage.timeout_seconds = spec.timeout_seconds
            session.add(stage)
            session.flush()
            built.stage_ids.append(stage.id)
            list_ids = []
            target_lists = list(spec.target_lists)
            if spec.devices:
                fresh = [Device(enterprise_id=enterprise_id, name=f"{spec.name}-dev-{index}",
                                alias=f"d{index}", attributes=attributes)
                         for index, attributes in enumerate(spec.devices)]
                session.add_all(fresh)
                session.flush()
                target_lists.append(TargetListSpec(devices=[device.id for device in fresh]))
            for index, target_spec in enumerate(target_lists):
                target_list = TargetList(
                    pipeline_id=pipeline.id, name=f"{spec.name}-list-{index}",
                    target_list_type="GROUPS" if target_spec.groups else "DEVICES")
                session.add(target_list)
                session.flush()
                list_ids.append(target_list.id)
                session.add(StageTargetList(stage_id=stage.id, target_list_id=target_list.id))
                for device_id in target_spec.devices:
                    # distinct stamps: the snapshot keeps listed devices in created_at order
                    session.add(TargetListDevice(
                        target_list_id=target_list.id, device_id=device_id,
                        created_at=listed_at + timedelta(milliseconds=next(position))))
                for group_id in target_spec.groups:
                    session.add(TargetListGroup(target_list_id=target_list.id,
                                                device_group_id=group_id))
            built.target_list_ids.append(list_ids)
            op_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id, name=spec.name)
            session.add(op_list)
            session.flush()
            op_ids = []
            for index, op in enumerate(spec.operations):
                operation = Operation(operation_list_id=op_list.id, order=index, **op)
                session.add(operation)
                session.flush()
                op_ids.append(operation.id)
            built.operation_ids.append(op_ids)
        return built


def make_pipeline(engine: Engine, stages: list[StageSpec], *, enterprise: str = "acme",
                  name: str = "rollout", timeout_seconds: int | None = None) -> tuple[UUID, UUID]:
    """(enterprise id, pipeline id) of a new pipeline in the named enterprise (made if new)."""
    enterprise_id = ensure_enterprise(engine, enterprise).id
    built = build_pipeline(engine, enterprise_id, stages, name=name,
                           timeout_seconds=timeout_seconds)
    return enterprise_id, built.pipeline_id


@dataclass
class Rows:
    """Devices and their commands, one row at a time, in one enterprise of a test database
    (for the tests of commands, events and gateways)."""

    engine: Engine
    enterprise_id: UUID = field(default_factory=uuid4)

    def __post_init__(self) -> None:
        create_tables(self.engine)  # the simulator's own table, as a started fleet makes it
        with transaction(self.engine) as session:
            session.add(Enterprise(id=self.enterprise_id, name=f"ent-{self.enterprise_id}"))

    def device(self, **attributes: str) -> UUID:
        device_id = uuid4()
        with transaction(self.engine) as session:
            session.add(Device(id=device_id, enterprise_id=self.enterprise_id,
                               name=f"dev-{device_id.hex[:6]}", attributes=attributes))
        return device_id

    def command(self, device_id: UUID | None = None, *, target_run_id: UUID | None = None,
                **row: Any) -> DeviceCommand:
        """A command row (scheduled, unsent unless row says otherwise) and its DeviceCommand."""
        device_id = device_id or self.device()
        command = Command(id=uuid4(), target_run_id=target_run_id or uuid4(),
                          enterprise_id=self.enterprise_id, device_id=device_id,
                          operation_type="REBOOT", **row)
        with transaction(self.engine) as session:
            session.add(command)
            device = session.get(Device, device_id)
            assert device is not None
            attributes = device.attributes
        return DeviceCommand(command_id=str(command.id), target_run_id=str(command.target_run_id),
                             enterprise_id=str(self.enterprise_id), device_id=str(device_id),
                             operation_type="REBOOT", device_attributes=dict(attributes))

    def row(self, command_id: str) -> Command:
        with transaction(self.engine) as session:
            command = session.get(Command, UUID(command_id))
            assert command is not None
            return command

    def end_command(self, command_id: str, status: str) -> None:
        """End a command in the store as its run's closing would (no event through a sink)."""
        with transaction(self.engine) as session:
            command = session.get(Command, UUID(command_id))
            assert command is not None
            command.status = status
            session.add(command)
