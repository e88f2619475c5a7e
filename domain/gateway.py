"""The port every device gateway implements (simulated fleet today; MDMs and MQTT fleets next),
and the sink their command events go to. The worker owns a gateway's lifecycle: `start` once
before the first command, `stop` once after the last."""

from __future__ import annotations

from typing import Protocol

from domain.commands import CommandEvent, DeviceCommand


class EventSink(Protocol):
    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        """Record a command's events and pass the ones that changed something to its run."""


class DeviceGateway(Protocol):
    name: str  # recorded on every command it sends

    async def start(self) -> None:
        """Connect, and resume the commands an earlier process left open."""

    async def stop(self) -> None:
        """Finish or hand back what is in flight and disconnect."""

    async def send(self, command: DeviceCommand) -> None:
        """Queue a command for its device. Idempotent by command_id."""

    async def cancel(self, command_id: str) -> None:
        """Ask for a command to be cancelled; `cancelled` comes back as an event if it can be."""
