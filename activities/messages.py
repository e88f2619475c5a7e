"""Typed inputs and results of the activities that are theirs alone; the values the store
returns as they are (StatusChange, StageRunInfo, StagePlan, RetriedTarget) live in
domain/records.py. Dataclasses, ids as strings: fields added later get defaults, so recorded
histories keep decoding. Regular activities keep `at_epoch` (an activity scheduled by an older
worker must still decode); the local activity's StatusChange carries a datetime."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.inputs import SensitiveValues
from domain.records import RetriedTarget, StageRunInfo, StatusChange


@dataclass
class RecordStatusesInput:
    changes: list[StatusChange]


@dataclass
class RecordStatusesResult:
    statuses: list[str]


@dataclass
class PipelineRunRef:
    pipeline_run_id: str


@dataclass
class PreparedPipelineRun:
    timeout_seconds: int
    stages: list[StageRunInfo]


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
class TargetPageInput:
    stage_run_id: str
    after_seq: int
    limit: int
    carried: bool = False  # the stage run carries target runs over from a retried run


@dataclass
class TargetPage:
    items: list[tuple[int, str]]  # (device_seq, device_id)
    # With `carried`: per item, the first operation the device runs (-1: all carried over).
    first_ops: list[int] = field(default_factory=list)
    device_names: list[str] = field(default_factory=list)  # beside items ([] from older workers)


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
    # The run's sensitive inputs: applied to the args sent to the gateway only (the command
    # row keeps their references).
    sensitive: SensitiveValues | None = None


@dataclass
class DispatchResult:
    command_id: str
    target_status: str  # the target run's status after dispatch (terminal: nothing was sent)
    sent: bool
    # Terminal only: the command the target run ended with ("" above if it never had one).
    command_status: str | None = None


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
class RetriedTargets:
    items: list[RetriedTarget] = field(default_factory=list)


@dataclass
class CarriedStage:
    """A stage of a retry carried over whole: the status it was recorded with."""

    status: str
