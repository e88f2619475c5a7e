"""What the API shows: the `XPublic` member of each family (the inputs live in store.pipelines),
and the request bodies of the run actions. Field names follow the Esper v0 documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import SQLModel

from domain.schemas import RolloutConfig


class _Public(SQLModel):
    model_config = ConfigDict(from_attributes=True)  # type: ignore[assignment]


# ---- definitions -------------------------------------------------------------------------------


class DevicePublic(_Public):
    id: UUID
    name: str
    alias: str
    attributes: dict[str, str]
    group_ids: list[UUID] = Field(default_factory=list, description="The groups it belongs to.")
    created_at: datetime
    updated_at: datetime


class DeviceGroupPublic(_Public):
    id: UUID
    name: str
    device_count: int = 0
    device_ids: list[UUID] | None = Field(
        default=None, description="The members (on a single group; lists show device_count).")
    created_at: datetime
    updated_at: datetime


class StagePublic(_Public):
    id: UUID
    pipeline_id: UUID
    name: str
    description: str
    order: int
    trigger: str = Field(description="manual or automatic")
    timeout_seconds: int
    rollout: RolloutConfig
    target_list_ids: list[UUID] = Field(default_factory=list)
    operation_list_ids: list[UUID] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class PipelinePublic(_Public):
    id: UUID
    name: str
    description: str
    timeout_seconds: int
    stages: list[StagePublic] | None = Field(
        default=None, description="The stages, in order (on a single pipeline).")
    created_at: datetime
    updated_at: datetime


class TargetListPublic(_Public):
    id: UUID
    pipeline_id: UUID
    name: str
    target_list_type: str = Field(description="DEVICES or GROUPS")
    size: int = Field(default=0, description="Devices (DEVICES) or groups (GROUPS) it holds.")
    created_at: datetime
    updated_at: datetime


class TargetPublic(_Public):
    id: UUID
    target_list_id: UUID
    device_id: UUID
    device_name: str = ""
    device_alias: str = ""
    created_at: datetime


class TargetGroupPublic(_Public):
    id: UUID
    target_list_id: UUID
    device_group_id: UUID
    name: str = ""
    created_at: datetime


class OperationListPublic(_Public):
    id: UUID
    pipeline_id: UUID
    stage_id: UUID
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class OperationPublic(_Public):
    id: UUID
    operation_list_id: UUID
    operation_type: str
    args: dict[str, Any]
    order: int
    created_at: datetime
    updated_at: datetime


# ---- runs ------------------------------------------------------------------------------------


class PipelineRunPublic(_Public):
    id: UUID
    pipeline_id: UUID
    pipeline_name: str
    run_number: int = Field(description="1, 2, 3... per pipeline")
    status: str
    status_reason: str = ""
    trigger_type: str = ""
    trigger_source: str = ""
    previous_run_id: UUID | None = None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime


class StageRunPublic(_Public):
    id: UUID
    pipeline_run_id: UUID
    stage_id: UUID
    stage_name: str
    name: str = Field(description="The stage's name (same as stage_name).")
    order: int
    run_number: int
    trigger: str
    timeout_seconds: int
    status: str
    status_reason: str = ""
    device_count: int
    target_run_counts: dict[str, int] = Field(
        description="How many of its target runs are in each status (every status listed).")
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime


class StageRunOperationPublic(_Public):
    id: UUID
    stage_run_id: UUID
    operation_type: str
    args: dict[str, Any]
    order: int
    name: str
    created_at: datetime


class TargetRunPublic(_Public):
    id: UUID
    stage_run_id: UUID
    pipeline_run_id: UUID
    stage_run_operation_id: UUID
    target_id: UUID = Field(description="The device.")
    device_name: str
    device_alias: str
    status: str
    status_reason: str = ""
    command_id: UUID | None
    command_status: str | None
    command_meta: dict[str, Any]
    attempt: int
    retry_of: UUID | None = Field(
        default=None, description="The target run this one sends again (POST .../command).")
    superseded_by: UUID | None = Field(
        default=None, description="The target run that sends this one again; a superseded "
        "target run keeps its status but no longer counts in its stage run.")
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime


class CommandEventPublic(_Public):
    status: str
    reason: str
    output: dict[str, Any]
    sequence: int | None
    applied: bool = Field(description="False: a duplicate or out-of-order event (changed nothing).")
    received_at: datetime


class CommandPublic(_Public):
    id: UUID
    target_run_id: UUID
    device_id: UUID
    operation_type: str
    args: dict[str, Any]
    gateway: str
    status: str
    request_status: str = Field(description="Same as status (the Esper field name).")
    reason: str
    output: dict[str, Any]
    sent_at: datetime | None
    cancel_requested_at: datetime | None
    events: list[CommandEventPublic] = Field(
        default_factory=list, description="Every event the gateway reported, in arrival order.")
    created_at: datetime
    updated_at: datetime


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


class DeviceEventsIn(BaseModel):
    events: list[DeviceEventIn] = Field(min_length=1, max_length=200)


class DeviceEventResult(BaseModel):
    command_id: UUID
    status: str = Field(description="The command's status after these events.")
    applied: int = Field(description="How many of the events changed something.")
    received: int
