"""StageRunWorkflow: every target run of one stage run, through a bounded window.

The stage's target runs live in the store; this workflow reads them in pages and keeps at most
`window` target-run children in flight. A child's end reaches the stage as its completion;
children are started with ABANDON, so the stage can continue-as-new (carrying its small state)
long before its history nears Temporal's limits, and before it does it tells the children
still in flight to report by signal instead (a completion would reach the closed run). A stage
of 100,000 devices is many short runs of this workflow, each with a bounded history and never
more than `window` pending children.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.messages import (
        AddDeviceInput,
        ClosePendingTargetsInput,
        ResumeTargetsInput,
        RetryTargetInput,
        StageRunRef,
        TargetPageInput,
    )
    from activities.run_activities import RunActivities
    from domain import rollout
    from domain.actions import stage_run_takes_targets
    from domain.ids import target_run_id, target_run_workflow_id
    from domain.records import RetriedTarget
    from domain.retries import EARLIER_OPERATION_FAILED, failure_kind
    from domain.rollups import stage_outcome, unsuccessful_breakdown
    from domain.schemas import RolloutConfig
    from domain.statuses import RunKind, StageRunStatus, TargetRunStatus
    from workflows import labels, names
    from workflows.cancellation import DATA_ERRORS, run_to_its_end
    from workflows.messages import (
        AddTargetRequest,
        AddTargetResult,
        Lane,
        PageEntry,
        Resumption,
        StageCarry,
        StageControl,
        StageRunInput,
        StageRunResult,
        StageState,
        TargetCancelRequest,
        TargetFinished,
        TargetRetryRequest,
        TargetRetryResult,
        TargetStop,
    )
    from workflows.stage_children import PATCH_NAMED_TARGET_START, TargetChildren
    from workflows.steps import call, change, epoch_now, record

_S = StageRunStatus
_T = TargetRunStatus
_KIND = RunKind.STAGE.value
# Patch id: a failed stage run's reason counts each unsuccessful status (older histories
# replay on the plain count).
_PATCH_REASON_BY_STATUS = "stage-failure-reason-counts-each-status"
PAGE_SIZE = 500
MATERIALIZE_TIMEOUT = timedelta(minutes=15)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Lean targets: a child's end is read from its completion (no target_finished signal, no third
# workflow task in the target) and one deadline timer per stage run replaces a timer per wait.
PATCH_LEAN_TARGETS = "stage-reads-target-completions"


# Unsandboxed, as target runs are: a stage run has a workflow task per few targets, and the
# sandbox's per-activation cost was 8-13% of the worker's CPU at 2,000 targets
# (docs/benchmarks.md). This module and workflows/stage_children.py keep no mutable module
# state and use only `workflow.*` for time and I/O; the replay tests check determinism.
@workflow.defn(name=names.STAGE_RUN_WORKFLOW, failure_exception_types=DATA_ERRORS,
              sandboxed=False)
class StageRunWorkflow(TargetChildren):
    @workflow.init
    def __init__(self, request: StageRunInput) -> None:
        self._in = request
        self._c: StageCarry = request.carry or StageCarry(paused=request.paused)
        self._rollout = RolloutConfig.model_validate(request.rollout or {})
        self._status: str = _S.RUNNING if self._c.started else _S.PENDING
        self._exhausted = False
        self._news = False
        self._starting = set()  # see TargetChildren
        self._start_failure = None
        # "device:op" keys of target runs being sent again (retry_target handlers running).
        self._retrying: set[str] = set()
        self._closing = False  # the loop has ended: no more retries
        self._lean = False  # PATCH_LEAN_TARGETS, decided as the run starts
        self._awaiting = {}
        self._deadline_passed = False
        self._deadline_task: asyncio.Task[None] | None = None

    # ---- messages ------------------------------------------------------------------------
    @workflow.signal(name=names.SIGNAL_TARGET_FINISHED)
    def on_target_finished(self, done: TargetFinished) -> None:
        lane = self._c.in_flight.pop(done.target_run_id, None)
        if lane is None:
            return  # a duplicate report
        self._news = True
        counts = self._c.counts
        if not done.closed_before_start:  # else already counted by what ended it
            counts[done.status] = counts.get(done.status, 0) + 1
        if done.status != _T.SUCCESS and done.failure_type:
            self._c.failed_kinds[done.failure_type] = (
                self._c.failed_kinds.get(done.failure_type, 0) + 1)
        device_id, op_index = lane.device_id, lane.op_index
        if op_index + 1 >= len(self._c.operation_ids):
            self._c.device_names.pop(device_id, None)  # nothing left to start for it
            return
        if done.status == _T.SUCCESS:
            if lane.generation:
                # A retry row succeeded: the next operation may have ended for its failure.
                self._c.resume.append(Resumption(device_id, op_index + 1,
                                                 self._target_id(device_id, op_index + 1)))
            else:
                self._c.ready.append(self._lane(device_id, op_index + 1))
        else:
            # A failed operation fails the device's later operations in this stage run.
            self._c.device_names.pop(device_id, None)  # a retry row brings it back
            self._c.cancelled_targets.extend(
                self._target_id(device_id, later)
                for later in range(op_index + 1, len(self._c.operation_ids))
            )

    def _generation(self, device_id: str, op_index: int) -> int:
        return self._c.generations.get(f"{device_id}:{op_index}", 0)

    def _target_id(self, device_id: str, op_index: int) -> str:
        """The current target run of a device x operation (its latest retry row, if any)."""
        return str(target_run_id(self._stage_uuid, device_id, self._c.operation_ids[op_index],
                                 self._generation(device_id, op_index)))

    def _lane(self, device_id: str, op_index: int) -> Lane:
        return Lane(device_id, op_index, self._generation(device_id, op_index))

    @workflow.signal(name=names.SIGNAL_STAGE_CONTROL)
    def on_control(self, control: StageControl) -> None:
        self._news = True
        if control.action == "pause":
            self._c.paused = True
        elif control.action == "resume":
            self._c.paused = False
        elif control.action == "stop" and self._c.stop_status is None:
            self._c.stop_status = control.status
            self._c.stop_reason = control.reason

    @workflow.update(name=names.UPDATE_ADD_TARGET)
    async def add_target(self, request: AddTargetRequest) -> AddTargetResult:
        added = await call(RunActivities.add_target_device, AddDeviceInput(
            self._in.stage_run_id, request.device_id, request.device_name,
            request.device_alias))
        self._c.device_count = max(self._c.device_count, added.device_seq + 1)
        self._exhausted = False
        self._news = True
        return AddTargetResult(added.target_run_ids)

    @add_target.validator
    def _check_add_target(self, request: AddTargetRequest) -> None:
        self._check_open("add a target to")

    @workflow.update(name=names.UPDATE_CANCEL_TARGET)
    async def cancel_target(self, request: TargetCancelRequest) -> None:
        if request.target_run_id in self._c.in_flight:
            await workflow.get_external_workflow_handle(
                target_run_workflow_id(request.target_run_id)
            ).signal(names.SIGNAL_TARGET_STOP, TargetStop(
                _T.CANCELLED, request.reason or "cancelled by user", only_before_dispatch=True))
            return
        closed = await call(RunActivities.close_pending_targets, ClosePendingTargetsInput(
            self._in.stage_run_id, _T.CANCELLED, request.reason or "cancelled by user",
            epoch_now(), [request.target_run_id]))
        self._add_count(_T.CANCELLED, closed.count)
        self._news = True

    @cancel_target.validator
    def _check_cancel_target(self, request: TargetCancelRequest) -> None:
        self._check_open("cancel a target of")

    @workflow.update(name=names.UPDATE_RETRY_TARGET)
    async def retry_target(self, request: TargetRetryRequest) -> TargetRetryResult:
        """Send a finished target run again: the store makes its retry row, which then waits
        its turn in the window like any target (pause and rate limits hold it too)."""
        key = f"{request.device_id}:{request.operation_index}"
        if key in self._retrying:  # two requests validated in one workflow task
            raise ApplicationError(f"target run {request.target_run_id} is already being sent "
                                   "again", type="InvalidAction")
        self._retrying.add(key)
        try:
            try:
                retried = await call(RunActivities.retry_target_run, RetryTargetInput(
                    self._in.stage_run_id, request.target_run_id))
            except ActivityError as failed:
                cause = failed.cause
                if isinstance(cause, ApplicationError):  # refused, or the row is gone
                    raise ApplicationError(cause.message, type="InvalidAction") from None
                raise
            self._take_retry(retried)
        finally:
            self._retrying.discard(key)
        self._news = True
        return TargetRetryResult(retried.target_run_id, request.target_run_id,
                                 self._waiting_reason())

    @retry_target.validator
    def _check_retry_target(self, request: TargetRetryRequest) -> None:
        c = self._c
        self._check_open("send a target run of")
        if c.abort_reason or self._closing:
            raise ApplicationError(f"cannot send a target run of stage run "
                                   f"{self._in.stage_run_id} again: it is ending",
                                   type="InvalidAction")
        if request.target_run_id in c.in_flight:
            raise ApplicationError(f"target run {request.target_run_id} is still running in "
                                   "its stage run", type="InvalidAction")
        if not 0 <= request.operation_index < len(c.operation_ids):
            raise ApplicationError(f"stage run {self._in.stage_run_id} has no operation "
                                   f"{request.operation_index + 1}", type="InvalidAction")
        current = self._target_id(request.device_id, request.operation_index)
        if current != request.target_run_id:
            raise ApplicationError(f"target run {request.target_run_id} is not the current "
                                   f"target run of its device and operation ({current} is)",
                                   type="InvalidAction")
        if any(entry.target_run_id == current for entry in c.resume):
            raise ApplicationError(f"target run {current} is about to run again by itself",
                                   type="InvalidAction")

    def _take_retry(self, retried: RetriedTarget) -> None:
        """Queue a retry row (or a row that runs as it is); the row it replaces no longer
        counts among the finished ones."""
        c = self._c
        op_index = retried.operation_order
        if retried.device_name:
            c.device_names[retried.device_id] = retried.device_name
        if retried.retry_of is not None:
            _take_one(c.counts, retried.replaced_status)
            _take_one(c.failed_kinds, failure_kind(retried.replaced_status,
                                                   retried.replaced_command_status))
            c.generations[f"{retried.device_id}:{op_index}"] = retried.generation
        lane = self._lane(retried.device_id, op_index)
        if retried.target_run_id not in c.in_flight and lane not in c.ready:
            c.ready.append(lane)

    def _waiting_reason(self) -> str:
        """Why a target queued now would not start at once, or "" (a forecast for the API)."""
        c = self._c
        if c.paused:
            return "the stage run is paused"
        if len(c.in_flight) + len(c.ready) > self._in.window:
            return "the stage run's window is full"
        allowance, _ = rollout.dispatch_allowance(
            self._rollout, c.dispatch_times, epoch_now(), c.dispatched, c.counts.get(_T.SUCCESS, 0))
        if allowance is not None and allowance < len(c.ready):
            return "the rollout's rate limit holds it back"
        return ""

    async def _resume_after_retries(self) -> None:
        """The next operations of devices whose operation, sent again, succeeded: a retry row
        for each that had ended for that operation's failure, then into the window."""
        c = self._c
        if not c.resume or c.stop_status or c.abort_reason:
            return
        entries = list(c.resume)
        resumed = await call(RunActivities.resume_target_runs, ResumeTargetsInput(
            self._in.stage_run_id, [entry.target_run_id for entry in entries]))
        c.resume = c.resume[len(entries):]  # entries added during the call stay
        for item in resumed.items:
            self._take_retry(item)

    def _check_open(self, action: str) -> None:
        if not stage_run_takes_targets(self._status, stopping=bool(self._c.stop_status)):
            raise ApplicationError(
                f"cannot {action} stage run {self._in.stage_run_id}: it is {self._status}"
                + (" and stopping" if self._c.stop_status else ""), type="InvalidAction")

    @workflow.query(name=names.QUERY_STAGE_STATE)
    def state(self) -> StageState:
        return StageState(
            stage_run_id=self._in.stage_run_id, status=self._status, paused=self._c.paused,
            device_count=self._c.device_count, dispatched=self._c.dispatched,
            in_flight=len(self._c.in_flight), counts=dict(self._c.counts))

    # ---- the run -------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: StageRunInput) -> StageRunResult:
        return await run_to_its_end(self._run(request), lambda reason: self.on_control(
            StageControl("stop", _S.CANCELLED, reason)))

    async def _run(self, request: StageRunInput) -> StageRunResult:
        c = self._c
        self._lean = workflow.patched(PATCH_LEAN_TARGETS)
        if not c.started:
            invalid = await self._start()
            if invalid is not None:
                return invalid
        if self._lean:
            # Left pending at the end, as a target's backstop was: a cancel is one more event.
            self._deadline_task = asyncio.create_task(self._deadline_timer())
        while True:
            if self._start_failure is not None:
                raise self._start_failure
            await self._flush_cancelled_targets()
            await self._resume_after_retries()
            self._check_abort()
            if c.stop_status or c.abort_reason or self._finished():
                self._closing = True
                break
            if self._history_full():
                await self._drain_starts()
                await self._hand_reports_over()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(StageRunInput(
                    stage_run_id=request.stage_run_id, pipeline_run_id=request.pipeline_run_id,
                    enterprise_id=request.enterprise_id, timeout_seconds=request.timeout_seconds,
                    rollout=request.rollout, window=request.window, carry=c,
                    history_budget=request.history_budget,
                    targets_task_queue=request.targets_task_queue, sensitive=request.sensitive,
                    labels=request.labels, search_attributes=request.search_attributes))
            wake_at = await self._fill_window()
            self._describe()
            await self._wait(wake_at)
        return await self._end()

    async def _start(self) -> StageRunResult | None:
        c = self._c
        run_id = self._in.stage_run_id
        await record(change(_KIND, run_id, _S.PROCESSING))
        self._set_status(_S.PROCESSING)
        if self._lean:
            # Chunk by chunk, heartbeating: one attempt makes a stage of any size, and a
            # worker lost mid-way is noticed within the heartbeat timeout.
            plan = await call(RunActivities.materialize_targets, StageRunRef(run_id),
                              timeout=MATERIALIZE_TIMEOUT, heartbeat_timeout=HEARTBEAT_TIMEOUT)
        else:
            plan = await call(RunActivities.materialize_targets, StageRunRef(run_id))
        if plan.invalid_reason:
            await record(change(_KIND, run_id, _S.INVALID, plan.invalid_reason))
            self._set_status(_S.INVALID)
            workflow.set_current_details(f"{self._title()}: ended **invalid** "
                                         f"{plan.invalid_reason}")
            return StageRunResult(status=_S.INVALID, reason=plan.invalid_reason)
        c.operation_ids = plan.operation_ids
        c.operation_types = plan.operation_types
        c.device_count = plan.device_count
        if plan.carried and workflow.patched(names.PATCH_RETRY_CARRIES):
            c.carried = True
        c.deadline_epoch = epoch_now() + self._in.timeout_seconds
        c.started = True
        await record(change(_KIND, run_id, _S.RUNNING))
        self._set_status(_S.RUNNING)
        return None

    def _set_status(self, status: str) -> None:
        """The status the store now holds; mirrored into the search attribute FleetpipeStatus
        when this stage run carries fleetpipe's attributes."""
        self._status = status
        if self._in.search_attributes and workflow.patched(PATCH_NAMED_TARGET_START):
            workflow.upsert_search_attributes(labels.status_update(status))

    def _title(self) -> str:
        return (labels.summary(self._in.labels) if self._in.labels
                else f"stage run {self._in.stage_run_id}")

    def _finished(self) -> bool:
        c = self._c
        return (self._exhausted and not c.page and not c.ready and not c.in_flight
                and not c.cancelled_targets and c.cursor + 1 >= c.device_count
                and not c.resume and not self._retrying)

    def _history_full(self) -> bool:
        info = workflow.info()
        # Well before the 10,240-event warning: signals keep arriving while it winds down.
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > self._in.history_budget)

    async def _deadline_timer(self) -> None:
        await workflow.sleep(max(self._c.deadline_epoch - epoch_now(), 0.001))
        self._deadline_passed = True
        self._news = True

    async def _wait(self, wake_at: float | None) -> None:
        if self._lean:
            await self._wait_lean(wake_at)
            return
        now = epoch_now()
        timeout = self._c.deadline_epoch - now
        if wake_at is not None:
            timeout = min(timeout, max(wake_at - now, 0.05))
        try:
            await workflow.wait_condition(lambda: self._news, timeout=max(timeout, 0.001))
        except TimeoutError:
            if epoch_now() >= self._c.deadline_epoch and not self._c.stop_status:
                self._c.stop_status = _S.TIMEOUT
                self._c.stop_reason = (
                    f"stage run timed out after {self._in.timeout_seconds} s")
        self._news = False

    async def _wait_lean(self, wake_at: float | None) -> None:
        """Until news, the deadline's timer, or `wake_at` (a rate limit's next slot: the only
        wait with a timer of its own)."""
        timeout = None if wake_at is None else max(wake_at - epoch_now(), 0.05)
        try:
            await workflow.wait_condition(lambda: self._news, timeout=timeout)
        except TimeoutError:
            pass
        if self._deadline_passed and not self._c.stop_status:
            self._c.stop_status = _S.TIMEOUT
            self._c.stop_reason = f"stage run timed out after {self._in.timeout_seconds} s"
        self._news = False

    async def _fill_window(self) -> float | None:
        """Start targets until the window is full; returns when to look again if the rate
        limit held some back."""
        c = self._c
        now = epoch_now()
        if c.paused:
            return None
        c.dispatch_times = [t for t in c.dispatch_times if t > now - rollout.WINDOW_SECONDS]
        allowance, wake_at = rollout.dispatch_allowance(
            self._rollout, c.dispatch_times, now, c.dispatched, c.counts.get(_T.SUCCESS, 0))
        room = self._in.window - len(c.in_flight)
        if allowance is not None:
            room = min(room, allowance)
        lanes: list[Lane] = []
        while len(lanes) < room:
            if c.ready:
                lanes.append(c.ready.pop(0))
                continue
            if not c.page and not self._exhausted:
                page = await call(RunActivities.next_target_page, TargetPageInput(
                    self._in.stage_run_id, c.cursor, PAGE_SIZE, carried=c.carried))
                firsts = page.first_ops or [0] * len(page.items)
                c.page = [PageEntry(seq, device, first)
                          for (seq, device), first in zip(page.items, firsts, strict=True)]
                if len(page.device_names) == len(page.items):
                    c.device_names.update((device, name) for (_, device), name
                                          in zip(page.items, page.device_names, strict=True)
                                          if name)
                self._exhausted = len(page.items) < PAGE_SIZE
            if not c.page:
                break
            entry = c.page.pop(0)
            c.cursor = entry.device_seq
            if entry.op_index < 0:
                continue  # a retry carried every operation of this device over
            lanes.append(Lane(entry.device_id, entry.op_index))
        for lane in lanes:
            # In flight from now: the start runs as its own task, after this loop has
            # described the window (counting it only there said "0 in flight" while they ran).
            c.in_flight[self._lane_target_id(lane)] = lane
            task = asyncio.create_task(self._start_target(lane))
            self._starting.add(task)
            task.add_done_callback(self._start_done)
        c.dispatched += len(lanes)
        c.dispatch_times.extend([now] * len(lanes))
        return wake_at

    async def _flush_cancelled_targets(self) -> None:
        """End the later operations of devices whose earlier operation did not succeed."""
        c = self._c
        if not c.cancelled_targets:
            return
        ids, c.cancelled_targets = c.cancelled_targets, []
        closed = await call(RunActivities.close_pending_targets, ClosePendingTargetsInput(
            self._in.stage_run_id, _T.FAILURE, EARLIER_OPERATION_FAILED,
            epoch_now(), ids))
        self._add_count(_T.FAILURE, closed.count)

    def _add_count(self, status: str, count: int) -> None:
        if count:
            self._c.counts[status] = self._c.counts.get(status, 0) + count

    def _check_abort(self) -> None:
        c = self._c
        executed = sum(c.counts.values())
        if not c.abort_reason:
            c.abort_reason = rollout.abort_reason(self._rollout, executed, c.failed_kinds)

    def _describe(self) -> None:
        workflow.set_current_details(f"{self._title()}: {self._progress()}")

    def _progress(self) -> str:
        c = self._c
        total = c.device_count * max(len(c.operation_ids), 1)
        finished = ", ".join(f"{count} {status}" for status, count in sorted(c.counts.items()))
        return (f"{len(c.in_flight)} target runs in flight, {sum(c.counts.values())} of "
                f"{total} finished ({finished or 'none yet'}), {c.dispatched} started"
                + (" (paused: in-flight ones finish, no new ones start)" if c.paused else ""))

    async def _end(self) -> StageRunResult:
        c = self._c
        run_id = self._in.stage_run_id
        if self._retrying:  # a retry row being made is stopped with the rest
            await workflow.wait_condition(lambda: not self._retrying)
        if c.stop_status:
            await self._stop_targets(c.stop_status, c.stop_reason)
            final, reason = c.stop_status, c.stop_reason
            statuses = await record(change(_KIND, run_id, final, reason))
        else:
            if c.abort_reason:
                await self._stop_targets(_T.CANCELLED, c.abort_reason)
            counts = await call(RunActivities.count_targets, StageRunRef(run_id))
            final = _S.FAILURE if c.abort_reason else stage_outcome(
                counts.counts, self._rollout.success_threshold_percentage)
            reason = c.abort_reason or ("" if final == _S.SUCCESS else _failure_reason(
                counts.counts, by_status=workflow.patched(_PATCH_REASON_BY_STATUS)))
            statuses = await record(change(_KIND, run_id, _S.COMPLETE),
                                    change(_KIND, run_id, final, reason))
        self._set_status(statuses[-1])
        workflow.set_current_details(f"{self._title()}: ended **{self._status}** {reason}"
                                     f" ({self._progress()})")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return StageRunResult(status=self._status, reason=reason, counts=dict(c.counts))


def _take_one(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def _failure_reason(counts: dict[str, int], by_status: bool = False) -> str:
    total = sum(counts.values())
    ok = counts.get(_T.SUCCESS, 0)
    reason = f"{total - ok} of {total} target runs did not succeed"
    breakdown = unsuccessful_breakdown(counts) if by_status else ""
    return f"{reason} ({breakdown})" if breakdown else reason
