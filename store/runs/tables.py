"""The run rows the workflows write and the API reads (pipeline runs, stage runs, their
operations, target runs) and the numbered log of their status changes.

Public shapes list their fields in the order the API has always written them; a shape lists
the later of its bases' fields first (see store.shapes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from domain.schemas import StageTrigger
from domain.statuses import STATUSES, RunKind
from store.shapes import Public, one_of, stamp
from store.tenancy import owner_key
from store.types import JSONType


def serial() -> Column:
    # BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
    return Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                  autoincrement=True)


class RunTimes(SQLModel):
    """When a run row was made, started, ended and last changed."""

    created_at: datetime = stamp()
    started_at: datetime | None = stamp(optional=True)
    ended_at: datetime | None = stamp(optional=True)
    updated_at: datetime = stamp()


class _Keys(SQLModel):
    id: UUID


# ---- pipeline runs -----------------------------------------------------------------------------


class PipelineRunBase(SQLModel):
    pipeline_id: UUID = Field(index=True)  # no FK: runs outlive their pipeline's definition
    pipeline_name: str = Field(index=True)
    run_number: int = Field(description="1, 2, 3... per pipeline")
    status: str = Field(default="pending", index=True)
    status_reason: str = ""
    trigger_type: str = "manual"
    trigger_source: str = ""
    previous_run_id: UUID | None = None  # set by retries: the run this one repeats


class PipelineRun(RunTimes, PipelineRunBase, table=True):
    __tablename__ = "pipeline_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    __table_args__ = (UniqueConstraint("pipeline_id", "run_number"),)


class PipelineRunPublic(RunTimes, PipelineRunBase, _Keys, Public):
    status: str = one_of(STATUSES[RunKind.PIPELINE])


# ---- stage runs --------------------------------------------------------------------------------


class StageRunHead(SQLModel):
    pipeline_run_id: UUID = Field(foreign_key="pipeline_run.id", index=True)
    stage_id: UUID
    stage_name: str


class StageRunBody(SQLModel):
    order: int
    run_number: int
    trigger: str = "manual"
    timeout_seconds: int
    status: str = "pending"
    status_reason: str = ""
    device_count: int = 0


class StageRun(RunTimes, StageRunBody, StageRunHead, table=True):
    __tablename__ = "stage_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(index=True)


class _StageRunName(SQLModel):
    name: str = Field(description="The stage's name (same as stage_name).")


class _StageRunCounts(SQLModel):
    target_run_counts: dict[str, int] = Field(
        description="How many of its target runs are in each status (every status listed).")


class StageRunPublic(RunTimes, _StageRunCounts, StageRunBody, _StageRunName, StageRunHead,
                     _Keys, Public):
    trigger: str = one_of(StageTrigger.ALL)
    status: str = one_of(STATUSES[RunKind.STAGE])


class StageRunOperationBase(SQLModel):
    stage_run_id: UUID = owner_key("stage_run.id", index=True)
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    order: int = 0
    name: str = ""
    created_at: datetime = stamp()


class StageRunOperation(StageRunOperationBase, table=True):
    __tablename__ = "stage_run_operation"
    id: UUID = Field(default_factory=uuid4, primary_key=True)


class StageRunOperationPublic(StageRunOperationBase, _Keys, Public):
    pass


# ---- target runs -------------------------------------------------------------------------------


class TargetRunBase(SQLModel):
    stage_run_id: UUID = Field(foreign_key="stage_run.id")
    pipeline_run_id: UUID = Field(index=True)
    stage_run_operation_id: UUID
    target_id: UUID = Field(description="The device.")
    device_name: str = ""
    device_alias: str = ""
    status: str = "pending"
    status_reason: str = ""
    command_id: UUID | None = None
    command_status: str | None = None
    command_meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    attempt: int = 0
    # Sent again (domain.retries): a retry row points at the row it replaces, which points back.
    retry_of: UUID | None = Field(
        default=None, description="The target run this one sends again (POST .../command).")
    superseded_by: UUID | None = Field(
        default=None, description="The target run that sends this one again; a superseded "
        "target run keeps its status but no longer counts in its stage run.")


def _reported(empty: str, description: str) -> Any:
    """A JSON column of what a device reported, empty (`'{}'` or `'[]'`) until it reports."""
    return Field(default_factory=dict if empty == "{}" else list, description=description,
                 sa_column=Column(JSONType, server_default=text(f"'{empty}'")))


class TargetRunOutputs(SQLModel):
    """What its device (or gateway) reported beside the statuses, over its commands' events
    (store.runs.events), while the run was open."""

    output_data: dict[str, Any] = _reported(
        "{}", "Its current command's output, merged over the command's events (a later key "
        "replaces an earlier one).")
    error: list[str] = _reported("[]", "Errors reported by the device, in order.")
    output_attachment_ids: list[str] = _reported(
        "[]", "Ids of the files the device produced, each once, in order.")
    run_message_history: list[dict[str, Any]] = _reported(
        "[]", "Messages the device reported, in order.")


class TargetRun(RunTimes, TargetRunOutputs, TargetRunBase, table=True):
    __tablename__ = "target_run"
    id: UUID = Field(primary_key=True)  # derived: see domain.ids.target_run_id
    enterprise_id: UUID
    operation_order: int = 0
    # Position of the device in its stage run; the stage workflow pages through targets by it.
    device_seq: int = 0
    generation: int = 0  # 0 for the first row of this device x operation, then 1, 2, ...
    __table_args__ = (
        # A status filter then the list's default order (the operator's poll of running
        # targets reads only the matching rows, not the whole stage), and superseded_by last
        # so counts of current rows (superseded_by IS NULL) stay index-only.
        Index("ix_target_run_stage_status", "stage_run_id", "status", "operation_order",
              "device_seq", "superseded_by"),
        Index("ix_target_run_stage_seq", "stage_run_id", "operation_order", "device_seq"),
        UniqueConstraint("stage_run_id", "target_id", "stage_run_operation_id", "generation"),
    )


class TargetRunPublic(RunTimes, TargetRunOutputs, TargetRunBase, _Keys, Public):
    status: str = one_of(STATUSES[RunKind.TARGET])
    command_status: str | None = one_of(STATUSES[RunKind.COMMAND], "The status of its command "
                                        "(null before it has one).", optional=True)


# ---- the status log ----------------------------------------------------------------------------


class StatusEvent(SQLModel, table=True):
    """Every status change of every run, numbered: the feed for event streams and audits."""

    __tablename__ = "status_event"
    id: int | None = Field(default=None, sa_column=serial())
    pipeline_run_id: UUID = Field(index=True)
    kind: str
    run_id: UUID = Field(index=True)
    from_status: str
    to_status: str
    reason: str = ""
    at: datetime = stamp()
