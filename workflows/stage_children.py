"""Starting a stage run's target-run children and reading their ends: the half of
StageRunWorkflow that talks to its children (the loop, its messages and its counts stay in
workflows/stage_run.py).

A lean stage run (PATCH_LEAN_TARGETS) reads each child's end from its completion; before a
continue-as-new it tells the children still in flight to report by signal instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.messages import ClosePendingTargetsInput
    from activities.run_activities import RunActivities
    from domain import rollout
    from domain.ids import target_run_id, target_run_workflow_id
    from domain.schemas import RolloutConfig
    from domain.statuses import TargetRunStatus
    from workflows import labels, names
    from workflows.messages import (
        Lane,
        RunLabels,
        StageCarry,
        StageRunInput,
        TargetFinished,
        TargetRunInput,
        TargetRunResult,
        TargetStop,
    )
    from workflows.steps import call, epoch_now

_T = TargetRunStatus
# How long a stopped stage waits for its in-flight targets to confirm their commands' end.
STOP_GRACE = timedelta(minutes=5)
# Target runs started with their names (summary, search attributes, and the flag that has them
# upsert their final status), and the stage's own status kept in its search attributes;
# histories from before start and record as they did. One patch for both: each patch id costs
# two events (its marker and the SDK's TemporalChangeVersion upsert).
PATCH_NAMED_TARGET_START = "webui-stage-names-and-searchable-targets"


class TargetChildren:
    """Mixed into StageRunWorkflow, whose __init__ sets these."""

    _in: StageRunInput
    _c: StageCarry
    _rollout: RolloutConfig
    _news: bool
    _lean: bool
    # Child starts still awaiting the server's answer: the loop does not wait for them (a
    # start can take seconds on a busy server), it only drains them before it continues-as-new
    # or ends.
    _starting: set[asyncio.Task[None]]
    _start_failure: BaseException | None
    # Children started by this run whose end it reads from their completion.
    _awaiting: dict[str, asyncio.Task[None]]

    def on_target_finished(self, done: TargetFinished) -> None:
        raise NotImplementedError

    def _add_count(self, status: str, count: int) -> None:
        raise NotImplementedError

    @property
    def _stage_uuid(self) -> UUID:
        return UUID(self._in.stage_run_id)

    def _start_done(self, task: asyncio.Task[None]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._start_failure = task.exception()
            self._news = True  # the loop raises it: the workflow task fails and is retried

    async def _read_completion(self, target_id: str,
                               handle: workflow.ChildWorkflowHandle[Any, TargetRunResult]
                               ) -> None:
        try:
            result = await handle
            done = TargetFinished(target_id, result.status, result.failure_type,
                                  result.closed_before_start)
        except ChildWorkflowError as ended:
            # It failed (it recorded `failure` first), timed out, or was terminated by hand
            # (the reconciler closes its row): counted, so the stage does not wait for ever.
            timed_out = isinstance(ended.cause, TimeoutError)
            done = TargetFinished(target_id, _T.TIMEOUT if timed_out else _T.FAILURE,
                                  "TIMED_OUT" if timed_out else "FAILED")
        finally:
            self._awaiting.pop(target_id, None)
        self.on_target_finished(done)

    async def _hand_reports_over(self) -> None:
        """Before a continue-as-new: children still in flight report by signal from now on.
        Those the signal no longer finds have completed, and their completion is on its way to
        this run: wait for it."""
        pending = dict(self._awaiting)
        if not pending:
            return
        sent = await asyncio.gather(*(
            workflow.get_external_workflow_handle(target_run_workflow_id(tid)).signal(
                names.SIGNAL_TARGET_REPORT_BY_SIGNAL)
            for tid in pending), return_exceptions=True)
        closed = [pending[tid] for tid, outcome in zip(pending, sent, strict=True)
                  if isinstance(outcome, BaseException)]
        if closed:
            await asyncio.gather(*closed)

    async def _drain_starts(self) -> None:
        if self._starting:
            await asyncio.gather(*list(self._starting), return_exceptions=True)
        if self._start_failure is not None:
            raise self._start_failure

    def _lane_target_id(self, lane: Lane) -> str:
        return str(target_run_id(self._stage_uuid, lane.device_id,
                                 self._c.operation_ids[lane.op_index], lane.generation))

    async def _start_target(self, lane: Lane) -> None:
        device_id, op_index, generation = lane
        target_id = self._lane_target_id(lane)
        target_input = TargetRunInput(
            target_run_id=target_id, stage_run_id=self._in.stage_run_id,
            enterprise_id=self._in.enterprise_id,
            timeout_seconds=self._in.timeout_seconds,
            stage_workflow_id=workflow.info().workflow_id,
            retries=rollout.retries_allowed(self._rollout),
            sensitive=self._in.sensitive,
            reports_by_completion=self._lean,
        )
        retry_note = f" (sent again: retry {generation})" if generation else ""
        summary = f"device {device_id}, operation {op_index + 1}" + retry_note
        details: str | None = None
        search_attributes = None
        if workflow.patched(PATCH_NAMED_TARGET_START):
            details = (f"target run `{target_id}`: device `{device_id}`, stage run "
                       f"`{self._in.stage_run_id}`")
            named = self._target_labels(device_id, op_index)
            target_input.labels = named
            target_input.search_attributes = self._in.search_attributes
            summary = labels.summary(named, device_id=device_id) + retry_note
            if self._in.search_attributes:
                # A target's status is upserted once, at its end (every upsert is one more
                # event on the fan-out's hot path); a lean target starts with none and gets
                # one only if it does not succeed.
                search_attributes = labels.search_attributes(
                    labels.TARGET, named, None if self._lean else _T.PENDING)
        try:
            handle = await workflow.start_child_workflow(
                names.TARGET_RUN_WORKFLOW, target_input, result_type=TargetRunResult,
                id=target_run_workflow_id(target_id),
                task_queue=(self._in.targets_task_queue
                            or names.targets_task_queue(workflow.info().task_queue)),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=summary,
                static_details=details,
                search_attributes=search_attributes,
            )
        except WorkflowAlreadyStartedError:
            return  # still running from before a continue-as-new: it will signal its end
        if self._lean:
            self._awaiting[target_id] = asyncio.create_task(
                self._read_completion(target_id, handle))

    def _target_labels(self, device_id: str, op_index: int) -> RunLabels:
        c = self._c
        kind = c.operation_types[op_index] if op_index < len(c.operation_types) else ""
        return replace(self._in.labels or RunLabels(),
                       device_name=c.device_names.get(device_id, ""),
                       operation=f"{op_index + 1} {kind}".strip())

    async def _stop_targets(self, status: str, reason: str) -> None:
        """End what has not started with `status`; tell in-flight targets to stop and give
        them a grace period to confirm (a cancelled command ends its target `failure`)."""
        c = self._c
        c.page, c.ready = [], []
        await self._drain_starts()  # every in-flight target exists before it is told to stop
        closed = await call(RunActivities.close_pending_targets, ClosePendingTargetsInput(
            self._in.stage_run_id, status, reason, epoch_now()))
        self._add_count(status, closed.count)
        stop = TargetStop(status, reason)
        await asyncio.gather(*(
            workflow.get_external_workflow_handle(target_run_workflow_id(tid)).signal(
                names.SIGNAL_TARGET_STOP, stop)
            for tid in list(c.in_flight)
        ), return_exceptions=True)
        try:
            await workflow.wait_condition(lambda: not c.in_flight, timeout=STOP_GRACE)
        except TimeoutError:
            workflow.logger.warning("%d targets did not confirm the stop", len(c.in_flight))
