"""PipelineRunWorkflow: a run's stages in order, with manual gates, pause, cancel and timeout.

Operator actions arrive as updates whose validators refuse a wrong request before anything is
written; the handlers only set what was asked and wait for the run loop to act on it, so every
status change is decided and recorded in one place, the loop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from activities.lanes import JoinLaneInput, LaneActivities
    from activities.messages import (
        CloseStageRunsInput,
        PipelineRunRef,
        StageRunRef,
    )
    from activities.run_activities import RunActivities
    from domain.actions import (
        ACTIONS,
        pipeline_run_actions,
        stage_run_cancellable,
        stage_run_promotable,
    )
    from domain.concurrency import (
        SIGNAL_LANE_GO,
        SIGNAL_LANE_LEAVE,
        LaneGo,
        LaneLeave,
        queued_reason,
    )
    from domain.ids import stage_run_workflow_id
    from domain.records import StageRunInfo
    from domain.retry_modes import Carry
    from domain.rollups import pipeline_outcome
    from domain.schemas import StageTrigger
    from domain.statuses import (
        PipelineRunStatus,
        RunKind,
        StageRunStatus,
        is_terminal,
        parse_status,
    )
    from domain.waiting import waiting_for_view
    from workflows import labels, names
    from workflows.cancellation import DATA_ERRORS, PATCH_CANCEL_CASCADES, run_to_its_end
    from workflows.messages import (
        PipelineRunInput,
        PipelineRunResult,
        RunLabels,
        RunState,
        RunStatusRequest,
        StageControl,
        StageRunInput,
        StageRunResult,
        StageRunView,
        StageStatusRequest,
    )
    from workflows.steps import call, change, epoch_now, record

_P = PipelineRunStatus
_S = StageRunStatus
_KIND = RunKind.PIPELINE.value
# Patch id: a failed run's reason carries its failed stage run's (older histories replay on
# the stage's name and status alone).
_PATCH_REASON_OF_STAGE = "pipeline-failure-reason-carries-the-stage-reason"
_STATUS_KEY = SearchAttributeKey.for_keyword(names.SA_STATUS)
# Stages started with the pipeline run's names (summary, search attributes); histories from
# before start them as they did.
PATCH_NAMED_STAGE_START = "webui-stage-start-named-and-searchable"
# An update answers once the loop has acted on it; this bounds how long a caller waits.
_ACTION_WAIT = timedelta(seconds=20)
# Runs with a concurrency key wait in their lane for their turn before they start.
PATCH_CONCURRENCY_LANE = "pipeline-run-waits-in-its-concurrency-lane"
# Runs record why they wait (`waiting_for`: the gate, or who paused) from this patch on.
PATCH_WAITING_FOR = "run-page-waiting-for"


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidAction", non_retryable=True)


@workflow.defn(name=names.PIPELINE_RUN_WORKFLOW, failure_exception_types=DATA_ERRORS)
class PipelineRunWorkflow:
    def __init__(self) -> None:
        self._run_id = ""
        self._status: str = _P.PENDING
        self._stages: list[StageRunInfo] = []
        self._waiting_for: str | None = None  # stage run id at a manual gate
        self._current: str | None = None  # stage run id whose workflow is running
        self._promoted: set[str] = set()
        self._promoted_by: dict[str, str] = {}  # stage run id -> who promoted it (a key id)
        self._paused = False
        self._paused_recorded = False
        self._paused_by: tuple[str, str] = ("", "")  # the API key's id and name
        self._paused_since: datetime | None = None
        self._stop_status: str | None = None
        self._stop_reason = ""
        self._failed_stage_reason = ""  # why the failed stage run failed, in its own words
        self._search_attributes = True
        self._news = False
        self._deadline_epoch = 0.0
        self._timeout_seconds = 0
        self._turn = False  # its concurrency lane gave it the turn

    # ---- its concurrency lane ------------------------------------------------------------
    @workflow.signal(name=SIGNAL_LANE_GO)
    def _lane_go(self, _go: LaneGo) -> None:
        self._turn = True
        self._news = True

    # ---- operator actions ----------------------------------------------------------------
    @workflow.update(name=names.UPDATE_SET_RUN_STATUS)
    async def set_run_status(self, request: RunStatusRequest) -> RunState:
        wanted = parse_status(RunKind.PIPELINE, request.status)
        self._news = True  # wake the run loop: it acts, the handler waits for that
        if wanted == _P.CANCELLED:
            self._request_stop(_P.CANCELLED, request.reason or "cancelled by user")
            await self._await(lambda: is_terminal(RunKind.PIPELINE, self._status))
        elif wanted == _P.WAITING:
            self._paused = True
            self._paused_by = (request.by, request.by_name)
            await self._await(lambda: self._paused_recorded or self._is_over())
        elif self._waiting_for and not self._paused:
            gate = self._waiting_for
            self._promote(gate, request.by)
            await self._await(lambda: self._current == gate or self._is_over())
        else:
            self._paused = False
            await self._await(lambda: not self._paused_recorded or self._is_over())
        return self.state()

    @set_run_status.validator
    def _check_run_status(self, request: RunStatusRequest) -> None:
        try:
            wanted = parse_status(RunKind.PIPELINE, request.status)
        except ValueError as bad:
            raise _invalid(str(bad)) from None
        allowed = self._allowed_run_actions()
        if wanted not in allowed:
            raise _invalid(
                f"status {wanted!r} is not an action a pipeline run in status "
                f"{self._status!r} takes; allowed now: {', '.join(allowed) or 'none'}")

    def _allowed_run_actions(self) -> list[str]:
        return pipeline_run_actions(self._status, stopping=bool(self._stop_status),
                                    paused=self._paused, at_gate=bool(self._waiting_for))

    @workflow.update(name=names.UPDATE_SET_STAGE_STATUS)
    async def set_stage_status(self, request: StageStatusRequest) -> RunState:
        wanted = parse_status(RunKind.STAGE, request.status)
        if wanted == _S.QUEUED:
            self._promote(request.stage_run_id, request.by)
            await self._await(lambda: self._current == request.stage_run_id
                              or self._is_over())
        else:
            name = self._stage(request.stage_run_id).name
            self._request_stop(_P.CANCELLED, request.reason
                               or f"stage run {name!r} was cancelled by user")
            await self._await(lambda: is_terminal(RunKind.PIPELINE, self._status))
        return self.state()

    @set_stage_status.validator
    def _check_stage_status(self, request: StageStatusRequest) -> None:
        try:
            wanted = parse_status(RunKind.STAGE, request.status)
        except ValueError as bad:
            raise _invalid(str(bad)) from None
        stage = self._stage(request.stage_run_id)
        if wanted not in ACTIONS[RunKind.STAGE]:
            raise _invalid(
                f"status {wanted!r} is not an action on a stage run; allowed: queued "
                "(promote), cancelled")
        stopping = bool(self._stop_status)
        if wanted == _S.QUEUED:
            if not stage_run_promotable(request.stage_run_id, waiting_for=self._waiting_for,
                                        stopping=stopping):
                at = (f"it waits at stage run {self._waiting_for}" if self._waiting_for
                      else "it waits at no gate")
                raise _invalid(
                    f"stage run {stage.name!r} cannot be promoted: the pipeline run is "
                    f"{self._status} and {at}")
        elif not stage_run_cancellable(stage.status, pipeline_status=self._status,
                                       stopping=stopping):
            raise _invalid(f"stage run {stage.name!r} is already {stage.status}")

    @workflow.query(name=names.QUERY_RUN_STATE)
    def state(self) -> RunState:
        return RunState(
            pipeline_run_id=self._run_id, status=self._status, paused=self._paused,
            waiting_for_stage_run_id=self._waiting_for, current_stage_run_id=self._current,
            stages=[StageRunView(s.stage_run_id, s.order, s.name, s.trigger, s.status)
                    for s in self._stages])

    def _stage(self, stage_run_id: str) -> StageRunInfo:
        for stage in self._stages:
            if stage.stage_run_id == stage_run_id:
                return stage
        raise _invalid(f"stage run {stage_run_id} is not part of pipeline run {self._run_id}")

    def _promote(self, stage_run_id: str, by: str = "") -> None:
        self._promoted.add(stage_run_id)
        if by:
            self._promoted_by.setdefault(stage_run_id, by)
        self._news = True

    def _request_stop(self, status: str, reason: str) -> None:
        if self._stop_status is None:
            self._stop_status, self._stop_reason = status, reason
        self._news = True

    def _is_over(self) -> bool:
        return is_terminal(RunKind.PIPELINE, self._status)

    async def _await(self, condition) -> None:  # noqa: ANN001
        try:
            await workflow.wait_condition(condition, timeout=_ACTION_WAIT)
        except TimeoutError:
            pass  # answer with the state as it is; the action still goes on

    # ---- the run -------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: PipelineRunInput) -> PipelineRunResult:
        return await run_to_its_end(
            self._run(request), lambda reason: self._request_stop(_P.CANCELLED, reason))

    async def _run(self, request: PipelineRunInput) -> PipelineRunResult:
        self._run_id = request.pipeline_run_id
        self._search_attributes = request.search_attributes
        if request.concurrency_key and workflow.patched(PATCH_CONCURRENCY_LANE):
            return await self._run_in_lane(request, request.concurrency_key)
        return await self._run_stages(request)

    async def _run_in_lane(self, request: PipelineRunInput, key: str) -> PipelineRunResult:
        """Queued until the lane gives it the turn (or it is cancelled meanwhile: it never
        starts); it leaves the lane at its end, whatever the end."""
        own_id = workflow.info().workflow_id
        joined = await call(LaneActivities.join_lane, JoinLaneInput(
            self._run_id, request.enterprise_id, key, own_id,
            check_seconds=request.lane_check_seconds,
            history_budget=request.lane_history_budget))
        # Not a `finally`: a workflow evicted from the worker's cache must not send anything.
        try:
            result = await self._wait_for_turn_then_run(request, key, joined.ahead)
        except Exception:
            await self._leave_lane(joined.lane_workflow_id, own_id)
            raise
        await self._leave_lane(joined.lane_workflow_id, own_id)
        return result

    async def _wait_for_turn_then_run(self, request: PipelineRunInput, key: str,
                                      ahead: list[str]) -> PipelineRunResult:
        await self._set_status(_P.QUEUED, queued_reason(key, ahead))
        workflow.set_current_details(f"queued for its turn on concurrency key `{key}`")
        await workflow.wait_condition(lambda: self._turn or bool(self._stop_status))
        if self._stop_status:
            return await self._end(None)
        return await self._run_stages(request)

    async def _leave_lane(self, lane_workflow_id: str, own_id: str) -> None:
        try:
            await workflow.get_external_workflow_handle(lane_workflow_id).signal(
                SIGNAL_LANE_LEAVE, LaneLeave(own_id))
        except FailureError as gone:  # the lane only ends once no run holds or waits
            workflow.logger.warning("could not leave concurrency lane %s: %s",
                                    lane_workflow_id, gone)

    async def _run_stages(self, request: PipelineRunInput) -> PipelineRunResult:
        await self._set_status(_P.PROCESSING)
        prepared = await call(RunActivities.prepare_pipeline_run,
                              PipelineRunRef(self._run_id))
        self._stages = prepared.stages
        if not self._stages:
            await self._set_status(_P.INVALID, "the pipeline has no stages")
            return PipelineRunResult(_P.INVALID, "the pipeline has no stages")
        deadline = workflow.now() + timedelta(seconds=prepared.timeout_seconds)
        self._deadline_epoch = deadline.timestamp()
        self._timeout_seconds = prepared.timeout_seconds
        await self._set_status(_P.RUNNING)
        failed: StageRunInfo | None = None
        for stage in self._stages:
            if (stage.carry or stage.released) and workflow.patched(names.PATCH_RETRY_CARRIES):
                if stage.released:  # the retry starts here: its request released the gate
                    self._promoted.add(stage.stage_run_id)
                if stage.carry == Carry.STAGE:
                    if self._stop_status:
                        break
                    carried = await call(RunActivities.carry_over_stage,
                                         StageRunRef(stage.stage_run_id))
                    stage.status = carried.status
                    continue
            if not await self._pass_gate(stage):
                break
            result = await self._run_stage(request, stage)
            stage.status = result.status
            if result.status != _S.SUCCESS:
                failed = stage
                self._failed_stage_reason = result.reason
                break
        return await self._end(failed)

    async def _pass_gate(self, stage: StageRunInfo) -> bool:
        """Wait for promotion at a manual stage, and for resume while paused; False if the
        run stopped (cancel or timeout) meanwhile."""
        manual = stage.trigger == StageTrigger.MANUAL
        if manual and stage.stage_run_id not in self._promoted:
            self._waiting_for = stage.stage_run_id
            workflow.set_current_details(
                f"waiting at stage {stage.order} **{stage.name}** for promotion")
            await self._set_status(_P.WAITING, **self._waiting_fields())
        while not self._stop_status:
            gate_open = not manual or stage.stage_run_id in self._promoted
            if gate_open and not self._paused:
                break
            await self._sync_pause()
            await self._wait_for_news()
        self._waiting_for = None
        if self._stop_status:
            return False
        by = self._promoted_by.get(stage.stage_run_id, "")
        if manual and by and workflow.patched(names.PATCH_GATE_DECISION):
            # Who released the gate, kept with the stage run (its queued move is the when).
            await record(change(RunKind.STAGE.value, stage.stage_run_id, _S.QUEUED,
                                promoted_by=by))
        else:
            await record(change(RunKind.STAGE.value, stage.stage_run_id, _S.QUEUED))
        stage.status = _S.QUEUED
        await self._set_status(_P.RUNNING, **self._waiting_fields())
        return True

    async def _start_stage(
            self, request: PipelineRunInput, stage: StageRunInfo,
    ) -> workflow.ChildWorkflowHandle[Any, StageRunResult]:
        stage_input = StageRunInput(
            stage_run_id=stage.stage_run_id, pipeline_run_id=self._run_id,
            enterprise_id=request.enterprise_id, timeout_seconds=stage.timeout_seconds,
            rollout=stage.rollout, window=request.stage_window, paused=self._paused,
            history_budget=request.stage_history_budget,
            targets_task_queue=request.targets_task_queue, sensitive=request.sensitive,
        )
        if not workflow.patched(PATCH_NAMED_STAGE_START):
            return await workflow.start_child_workflow(
                names.STAGE_RUN_WORKFLOW, stage_input,
                id=stage_run_workflow_id(stage.stage_run_id), result_type=StageRunResult,
                static_summary=f"stage {stage.order}: {stage.name}")
        # Named like its pipeline run, searchable by the same attributes; a run started before
        # runs carried their names (no labels) gives its stages none either.
        named = replace(request.labels or RunLabels(), stage_name=stage.name,
                        stage_order=stage.order)
        stage_input.labels = named
        stage_input.search_attributes = request.search_attributes and request.labels is not None
        return await workflow.start_child_workflow(
            names.STAGE_RUN_WORKFLOW, stage_input,
            id=stage_run_workflow_id(stage.stage_run_id), result_type=StageRunResult,
            static_summary=labels.summary(named),
            static_details=f"stage run `{stage.stage_run_id}` of pipeline run `{self._run_id}`",
            search_attributes=(labels.search_attributes(labels.STAGE, named, _S.QUEUED)
                               if stage_input.search_attributes else None))

    async def _run_stage(self, request: PipelineRunInput,
                         stage: StageRunInfo) -> StageRunResult:
        handle = await self._start_stage(request, stage)
        self._current = stage.stage_run_id
        workflow.set_current_details(
            f"running stage {stage.order} of {len(self._stages)} **{stage.name}**")
        stop_sent = False
        while not handle.done():
            if self._stop_status and not stop_sent:
                await handle.signal(names.SIGNAL_STAGE_CONTROL, StageControl(
                    "stop", self._stop_status, self._stop_reason))
                stop_sent = True
            elif self._paused != self._paused_recorded:
                await handle.signal(names.SIGNAL_STAGE_CONTROL,
                                    StageControl("pause" if self._paused else "resume"))
                await self._sync_pause()
            await self._wait_for_news(also=handle.done)
        self._current = None
        try:
            return handle.result()
        except ChildWorkflowError as failure:
            if (isinstance(failure.cause, CancelledError)
                    and workflow.patched(PATCH_CANCEL_CASCADES)):
                # Cancelled in Temporal: as the API's cancel of a stage run, it cancels the run.
                reason = f"stage run {stage.name!r} was cancelled in Temporal"
                self._request_stop(_P.CANCELLED, reason)
                return StageRunResult(status=_S.CANCELLED, reason=reason)
            workflow.logger.error("stage run %s failed: %s", stage.stage_run_id, failure)
            return StageRunResult(status=_S.FAILURE, reason="the stage run workflow failed")

    async def _sync_pause(self) -> None:
        """Record a pause (waiting) or a resume (running) once the loop has seen it."""
        if self._paused == self._paused_recorded:
            return
        self._paused_recorded = self._paused
        self._paused_since = workflow.now() if self._paused else None
        if self._waiting_for is None:
            await self._set_status(_P.WAITING if self._paused else _P.RUNNING,
                                   **self._waiting_fields())
        elif workflow.patched(PATCH_WAITING_FOR):
            # At a gate the status stays waiting: only why it waits changes.
            await self._set_status(self._status, **self._waiting_fields())

    def _waiting_fields(self) -> dict[str, Any]:
        """The row's `waiting_for` as it is now: a pause first (resuming comes before
        promoting), then the gate, else nothing. Empty before the patch: older histories
        recorded their statuses without it."""
        if not workflow.patched(PATCH_WAITING_FOR):
            return {}
        return {"waiting_for": waiting_for_view(
            paused_since=self._paused_since, paused_by=self._paused_by,
            gate=self._gate_stage())}

    def _gate_stage(self) -> StageRunInfo | None:
        return next((s for s in self._stages if s.stage_run_id == self._waiting_for), None)

    async def _wait_for_news(self, also=lambda: False) -> None:  # noqa: ANN001
        """Sleep until an operator acts, `also()` holds, or the run's deadline passes."""
        # Once stopping, only the stage's end is awaited: no more deadline timers.
        timeout = None if self._stop_status else max(self._deadline_epoch - epoch_now(), 0.001)
        try:
            await workflow.wait_condition(lambda: self._news or also(), timeout=timeout)
        except TimeoutError:
            self._request_stop(_P.TIMEOUT,
                               f"pipeline run timed out after {self._timeout_seconds} s")
        self._news = False

    async def _end(self, failed: StageRunInfo | None) -> PipelineRunResult:
        if self._stop_status:
            closed_as = _S.TIMEOUT if self._stop_status == _P.TIMEOUT else _S.CANCELLED
            await call(RunActivities.close_open_stage_runs, CloseStageRunsInput(
                self._run_id, closed_as, self._stop_reason, epoch_now()))
            final, reason = self._stop_status, self._stop_reason
            await self._set_status(final, reason)
        else:
            reason = ""
            if failed is not None:
                reason = f"stage {failed.order} {failed.name!r} ended {failed.status}"
                if self._failed_stage_reason and workflow.patched(_PATCH_REASON_OF_STAGE):
                    reason += f": {self._failed_stage_reason}"
                await call(RunActivities.close_open_stage_runs, CloseStageRunsInput(
                    self._run_id, _S.CANCELLED, f"cancelled because {reason}", epoch_now()))
            final = pipeline_outcome(s.status for s in self._stages if failed is None
                                     or s.order <= failed.order)
            await self._set_status(_P.COMPLETE)
            await self._set_status(final, reason)
        workflow.set_current_details(f"ended **{self._status}** {reason}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PipelineRunResult(self._status, reason)

    async def _set_status(self, status: str, reason: str = "", **fields: Any) -> None:
        statuses = await record(change(_KIND, self._run_id, status, reason, **fields))
        self._status = statuses[0]
        if self._search_attributes:
            workflow.upsert_search_attributes([_STATUS_KEY.value_set(self._status)])
