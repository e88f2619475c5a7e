"""Typed inputs and results of the activities (dataclasses; ids as strings, times as epochs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StatusChangeMsg:
    kind: str  # domain.statuses.RunKind value
    run_id: str
    status: str
    at_epoch: float
    reason: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordStatusesInput:
    changes: list[StatusChangeMsg]


@dataclass
class RecordStatusesResult:
    statuses: list[str]


@dataclass
class PipelineRunRef:
    pipeline_run_id: str


@dataclass
class StageRunInfoMsg:
    stage_run_id: str
    order: int
    name: str
    trigger: str
    timeout_seconds: int
    rollout: dict[str, Any]
    status: str


@dataclass
class PreparedPipelineRun:
    timeout_seconds: int
    stages: list[StageRunInfoMsg]


@dataclass
class CloseStageRunsInput:
    pipeline_run_id: str
    status: str
    reason: str
    at_epoch: float


@dataclass
class StageRunRef:
    stage_run_id: str


@dataclass
class StagePlanMsg:
    operation_ids: list[str]
    device_count: int
    invalid_reason: str = ""


@dataclass
class TargetPageInput:
    stage_run_id: str
    after_seq: int
    limit: int


@dataclass
class TargetPage:
    items: list[list[Any]]  # [device_seq, device_id]


@dataclass
class ClosePendingTargetsInput:
    stage_run_id: str
    status: str
    reason: str
    at_epoch: float
    target_run_ids: list[str] | None = None


@dataclass
class ClosedCount:
    count: int


@dataclass
class AddDeviceInput:
    stage_run_id: str
    device_id: str
    device_name: str = ""
    device_alias: str = ""


@dataclass
class AddedDevice:
    device_seq: int
    target_run_ids: list[str]


@dataclass
class TargetCounts:
    counts: dict[str, int]


@dataclass
class DispatchInput:
    target_run_id: str
    attempt: int
    at_epoch: float


@dataclass
class DispatchResult:
    command_id: str
    target_status: str  # the target run's status after dispatch (terminal: nothing was sent)
    sent: bool


@dataclass
class CancelCommandInput:
    command_id: str
    at_epoch: float


@dataclass
class RetryTargetInput:
    stage_run_id: str
    target_run_id: str


@dataclass
class ResumeTargetsInput:
    stage_run_id: str
    target_run_ids: list[str]


@dataclass
class RetriedTargetMsg:
    """A target run to start for a device x operation sent again (store.run_records)."""

    target_run_id: str
    device_id: str
    operation_order: int
    generation: int
    retry_of: str | None = None  # the row it replaces; None: the row runs as it is
    replaced_status: str = ""
    replaced_command_status: str | None = None


@dataclass
class RetriedTargets:
    items: list[RetriedTargetMsg] = field(default_factory=list)
