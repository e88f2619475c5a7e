"""In-memory stand-ins for every run activity, registered under the real activity names (the
mocked-activity pattern of temporalio/samples-python's tests/hello/hello_activity_test.py).

The fast tier runs the real workflow classes against these: no store, no fleet. The rows here
follow the store's rules as far as the workflows can tell (status moves only forward along
domain.statuses, ids derived as domain.ids derives them, retry rows as domain.retries says),
and every request is written down for the tests to read.

Every reference to the activities' message types is in this module, so a change of those types
is made here and nowhere else in the tier: tests read the plain records below, never a message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.messages import (
    AddDeviceInput,
    AddedDevice,
    CancelCommandInput,
    ClosedCount,
    ClosePendingTargetsInput,
    CloseStageRunsInput,
    DispatchInput,
    DispatchResult,
    PipelineRunRef,
    PreparedPipelineRun,
    RecordStatusesInput,
    RecordStatusesResult,
    ResumeTargetsInput,
    RetriedTargets,
    RetryTargetInput,
    StageRunRef,
    TargetCounts,
    TargetPage,
    TargetPageInput,
)
from domain.ids import command_id, target_run_id
from domain.records import RetriedTarget, StagePlan, StageRunInfo
from domain.retries import EARLIER_OPERATION_FAILED, RETRYABLE
from domain.schemas import DEFAULT_PIPELINE_TIMEOUT_SECONDS, DEFAULT_STAGE_TIMEOUT_SECONDS
from domain.statuses import RunKind, is_terminal, transition_path
from tests.workflows.fast.fake_devices import FakeFleet, SentCommand

_TARGET = RunKind.TARGET


@dataclass
class FakeStage:
    """A stage of the pipeline the fake store holds."""

    name: str
    devices: list[str]  # device ids of the FakeFleet, in target order
    operations: int = 1
    trigger: str = "automatic"
    timeout_seconds: int = DEFAULT_STAGE_TIMEOUT_SECONDS
    rollout: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    run_id: str
    kind: RunKind
    status: str = "pending"
    reason: str = ""


@dataclass
class StageRow(Row):
    order: int = 0
    spec: FakeStage = field(default_factory=lambda: FakeStage("", []))
    operation_ids: list[str] = field(default_factory=list)
    device_count: int = 0


@dataclass
class TargetRow(Row):
    stage_run_id: str = ""
    device_id: str = ""
    device_seq: int = 0
    op_index: int = 0
    generation: int = 0
    command_id: str | None = None
    command_status: str | None = None
    retry_of: str | None = None
    superseded_by: str | None = None


@dataclass
class StatusEntry:
    """One status a row moved to, at its workflow's time."""

    run_id: str
    status: str
    at: datetime


@dataclass
class Closed:
    """One close_pending_targets request."""

    stage_run_id: str
    status: str
    reason: str
    target_run_ids: list[str] | None  # None: every pending target run of the stage run


class FakeRunStore:
    """The rows of one pipeline run, and what the workflows asked of them."""

    def __init__(self, fleet: FakeFleet, stages: list[FakeStage], *,
                 timeout_seconds: int = DEFAULT_PIPELINE_TIMEOUT_SECONDS) -> None:
        self.fleet = fleet
        self.timeout_seconds = timeout_seconds
        self.pipeline_run_id = str(uuid4())
        self.rows: dict[str, Row] = {
            self.pipeline_run_id: Row(self.pipeline_run_id, RunKind.PIPELINE)}
        self.stages: list[StageRow] = []
        for order, spec in enumerate(stages, start=1):
            stage_id = str(uuid5(UUID(self.pipeline_run_id), f"stage:{order}"))
            stage = StageRow(stage_id, RunKind.STAGE, order=order, spec=spec)
            self.stages.append(stage)
            self.rows[stage_id] = stage
        # What the workflows asked, in order.
        self.calls: list[str] = []  # activity names
        self.statuses: list[StatusEntry] = []
        self.dispatches: list[tuple[str, int]] = []  # (target run id, attempt)
        self.closed: list[Closed] = []
        self.cancelled_commands: list[str] = []
        # Target runs dispatched and not yet ended: what the stage window bounds.
        self.in_flight: set[str] = set()
        self.max_in_flight = 0
        self._lost_first_tasks: set[str] = set()  # device ids (see lose_first_task)

    def lose_first_task(self, device_id: str) -> None:
        """The device's first target run is found as a worker killed mid-task leaves it: its
        dispatch ran, the device answered and the run recorded its end, none of it in the
        workflow's history; so the device's events reach the workflow before the dispatch
        it runs again has returned (and that dispatch finds the row ended)."""
        self._lost_first_tasks.add(device_id)

    # ---- what the tests read -------------------------------------------------------------
    def status(self, run_id: str) -> str:
        return self.rows[run_id].status

    def targets(self, stage: StageRow) -> list[TargetRow]:
        """The stage run's target runs by device, operation and generation."""
        rows = [r for r in self.rows.values()
                if isinstance(r, TargetRow) and r.stage_run_id == stage.run_id]
        return sorted(rows, key=lambda r: (r.device_seq, r.op_index, r.generation))

    def find(self, stage: StageRow, device_id: str, op_index: int,
             generation: int = 0) -> TargetRow | None:
        """The target run of a device x operation (x generation), if the stage made it."""
        for row in self.targets(stage):
            if (row.device_id, row.op_index, row.generation) == (device_id, op_index,
                                                                  generation):
                return row
        return None

    def target(self, stage: StageRow, device_id: str, op_index: int,
               generation: int = 0) -> TargetRow:
        row = self.find(stage, device_id, op_index, generation)
        assert row is not None, f"no target run for operation {op_index} of {device_id}"
        return row

    def counts(self, stage: StageRow) -> dict[str, int]:
        """Per-status counts of the stage run's current target runs (as count_targets)."""
        return dict(Counter(r.status for r in self.targets(stage) if r.superseded_by is None))

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.record_statuses, self.prepare_pipeline_run, self.close_open_stage_runs,
            self.materialize_targets, self.next_target_page, self.close_pending_targets,
            self.add_target_device, self.count_targets, self.dispatch_command,
            self.cancel_command, self.retry_target_run, self.resume_target_runs,
        ]

    # ---- the store's rules ---------------------------------------------------------------
    def _apply(self, run_id: str, status: str, at: datetime, reason: str = "",
               fields: dict[str, Any] | None = None) -> str:
        """Move a row forward to `status` (as store.runs.statuses.apply_status): an ended row
        never changes; a move that is not allowed changes nothing."""
        row = self.rows.get(run_id)
        if row is None:
            raise ApplicationError(f"run {run_id} not found", type="NotFound",
                                   non_retryable=True)
        if is_terminal(row.kind, row.status):
            return row.status
        if isinstance(row, TargetRow) and fields:
            row.command_id = fields.get("command_id", row.command_id)
            row.command_status = fields.get("command_status", row.command_status)
        if transition_path(row.kind, row.status, status):
            row.status = status
            row.reason = reason or row.reason
            self.statuses.append(StatusEntry(run_id, status, at))
            if row.kind == _TARGET and is_terminal(_TARGET, status):
                self.in_flight.discard(run_id)
        return row.status

    def _stage(self, stage_run_id: str) -> StageRow:
        row = self.rows[stage_run_id]
        assert isinstance(row, StageRow)
        return row

    def _target_row(self, stage_run_id: str, run_id: str) -> TargetRow:
        row = self.rows.get(run_id)
        if not isinstance(row, TargetRow) or row.stage_run_id != stage_run_id:
            raise ApplicationError(f"target run {run_id} not found", type="NotFound",
                                   non_retryable=True)
        return row

    def _add_targets(self, stage: StageRow, device_id: str) -> list[str]:
        seq = stage.device_count
        stage.device_count += 1
        ids = []
        for op_index, operation_id in enumerate(stage.operation_ids):
            run_id = str(target_run_id(UUID(stage.run_id), device_id, operation_id))
            self.rows[run_id] = TargetRow(run_id, _TARGET, stage_run_id=stage.run_id,
                                          device_id=device_id, device_seq=seq,
                                          op_index=op_index)
            ids.append(run_id)
        return ids

    def _replace(self, row: TargetRow) -> TargetRow:
        """A retry row for the same device x operation (domain.retries)."""
        stage = self._stage(row.stage_run_id)
        new_id = str(target_run_id(UUID(stage.run_id), row.device_id,
                                   stage.operation_ids[row.op_index], row.generation + 1))
        if row.superseded_by is None:
            self.rows[new_id] = TargetRow(
                new_id, _TARGET, stage_run_id=row.stage_run_id, device_id=row.device_id,
                device_seq=row.device_seq, op_index=row.op_index,
                generation=row.generation + 1, retry_of=row.run_id)
            row.superseded_by = new_id
        replacement = self.rows[new_id]
        assert isinstance(replacement, TargetRow)
        return replacement

    def _retry_refusal(self, row: TargetRow) -> str:
        if row.status not in RETRYABLE:
            return f"target run {row.run_id} is {row.status}: it cannot be sent again"
        blockers = [r for r in self.targets(self._stage(row.stage_run_id))
                    if r.device_id == row.device_id and r.op_index < row.op_index
                    and r.superseded_by is None and r.status != "success"]
        if blockers:
            return (f"target run {row.run_id} runs after target run {blockers[0].run_id}. "
                    "Send that one again")
        if _was_cascaded(row):
            return f"target run {row.run_id} runs again by itself"
        return ""

    # ---- the activities ------------------------------------------------------------------
    @activity.defn(name=names.RECORD_STATUSES)
    async def record_statuses(self, request: RecordStatusesInput) -> RecordStatusesResult:
        self.calls.append(names.RECORD_STATUSES)
        return RecordStatusesResult([
            self._apply(c.run_id, c.status, c.at, c.reason, c.fields)
            for c in request.changes])

    @activity.defn(name=names.PREPARE_PIPELINE_RUN)
    async def prepare_pipeline_run(self, ref: PipelineRunRef) -> PreparedPipelineRun:
        self.calls.append(names.PREPARE_PIPELINE_RUN)
        assert ref.pipeline_run_id == self.pipeline_run_id
        return PreparedPipelineRun(self.timeout_seconds, [
            StageRunInfo(stage_run_id=s.run_id, order=s.order, name=s.spec.name,
                            trigger=s.spec.trigger, timeout_seconds=s.spec.timeout_seconds,
                            rollout=s.spec.rollout, status=s.status)
            for s in self.stages])

    @activity.defn(name=names.CLOSE_OPEN_STAGE_RUNS)
    async def close_open_stage_runs(self, request: CloseStageRunsInput) -> ClosedCount:
        self.calls.append(names.CLOSE_OPEN_STAGE_RUNS)
        pending = [s for s in self.stages if s.status == "pending"]
        for stage in pending:
            self._apply(stage.run_id, request.status, _at(request.at_epoch), request.reason)
        return ClosedCount(len(pending))

    @activity.defn(name=names.MATERIALIZE_TARGETS)
    async def materialize_targets(self, ref: StageRunRef) -> StagePlan:
        self.calls.append(names.MATERIALIZE_TARGETS)
        stage = self._stage(ref.stage_run_id)
        if not stage.operation_ids:  # once: a second call finds the same plan
            stage.operation_ids = [str(uuid5(UUID(stage.run_id), f"operation:{index}"))
                                   for index in range(stage.spec.operations)]
            for device_id in stage.spec.devices:
                self._add_targets(stage, device_id)
        if not stage.device_count:
            return StagePlan([], 0, "the stage has no targets")
        return StagePlan(list(stage.operation_ids), stage.device_count)

    @activity.defn(name=names.NEXT_TARGET_PAGE)
    async def next_target_page(self, request: TargetPageInput) -> TargetPage:
        self.calls.append(names.NEXT_TARGET_PAGE)
        firsts = [r for r in self.targets(self._stage(request.stage_run_id))
                  if r.op_index == 0 and r.generation == 0 and r.superseded_by is None
                  and r.device_seq > request.after_seq]
        return TargetPage([(r.device_seq, r.device_id) for r in firsts[:request.limit]])

    @activity.defn(name=names.CLOSE_PENDING_TARGETS)
    async def close_pending_targets(self, request: ClosePendingTargetsInput) -> ClosedCount:
        self.calls.append(names.CLOSE_PENDING_TARGETS)
        ids = request.target_run_ids
        self.closed.append(Closed(request.stage_run_id, request.status, request.reason,
                                  None if ids is None else list(ids)))
        pending = [r for r in self.targets(self._stage(request.stage_run_id))
                   if r.status == "pending" and (ids is None or r.run_id in ids)]
        for row in pending:
            self._apply(row.run_id, request.status, _at(request.at_epoch), request.reason)
        return ClosedCount(len(pending))

    @activity.defn(name=names.ADD_TARGET_DEVICE)
    async def add_target_device(self, request: AddDeviceInput) -> AddedDevice:
        self.calls.append(names.ADD_TARGET_DEVICE)
        stage = self._stage(request.stage_run_id)
        existing = [r for r in self.targets(stage) if r.device_id == request.device_id
                    and r.generation == 0]
        if existing:
            return AddedDevice(existing[0].device_seq, [r.run_id for r in existing])
        ids = self._add_targets(stage, request.device_id)
        return AddedDevice(stage.device_count - 1, ids)

    @activity.defn(name=names.COUNT_TARGETS)
    async def count_targets(self, ref: StageRunRef) -> TargetCounts:
        self.calls.append(names.COUNT_TARGETS)
        return TargetCounts(self.counts(self._stage(ref.stage_run_id)))

    @activity.defn(name=names.DISPATCH_COMMAND)
    async def dispatch_command(self, request: DispatchInput) -> DispatchResult:
        self.calls.append(names.DISPATCH_COMMAND)
        row = self.rows[request.target_run_id]
        assert isinstance(row, TargetRow)
        at = _at(request.at_epoch)
        if row.device_id in self._lost_first_tasks:
            self._lost_first_tasks.discard(row.device_id)
            await self._dispatch_in_a_lost_task(row, request.attempt, at)
        if is_terminal(_TARGET, row.status):
            return DispatchResult(row.command_id or "", row.status, sent=False,
                                  command_status=row.command_status)
        command = str(command_id(UUID(row.run_id), request.attempt))
        self._apply(row.run_id, "processing", at,
                    fields={"command_id": command, "command_status": "scheduled"})
        status = self._apply(row.run_id, "dispatched", at, fields={"command_status": "queued"})
        sent = command not in self.fleet.commands
        if sent:
            self.dispatches.append((row.run_id, request.attempt))
            self.in_flight.add(row.run_id)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
            self.fleet.send(SentCommand(command, row.run_id, row.device_id, request.attempt))
        return DispatchResult(command, status, sent=sent)

    async def _dispatch_in_a_lost_task(self, row: TargetRow, attempt: int,
                                       at: datetime) -> None:
        command = str(command_id(UUID(row.run_id), attempt))
        self._apply(row.run_id, "dispatched", at,
                    fields={"command_id": command, "command_status": "queued"})
        self.dispatches.append((row.run_id, attempt))
        self.fleet.send(SentCommand(command, row.run_id, row.device_id, attempt))
        await self.fleet.close()  # the device's events are with the workflow now
        answered = self.fleet.commands[command].answered
        assert answered is not None, "a lost task's device must answer at once"
        self._apply(row.run_id, "success" if answered == "success" else "failure", at,
                    fields={"command_status": answered})

    @activity.defn(name=names.CANCEL_COMMAND)
    async def cancel_command(self, request: CancelCommandInput) -> None:
        self.calls.append(names.CANCEL_COMMAND)
        self.cancelled_commands.append(request.command_id)
        self.fleet.cancel(request.command_id)

    @activity.defn(name=names.RETRY_TARGET_RUN)
    async def retry_target_run(self, request: RetryTargetInput) -> RetriedTarget:
        self.calls.append(names.RETRY_TARGET_RUN)
        row = self._target_row(request.stage_run_id, request.target_run_id)
        if row.superseded_by is None:
            refusal = self._retry_refusal(row)
            if refusal:
                raise ApplicationError(refusal, type=names.RETRY_REFUSED, non_retryable=True)
        return _retried(row, self._replace(row))

    @activity.defn(name=names.RESUME_TARGET_RUNS)
    async def resume_target_runs(self, request: ResumeTargetsInput) -> RetriedTargets:
        self.calls.append(names.RESUME_TARGET_RUNS)
        items = []
        for run_id in request.target_run_ids:
            row = self._target_row(request.stage_run_id, run_id)
            if row.superseded_by is not None or _was_cascaded(row):
                items.append(_retried(row, self._replace(row)))
            else:  # still pending, say: it runs as it is
                items.append(RetriedTarget(row.run_id, row.device_id, row.op_index,
                                              row.generation))
        return RetriedTargets(items)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _was_cascaded(row: TargetRow) -> bool:
    """Ended without running because an earlier operation on its device did not succeed."""
    return (row.status == "failure" and row.command_id is None
            and row.reason == EARLIER_OPERATION_FAILED)


def _retried(old: TargetRow, new: TargetRow) -> RetriedTarget:
    return RetriedTarget(
        target_run_id=new.run_id, device_id=old.device_id, operation_order=old.op_index,
        generation=new.generation, retry_of=old.run_id, replaced_status=old.status,
        replaced_command_status=old.command_status)
