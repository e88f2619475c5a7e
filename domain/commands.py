"""What travels between a run and a device: the command sent, and the events it reports.

Shared by the workflows, the store, the gateways and the API, so it lives on the ground floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeviceCommand:
    """One command for one device, as a gateway receives it."""

    command_id: str  # the idempotency key: sending the same id twice delivers it once
    target_run_id: str
    enterprise_id: str
    device_id: str
    operation_type: str
    # Out of the repr: they may hold a run's sensitive inputs (only the device sees them).
    args: dict[str, Any] = field(default_factory=dict, repr=False)
    device_attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class CommandEvent:
    """A command's progress as its gateway reported it (a command status of domain.statuses)."""

    command_id: str
    status: str
    reason: str = ""
    output: dict = field(default_factory=dict)
    sequence: int | None = None
    at_epoch: float = 0.0
    # What a device or its agent reported beside the status (an "update run" report): errors
    # and attachment ids appended to its target run's, messages appended to its history.
    # Defaults: events signalled before these fields existed still decode.
    error: list[str] = field(default_factory=list)
    output_attachment_ids: list[str] = field(default_factory=list)
    run_message_history: list[dict[str, Any]] = field(default_factory=list)

    def carries_data(self) -> bool:
        """Whether it reports anything beside its status and reason."""
        return bool(self.output or self.error or self.output_attachment_ids
                    or self.run_message_history)
