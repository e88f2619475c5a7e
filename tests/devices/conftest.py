"""Rows and collaborators the devices tests share: an enterprise, devices, commands, a sink."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from devices.sim_records import create_tables
from domain.commands import CommandEvent, DeviceCommand
from store.db import transaction
from store.definitions.devices import Device
from store.definitions.tenants import Enterprise
from store.runs.commands import Command
from store.runs.events import record_command_events


@dataclass
class Rows:
    """Makes devices and their commands in one enterprise of a test database."""

    engine: Engine
    enterprise_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        create_tables(self.engine)  # the simulator's own table, as a started fleet makes it
        with transaction(self.engine) as session:
            session.add(Enterprise(id=self.enterprise_id, name=f"ent-{self.enterprise_id}"))

    def device(self, **attributes: str) -> uuid.UUID:
        device_id = uuid.uuid4()
        with transaction(self.engine) as session:
            session.add(Device(id=device_id, enterprise_id=self.enterprise_id,
                               name=f"dev-{device_id.hex[:6]}", attributes=attributes))
        return device_id

    def command(self, device_id: uuid.UUID | None = None, *, target_run_id: uuid.UUID | None = None,
                **row: Any) -> DeviceCommand:
        """A command row (scheduled, unsent unless row says otherwise) and its DeviceCommand."""
        device_id = device_id or self.device()
        command = Command(id=uuid.uuid4(), target_run_id=target_run_id or uuid.uuid4(),
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
            command = session.get(Command, uuid.UUID(command_id))
            assert command is not None
            return command


@pytest.fixture
def rows(engine: Engine) -> Rows:
    return Rows(engine)


@pytest.fixture
def sqlite_rows(sqlite_engine: Engine) -> Rows:
    return Rows(sqlite_engine)


class RecordingSink:
    """The relay without Temporal: records into the store like the relay, and remembers calls."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self.calls: list[tuple[str, list[CommandEvent], float]] = []

    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        self.calls.append((command_id, list(events), time.monotonic()))
        if self.engine is not None:
            await asyncio.to_thread(record_command_events, self.engine, command_id, events)

    def for_command(self, command_id: str) -> list[list[CommandEvent]]:
        return [events for cid, events, _ in self.calls if cid == command_id]

    def statuses(self, command_id: str) -> list[str]:
        return [e.status for events in self.for_command(command_id) for e in events]


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until `check()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
