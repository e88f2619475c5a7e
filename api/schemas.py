"""The request bodies of the run actions and of device events: what only the API takes.
The definitions' and runs' shapes (`XCreate`, `XUpdate`, `XPublic`) live beside their tables in
store.definitions and store.runs."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.actions import ACTIONS
from domain.bounds import JsonObject, Position
from domain.statuses import STATUSES, RunKind
from store.shapes import one_of

# ---- run actions -----------------------------------------------------------------------------


class PipelineRunCreate(BaseModel):
    """The body of POST .../runs: an empty object (nothing to set yet)."""

    model_config = ConfigDict(extra="ignore")


class PipelineRunAction(BaseModel):
    status: str = one_of(ACTIONS[RunKind.PIPELINE],
                         "The action, as a status value in any case: cancelled, waiting "
                         "(pause) or running (resume, or pass the manual gate).")


class StageRunAction(BaseModel):
    status: str = one_of(ACTIONS[RunKind.STAGE],
                         "The action, as a status value in any case: queued (promote) or "
                         "cancelled.")


class TargetRunUpdate(BaseModel):
    status: str | None = one_of(ACTIONS[RunKind.TARGET], "cancelled (any case)", optional=True)
    device_name: str | None = Field(
        default=None, max_length=255,
        description="Kept from the device at the time of the run; only the "
        "current value is accepted.")


class TargetRunAdd(BaseModel):
    target_id: UUID = Field(description="The device to add.")
    device_name: str | None = Field(default=None, max_length=255,
                                    description="Default: the device's name.")
    device_alias: str | None = Field(default=None, max_length=255,
                                     description="Default: the device's alias.")


class CommandRequest(BaseModel):
    """The body of POST .../command (AndroidCommandRequest): the stage's operation is sent;
    fields given here are ignored."""

    model_config = ConfigDict(extra="allow")


class CommandUpdate(BaseModel):
    request_status: str = one_of(ACTIONS[RunKind.COMMAND], "cancelled (any case)")


class DeviceEventIn(BaseModel):
    status: str = one_of(STATUSES[RunKind.COMMAND], "A command status (any case).")
    reason: str = Field(default="", max_length=10_000)
    output: JsonObject = Field(default_factory=dict,
                               description="What the device reported: a JSON object.")
    sequence: Position | None = Field(
        default=None, description="The gateway's counter; an event older than the last applied "
        "one changes nothing.")
    error: list[str] = Field(default_factory=list,
                             description="Errors to append to the target run's `error`.")
    output_attachment_ids: list[str] = Field(
        default_factory=list, description="Ids of files the device produced, appended once.")
    run_message_history: list[JsonObject] = Field(
        default_factory=list, description="Messages to append to the target run's history.")


class DeviceEventResult(BaseModel):
    command_id: UUID
    status: str = one_of(STATUSES[RunKind.COMMAND], "The command's status after these events.")
    applied: int = Field(description="How many of the events changed something.")
    received: int
