"""The request bodies of the run actions and of device events: what only the API takes.
The definitions' and runs' shapes (`XCreate`, `XUpdate`, `XPublic`) live beside their tables in
store.definitions and store.runs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

# ---- run actions -----------------------------------------------------------------------------


class PipelineRunCreate(BaseModel):
    """The body of POST .../runs: an empty object (nothing to set yet)."""

    model_config = ConfigDict(extra="ignore")


class StatusAction(BaseModel):
    status: str = Field(
        description="The action, as a status value in any case (see the allowed values).")


class TargetRunUpdate(BaseModel):
    status: str | None = Field(default=None, description="cancelled (any case)")
    device_name: str | None = Field(
        default=None, description="Kept from the device at the time of the run; only the "
        "current value is accepted.")


class TargetRunAdd(BaseModel):
    target_id: UUID = Field(description="The device to add.")
    device_name: str | None = Field(default=None, description="Default: the device's name.")
    device_alias: str | None = Field(default=None, description="Default: the device's alias.")


class CommandRequest(BaseModel):
    """The body of POST .../command (AndroidCommandRequest): the stage's operation is sent;
    fields given here are ignored."""

    model_config = ConfigDict(extra="allow")


class CommandUpdate(BaseModel):
    request_status: str = Field(description="cancelled (any case)")


class DeviceEventIn(BaseModel):
    status: str = Field(description="A command status: scheduled, queued, initiated, "
                        "acknowledged, inprogress, success, failure, timeout or cancelled.")
    reason: str = ""
    output: dict[str, Any] = Field(default_factory=dict)
    sequence: int | None = Field(
        default=None, description="The gateway's counter; an event older than the last applied "
        "one changes nothing.")


class DeviceEventResult(BaseModel):
    command_id: UUID
    status: str = Field(description="The command's status after these events.")
    applied: int = Field(description="How many of the events changed something.")
    received: int
