"""Run rows (the read model the workflows write), commands and the event logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import JSONType, UTCDateTime, utcnow


def _serial() -> Column:
    # BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
    return Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                  autoincrement=True)


def _stamp(optional: bool = False) -> Any:
    if optional:
        return Field(default=None, sa_type=UTCDateTime)
    return Field(default_factory=utcnow, sa_type=UTCDateTime)


class PipelineRun(SQLModel, table=True):
    __tablename__ = "pipeline_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    pipeline_id: UUID = Field(index=True)  # no FK: runs outlive their pipeline's definition
    pipeline_name: str = Field(index=True)
    run_number: int
    status: str = Field(default="pending", index=True)
    status_reason: str = ""
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    previous_run_id: UUID | None = None  # set by retries: the run this one repeats
    trigger_type: str = "manual"
    trigger_source: str = ""
    created_at: datetime = _stamp()
    started_at: datetime | None = _stamp(optional=True)
    ended_at: datetime | None = _stamp(optional=True)
    updated_at: datetime = _stamp()
    __table_args__ = (UniqueConstraint("pipeline_id", "run_number"),)


class StageRun(SQLModel, table=True):
    __tablename__ = "stage_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_run_id: UUID = Field(foreign_key="pipeline_run.id", index=True)
    enterprise_id: UUID = Field(index=True)
    stage_id: UUID
    stage_name: str
    order: int
    run_number: int
    trigger: str = "manual"
    timeout_seconds: int
    status: str = "pending"
    status_reason: str = ""
    device_count: int = 0
    created_at: datetime = _stamp()
    started_at: datetime | None = _stamp(optional=True)
    ended_at: datetime | None = _stamp(optional=True)
    updated_at: datetime = _stamp()


class StageRunOperation(SQLModel, table=True):
    __tablename__ = "stage_run_operation"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    stage_run_id: UUID = Field(foreign_key="stage_run.id", index=True)
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    order: int = 0
    name: str = ""
    created_at: datetime = _stamp()


class TargetRun(SQLModel, table=True):
    __tablename__ = "target_run"
    id: UUID = Field(primary_key=True)  # derived: see domain.ids.target_run_id
    stage_run_id: UUID = Field(foreign_key="stage_run.id")
    pipeline_run_id: UUID = Field(index=True)
    enterprise_id: UUID
    stage_run_operation_id: UUID
    operation_order: int = 0
    # Position of the device in its stage run; the stage workflow pages through targets by it.
    device_seq: int = 0
    target_id: UUID  # the device
    device_name: str = ""
    device_alias: str = ""
    status: str = "pending"
    status_reason: str = ""
    command_id: UUID | None = None
    command_status: str | None = None
    command_meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    attempt: int = 0
    # Sent again (domain.retries): a retry row points at the row it replaces, which points back.
    retry_of: UUID | None = None
    superseded_by: UUID | None = None
    generation: int = 0  # 0 for the first row of this device x operation, then 1, 2, ...
    created_at: datetime = _stamp()
    started_at: datetime | None = _stamp(optional=True)
    ended_at: datetime | None = _stamp(optional=True)
    updated_at: datetime = _stamp()
    __table_args__ = (
        # A status filter then the list's default order (the operator's poll of running
        # targets reads only the matching rows, not the whole stage), and superseded_by last
        # so counts of current rows (superseded_by IS NULL) stay index-only.
        Index("ix_target_run_stage_status", "stage_run_id", "status", "operation_order",
              "device_seq", "superseded_by"),
        Index("ix_target_run_stage_seq", "stage_run_id", "operation_order", "device_seq"),
        UniqueConstraint("stage_run_id", "target_id", "stage_run_operation_id", "generation"),
    )


class Command(SQLModel, table=True):
    id: UUID = Field(primary_key=True)  # the idempotency key at the gateway
    target_run_id: UUID = Field(index=True)
    enterprise_id: UUID
    device_id: UUID = Field(index=True)
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    gateway: str = ""
    status: str = Field(default="scheduled", index=True)
    reason: str = ""
    output: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    last_sequence: int = -1
    sent_at: datetime | None = _stamp(optional=True)
    cancel_requested_at: datetime | None = _stamp(optional=True)
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()


class CommandEvent(SQLModel, table=True):
    """Every event a gateway reported for a command, kept in arrival order (its message history)."""

    __tablename__ = "command_event"
    id: int | None = Field(default=None, sa_column=_serial())
    command_id: UUID = Field(index=True)
    status: str
    reason: str = ""
    output: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    sequence: int | None = None
    applied: bool = True  # False: a duplicate or out-of-order event that changed nothing
    received_at: datetime = _stamp()


class StatusEvent(SQLModel, table=True):
    """Every status change of every run, numbered: the feed for event streams and audits."""

    __tablename__ = "status_event"
    id: int | None = Field(default=None, sa_column=_serial())
    pipeline_run_id: UUID = Field(index=True)
    kind: str
    run_id: UUID = Field(index=True)
    from_status: str
    to_status: str
    reason: str = ""
    at: datetime = _stamp()
