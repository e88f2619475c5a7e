"""RunControl: every operator action on a run, from the request to the state it leaves.

Each action reads the row, pre-checks it against the rule table (domain.actions), carries it as
an update to the workflow that owns that status, and re-reads the row until the change shows or
the answer is due. Which workflow owns what:
- a pipeline run's status and its stage runs' (promote, cancel): its PipelineRunWorkflow;
- adding a device, cancelling a target run, sending one again: the StageRunWorkflow;
- cancelling a command: the TargetRunWorkflow of its target run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from control.action_base import (
    ACCEPTED_MESSAGE,
    API_KEY_SOURCE,
    API_TRIGGER,
    CANCELLED_WITHOUT_WORKFLOW,
    PIPELINE_ACTIONS,
    STAGE_ACTIONS,
    CommandState,
    Outcome,
    WorkflowGone,
    current_command,
    refused,
    requested_action,
    still_applying,
)
from control.audit import RecordedAction, action_entry
from control.closing import RunCloser
from control.errors import ActionConflicts, ActionRefused
from control.inputs import check_run_inputs
from control.launch import start_pipeline_run, start_run_workflow
from control.target_actions import TargetActions
from control.updates import answer_deadline, send_update, settle
from domain.concurrency import check_concurrency_key
from domain.ids import pipeline_run_workflow_id
from domain.retry_modes import RetryNotPossible, parse_mode
from domain.statuses import PipelineRunStatus, RunKind, StageRunStatus, is_terminal
from store.audit import DONE, FAILED
from store.definitions import pipelines
from store.definitions.tenants import Caller
from store.runs import reads
from store.runs.creation import PipelineNotFound
from store.runs.retry_plans import create_retry_run
from store.runs.tables import PipelineRun
from store.tenancy import NotFound
from workflows.messages import (
    RunStatusRequest,
    StageStatusRequest,
)
from workflows.pipeline_run import PipelineRunWorkflow

__all__ = ["ACCEPTED_MESSAGE", "CANCELLED_WITHOUT_WORKFLOW", "CommandState", "Outcome",
           "RunControl", "current_command"]


class RunControl(TargetActions):
    """The one door to the runs: starting them and every operator action (pipeline and stage
    runs here; target runs and commands in control.target_actions)."""

    # ---- pipeline runs -------------------------------------------------------------------
    async def start_pipeline_run(
        self, enterprise_id: UUID, pipeline_id: UUID, caller: Caller | None = None, *,
        concurrency_key: str | None = None,
        input_values: Mapping[str, Any] | None = None,
        sensitive_input_values: Mapping[str, str] | None = None,
    ) -> Outcome[PipelineRun]:
        """A run of the pipeline as it is now, started through the API (trigger `api`, its
        source the caller's API key), with its inputs (control.inputs: refused whole, before
        anything is made, when they cannot be used). With a concurrency key it starts only
        when no other active run of the enterprise has that key (it waits `queued`, in
        creation order)."""
        if concurrency_key is not None:
            try:
                check_concurrency_key(concurrency_key)
            except ValueError as bad:
                raise ActionRefused("concurrency_key", str(bad)) from None
        await self._read(lambda s: pipelines.get_pipeline(s, enterprise_id, pipeline_id))
        settings = self._settings
        sensitive = check_run_inputs(settings, input_values or {}, sensitive_input_values or {})
        recorded: list[RecordedAction] = []

        async def record_start(run: PipelineRun) -> None:
            # Between the row and its workflow: the start comes first in the run's log.
            action = RecordedAction(self._engine, action_entry(
                caller, "start", run.id, {"pipeline_id": pipeline_id},
                enterprise_id=enterprise_id))
            await action.begin()
            recorded.append(action)

        try:
            run = await start_pipeline_run(
                await self._temporal.get(), self._engine, enterprise_id=enterprise_id,
                pipeline_id=pipeline_id, task_queue=settings.task_queue,
                search_attributes=settings.search_attributes,
                stage_window=settings.stage_window,
                targets_task_queue=settings.targets_task_queue, trigger_type=API_TRIGGER,
                trigger_source=str(caller.key_id) if caller else "",
                trigger_source_type=API_KEY_SOURCE if caller else "",
                concurrency_key=concurrency_key, input_values=input_values, sensitive=sensitive,
                before_start=record_start)
        except PipelineNotFound:
            raise NotFound("pipeline", pipeline_id) from None
        except BaseException as failed:
            for action in recorded:
                await asyncio.shield(action.finish(FAILED, type(failed).__name__))
            raise
        for action in recorded:
            await action.finish(DONE)
        row = await self._read(lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
        return Outcome(row, message="Created")

    async def retry(self, enterprise_id: UUID, pipeline_run_id: UUID, *, mode: str | None,
                    step_key: str | None, caller: Caller | None = None,
                    pipeline_id: UUID | None = None) -> Outcome[PipelineRun]:
        """A new run of the finished run's snapshot (trigger `retry`, its source the retried
        run): `full` runs every stage again, `from_step` starts at the stage whose key is
        `step_key` (earlier ones carried over), `from_failed` (the default) sends again only
        the target runs that did not succeed and runs the stages not reached. Refused with
        ActionConflicts while the run is not finished; nothing is made when refused."""
        try:
            parsed = parse_mode(mode)
            run = await asyncio.to_thread(
                create_retry_run, self._engine, enterprise_id, pipeline_run_id, parsed,
                step_key or None, requested_by=str(caller.key_id) if caller else "",
                pipeline_id=pipeline_id)
        except RetryNotPossible as refused:
            kind = ActionConflicts if refused.conflict else ActionRefused
            raise kind(refused.field, str(refused), refused.allowed) from None
        settings = self._settings
        async with self._audit(caller, "retry", run.id,
                               {"retried_run_id": str(pipeline_run_id), "mode": parsed.value,
                                "step_key": step_key}, enterprise_id=enterprise_id):
            await start_run_workflow(
                await self._temporal.get(), self._engine, run, task_queue=settings.task_queue,
                search_attributes=settings.search_attributes,
                stage_window=settings.stage_window,
                targets_task_queue=settings.targets_task_queue)
        row = await self._read(lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
        return Outcome(row, message=f"Created: run {row.run_number} retries run "
                       f"{run.retry_plan.get('from_run_number')} ({parsed.value})")

    async def set_pipeline_run_status(self, enterprise_id: UUID, pipeline_id: UUID | None,
                                      pipeline_run_id: UUID, status: str, *,
                                      caller: Caller | None = None) -> Outcome[PipelineRun]:
        """Cancel (cancelled), pause (waiting), resume or pass the manual gate (running). The
        caller's key is recorded with a pause (the run's `waiting_for` says who paused it) and
        with a gate pass (the stage run's `promoted_by`)."""
        deadline = answer_deadline()
        action = requested_action(RunKind.PIPELINE, status)
        read = self._reader(lambda s: reads.get_pipeline_run(
            s, enterprise_id, pipeline_run_id, pipeline_id))
        before = await asyncio.to_thread(read)
        if is_terminal(RunKind.PIPELINE, before.status):
            raise refused(before.status, "pipeline run", f"set status {action}")
        async with self._audit(caller, PIPELINE_ACTIONS.get(action, action), pipeline_run_id,
                               {"status": status}, enterprise_id=enterprise_id) as audit:
            outcome = await self._send_run_status(pipeline_run_id, action, before, read,
                                                  deadline, caller)
            audit.answered(outcome.answered)
            return outcome

    async def _send_run_status(self, pipeline_run_id: UUID, action: str, before: PipelineRun,
                               read: Callable[[], PipelineRun], deadline: float,
                               caller: Caller | None) -> Outcome[PipelineRun]:
        client = await self._temporal.get()
        cancel = action == PipelineRunStatus.CANCELLED
        try:
            sent = await send_update(
                client, pipeline_run_workflow_id(pipeline_run_id),
                PipelineRunWorkflow.set_run_status, RunStatusRequest(
                    status=action, by=str(caller.key_id) if caller else "",
                    by_name=caller.key_name if caller else ""),
                deadline=deadline,
                closed=lambda: WorkflowGone() if cancel else refused(
                    before.status, "pipeline run", f"set status {action}"))
        except WorkflowGone:
            # Nothing else will ever end it: cancel it here, so it can then be deleted.
            await RunCloser(self._engine, client).close(pipeline_run_id, action,
                                                        CANCELLED_WITHOUT_WORKFLOW)
            return Outcome(await asyncio.to_thread(read))
        # Cancel and pause answer once recorded; passing a gate is recorded a moment later.
        row = await settle(read, lambda r: not sent.answered or action != "running"
                           or r.status != before.status, deadline)
        return Outcome(row) if sent.answered else still_applying(row)

    # ---- stage runs ----------------------------------------------------------------------
    async def set_stage_run_status(self, enterprise_id: UUID, pipeline_run_id: UUID,
                                   stage_run_id: UUID, status: str, *,
                                   caller: Caller | None = None
                                   ) -> Outcome[reads.StageRunRow]:
        """Promote the stage run its pipeline run waits at (queued), or cancel it (cancelled)."""
        deadline = answer_deadline()
        action = requested_action(RunKind.STAGE, status)
        read = self._reader(lambda s: reads.get_stage_run_row(
            s, enterprise_id, stage_run_id, pipeline_run_id))
        before = await asyncio.to_thread(read)
        current = before.stage_run.status
        verb = "promote it" if action == StageRunStatus.QUEUED else "cancel it"
        if is_terminal(RunKind.STAGE, current):
            raise refused(current, "stage run", verb)
        async with self._audit(caller, STAGE_ACTIONS.get(action, action),
                               before.stage_run.pipeline_run_id,
                               {"status": status}, enterprise_id=enterprise_id,
                               subject="stage_run", subject_id=stage_run_id) as audit:
            sent = await send_update(
                await self._temporal.get(), pipeline_run_workflow_id(pipeline_run_id),
                PipelineRunWorkflow.set_stage_status,
                StageStatusRequest(stage_run_id=str(stage_run_id), status=action,
                                   by=str(caller.key_id) if caller else ""),
                deadline=deadline, closed=lambda: refused(current, "stage run", verb))
            # A promoted stage run records queued as its own workflow starts, a moment later.
            row = await settle(read, lambda r: not sent.answered
                               or r.stage_run.status != StageRunStatus.PENDING, deadline)
            audit.answered(sent.answered)
            return Outcome(row) if sent.answered else still_applying(row)

