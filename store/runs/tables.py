"""The run rows the workflows write and the API reads (pipeline runs, stage runs, their
operations, target runs) and the numbered log of their status changes.

Public shapes list their fields in the order the API has always written them; a shape lists
the later of its bases' fields first (see store.shapes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import BeforeValidator
from pydantic import Field as PydanticField
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
    trigger_type: str = Field(default="manual", description="What started the run: api (a "
                              "REST client), manual (a person, through a client that says so) "
                              "or retry.")
    trigger_source_type: str = Field(default="", description="What trigger_source names: "
                                     "api_key, user or run (empty on runs from before it).")
    trigger_source: str = Field(default="", description="The API key's id, or the retried "
                                "run's id.")
    previous_run_id: UUID | None = Field(
        default=None, index=True, description="The run this one retries (null unless a retry).")
    pipeline_version: int = Field(default=0, description="The pipeline's version the run's "
                                  "snapshot was taken from (0: a run from before versions).")
    concurrency_key: str | None = Field(
        default=None, description="Runs of the enterprise with the same key run one at a "
        "time, in the order they were created; later ones wait `queued`.")


class PipelineRun(RunTimes, PipelineRunBase, table=True):
    __tablename__ = "pipeline_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    # A retry's plan, per stage index (store.runs.retry_plans): which stages are carried over
    # whole, which carry their successful target runs, which run again; {} on other runs.
    retry_mode: str = ""
    retry_plan: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    # The run's plain inputs (applied to its snapshot's args when it was made), and for each
    # sensitive input only its alias: the values themselves are never stored.
    input_values: dict[str, Any] | None = Field(default_factory=dict, sa_column=Column(JSONType))
    sensitive_input_aliases: dict[str, str] | None = Field(default_factory=dict,
                                                           sa_column=Column(JSONType))
    # Why it waits, as its workflow last recorded it (domain.waiting.waiting_for_view).
    waiting_for: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    __table_args__ = (
        UniqueConstraint("pipeline_id", "run_number"),
        # The runs ahead of a run in its lane (store.runs.lanes).
        Index("ix_pipeline_run_enterprise_key", "enterprise_id", "concurrency_key"),
    )


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value  # rows made before run inputs existed


class _RunRetries(SQLModel):
    retries: list[UUID] = Field(default_factory=list, description="The runs that retry this "
                                "one, oldest first.")


class _RunInputs(SQLModel):
    input_values: Annotated[dict[str, Any], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict, description="The plain inputs the run was started with.")
    sensitive_input_aliases: Annotated[dict[str, str], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict, description="Each sensitive input's name and the reference its "
        "args keep (`{{ inputs.NAME }}`); the values are never shown.")


class GateWait(SQLModel):
    """The run waits at this stage's manual gate: promote the stage run to pass it."""

    kind: Literal["gate"]
    stage_run_id: UUID
    stage_name: str
    stage_order: int


class PauseWait(SQLModel):
    """The run is paused: set its status to running to resume it."""

    kind: Literal["pause"]
    by: str | None = Field(description="The id of the API key that paused it.")
    by_name: str | None = Field(description="That key's name.")
    at: datetime


class _RunWaiting(SQLModel):
    waiting_for: Annotated[GateWait | PauseWait, PydanticField(discriminator="kind")] | None = (
        Field(default=None, description="Why a waiting run waits: at a manual gate, or "
              "paused (by whom, since when); null unless its status is waiting."))


class PipelineRunPublic(_RunWaiting, _RunInputs, RunTimes, _RunRetries, PipelineRunBase, _Keys,
                        Public):
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
    promoted_by: str = Field(default="", description="Who released its manual gate: the API "
                             "key's id, or `retry:<run id>` for the stage a retry starts at.")
    carried_from: UUID | None = Field(
        default=None, description="In a retry: the stage run of the retried run whose results "
        "it carries over (whole, or its successful target runs).")


class StageRun(RunTimes, StageRunBody, StageRunHead, table=True):
    __tablename__ = "stage_run"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(index=True)
    # In a retry (domain.retry_modes.Carry): "stage" carried over whole, "targets" its
    # successful target runs carried over and the others sent again; "" runs as usual.
    carry: str = ""


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
    carried_over_from: UUID | None = Field(
        default=None, description="In a retry: the target run of the retried run whose result "
        "this one carries over (no command is sent for it).")


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
    """Everything that happened to a pipeline run, numbered by one sequence: every status change
    of the run, its stage runs and target runs (kind pipeline_run / stage_run / target_run),
    every applied command event (kind command: run_id is the target run, `detail` holds the
    command id, sequence and output) and every operator action (kind action: `detail` holds the
    action, who and the request; store.audit keeps the full record). The feed of event streams.
    """

    __tablename__ = "status_event"
    id: int | None = Field(default=None, sa_column=serial())
    pipeline_run_id: UUID
    kind: str
    run_id: UUID = Field(index=True)
    from_status: str
    to_status: str
    reason: str = ""
    at: datetime = stamp()
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    # A stream reads one run's events in order (pipeline_run_id = :run AND id > :seen).
    # AUTOINCREMENT on SQLite: ids of deleted rows (a deleted run's) are never handed out
    # again, so a stream's cursor never passes over a new row.
    __table_args__ = (Index("ix_status_event_run_seq", "pipeline_run_id", "id"),
                      {"sqlite_autoincrement": True})


# Kinds of StatusEvent beside the three run kinds.
COMMAND_EVENT = "command"
ACTION_EVENT = "action"
