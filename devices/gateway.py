"""The one protocol every device gateway speaks (simulated fleet, HTTP MDM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from workflows.messages import CommandEvent


@dataclass
class DeviceCommand:
    command_id: str  # the idempotency key: sending the same id twice delivers it once
    target_run_id: str
    enterprise_id: str
    device_id: str
    operation_type: str
    args: dict[str, Any] = field(default_factory=dict)
    device_attributes: dict[str, str] = field(default_factory=dict)


class DeviceGateway(Protocol):
    name: str

    async def send(self, command: DeviceCommand) -> None:
        """Queue a command for its device. Idempotent by command_id."""

    async def cancel(self, command_id: str) -> None:
        """Ask the gateway to cancel a command; it reports `cancelled` as an event if it can."""


class EventSink(Protocol):
    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        """Record a command's events and pass the ones that changed something to its workflow."""
