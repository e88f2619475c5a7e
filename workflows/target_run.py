"""TargetRunWorkflow: one device x one operation, through its command, to a final status.

It sends the command (a local activity, idempotent by command id), follows the command's
events (signals from the gateway, batched), and ends on the command's final status or a stop
from its stage run (cancel or timeout). Its stage run reads its end from its completion; a
stage about to continue-as-new tells it to report by signal instead (the completion would reach
a closed run). Targets of older stages report by signal always and keep a backstop timer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.messages import CancelCommandInput, DispatchInput
    from activities.run_activities import RunActivities
    from domain.actions import command_cancellable
    from domain.closing import closing_status
    from domain.commands import CommandEvent
    from domain.rollout import failure_type_of
    from domain.rollups import target_status_for_command
    from domain.statuses import (
        CommandStatus,
        RunKind,
        TargetRunStatus,
        can_transition,
        is_terminal,
    )
    from workflows import labels, names
    from workflows.cancellation import DATA_ERRORS, run_to_its_end
    from workflows.messages import (
        CommandCancelRequest,
        CommandEvents,
        TargetFinished,
        TargetRunInput,
        TargetRunResult,
        TargetStop,
    )
    from workflows.steps import call_local, change, epoch_now, record

_T = TargetRunStatus
_C = CommandStatus
_KIND = RunKind.TARGET.value
_RUNNING_COMMAND = {_C.INITIATED, _C.ACKNOWLEDGED, _C.INPROGRESS}
# A gateway that cannot be reached to cancel must not hold a timed-out target open for long.
_CANCEL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
# The stage run, started earlier with the same timeout, stops its targets at its deadline; a
# target's own timer is only a backstop for a stage run that is gone (terminated by hand), so it
# fires this much later and never races the stage's stop.
BACKSTOP_GRACE = timedelta(minutes=10)
# Patch ids: histories recorded before these changes replay on the code they ran.
_PATCH_ENDED_EARLIER = "target-ended-earlier-asks-its-command"
_PATCH_FAILURE_REPORTED = "target-failure-reported-to-its-stage"


# Unsandboxed: the sandbox re-imports this module for every run, and there is one run per
# device x operation (about a tenth of the worker's CPU at fleet scale, docs/benchmarks.md).
# This module keeps no mutable module state and calls nothing but `workflow.*` for time,
# randomness and I/O; the replay test still checks it for determinism.
@workflow.defn(name=names.TARGET_RUN_WORKFLOW, sandboxed=False,
              failure_exception_types=DATA_ERRORS)
class TargetRunWorkflow:
    def __init__(self) -> None:
        self._events: dict[str, list[CommandEvent]] = {}
        self._stop: TargetStop | None = None
        self._cancel_requested = False
        self._status: str = _T.PENDING
        self._command_id: str | None = None
        self._command_status: str | None = None
        self._command_meta: dict = {}
        self._seen_running = False
        self._timeout_reason = ""
        self._news = False  # set by every message, cleared by the loop once it looked
        self._backstop_fired = False
        self._backstop_task: asyncio.Task[None] | None = None
        # Its stage run is about to continue-as-new (may arrive before the run starts).
        self._told_to_signal = False

    # ---- messages ------------------------------------------------------------------------
    @workflow.signal(name=names.SIGNAL_COMMAND_EVENTS)
    def on_command_events(self, batch: CommandEvents) -> None:
        for event in batch.events:
            self._events.setdefault(event.command_id, []).append(event)
        self._news = True

    @workflow.signal(name=names.SIGNAL_TARGET_STOP)
    def on_stop(self, stop: TargetStop) -> None:
        # A stage's cancel or timeout outranks an operator's cancel-if-not-dispatched.
        if self._stop is None or self._stop.only_before_dispatch:
            self._stop = stop
        self._news = True

    @workflow.signal(name=names.SIGNAL_TARGET_REPORT_BY_SIGNAL)
    def on_report_by_signal(self) -> None:
        self._told_to_signal = True

    @workflow.update(name=names.UPDATE_CANCEL_COMMAND)
    async def cancel_command(self, request: CommandCancelRequest) -> None:
        self._cancel_requested = True
        self._news = True
        await workflow.wait_condition(
            lambda: self._command_status in (_C.CANCELLED, _C.SUCCESS, _C.FAILURE, _C.TIMEOUT)
            or is_terminal(RunKind.TARGET, self._status),
            timeout=timedelta(seconds=10),
        )

    @cancel_command.validator
    def _check_cancel_command(self, request: CommandCancelRequest) -> None:
        if request.command_id != self._command_id:
            raise ApplicationError(
                f"command {request.command_id} is not this target run's active command "
                f"({self._command_id or 'none yet'})", type="InvalidAction")
        if self._command_status and not command_cancellable(self._command_status):
            raise ApplicationError(
                f"command {request.command_id} is already {self._command_status}",
                type="InvalidAction")

    # ---- the run -------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: TargetRunInput) -> TargetRunResult:
        return await run_to_its_end(self._run_reporting_failures(request), lambda reason:
                                    self.on_stop(TargetStop(_T.CANCELLED, reason)))

    async def _run_reporting_failures(self, request: TargetRunInput) -> TargetRunResult:
        try:
            return await self._run(request)
        except tuple(DATA_ERRORS) as error:
            # The workflow fails (DATA_ERRORS); its stage run must not wait for it for ever.
            if workflow.patched(_PATCH_FAILURE_REPORTED):
                await self._fail(request, f"the target run's workflow failed: "
                                 f"{type(error).__name__}: {error}")
            raise

    async def _fail(self, request: TargetRunInput, reason: str) -> None:
        status = closing_status(RunKind.TARGET, self._status, _T.FAILURE)
        if status is not None:
            self._status = (await record(change(_KIND, request.target_run_id, status,
                                                reason)))[0]
        await self._report(request, TargetRunResult(status=self._status, failure_type="FAILED",
                                                    command_id=self._command_id,
                                                    command_status=self._command_status))

    async def _run(self, request: TargetRunInput) -> TargetRunResult:
        deadline = workflow.now() + timedelta(seconds=request.timeout_seconds)
        # With reports_by_completion the stage run's deadline stops this target; a stage gone
        # by hand leaves its run to the reconciler, which ends its targets and commands.
        if not request.reports_by_completion:
            # One timer for the whole run: a timeout on every wait would add two events per
            # wake. It is left pending at the end: the server drops a closed workflow's
            # timers, and a cancel would cost one more event per target.
            self._backstop_task = asyncio.create_task(self._backstop(deadline + BACKSTOP_GRACE))
        retries_left = dict(request.retries)
        attempt = 0
        result: TargetRunResult
        while True:
            if self._stop is not None and not self._stop.only_before_dispatch:
                result = await self._end_before_dispatch(request, self._stop, attempt)
                break
            # Local: a few milliseconds of store and gateway work, once per target (it is
            # idempotent by command id, so a re-run after a crash sends nothing twice).
            dispatch = await call_local(RunActivities.dispatch_command,
                                        DispatchInput(request.target_run_id, attempt,
                                                      epoch_now(), request.sensitive))
            if is_terminal(RunKind.TARGET, dispatch.target_status):
                self._status = dispatch.target_status
                if dispatch.command_id:
                    # This workflow ended it, in a task lost with its worker (the device's
                    # events may have arrived before this dispatch): the store has the end.
                    result = self._ended_earlier(dispatch.command_id, dispatch.command_status)
                else:
                    # Ended before it started (an operator cancelled it while pending).
                    result = TargetRunResult(status=self._status, closed_before_start=True)
                break
            self._command_id = dispatch.command_id
            self._command_status = _C.QUEUED
            self._status = dispatch.target_status
            workflow.set_current_details(f"command `{self._command_id}` queued")
            result = await self._follow_command(request)
            kind = result.failure_type
            if (result.status == _T.FAILURE and kind and retries_left.get(kind, 0) > 0
                    and self._command_status != _C.CANCELLED and workflow.now() < deadline):
                retries_left[kind] -= 1
                attempt += 1
                continue
            result = await self._finish(request, result)
            break
        await self._report(request, result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _ended_earlier(self, command_id: str, command_status: str | None) -> TargetRunResult:
        """The result of a run the store already holds ended with this command."""
        self._command_id = command_id
        self._command_status = command_status
        self._events.clear()  # the store's end outranks whatever the device still reports
        failure_type = ""
        if self._status != _T.SUCCESS and command_status:
            failure_type = failure_type_of(command_status)
        return TargetRunResult(status=self._status, failure_type=failure_type,
                               command_id=command_id, command_status=command_status)

    async def _backstop(self, at: datetime) -> None:
        await workflow.sleep(at - workflow.now())
        self._backstop_fired = True

    async def _follow_command(self, request: TargetRunInput) -> TargetRunResult:
        """Wait for the command's final status; ask the gateway to cancel it when told to."""
        cancel_sent = False
        running_recorded = self._status == _T.RUNNING
        while True:
            self._apply_events()
            status = self._command_status
            assert status is not None
            if is_terminal(RunKind.COMMAND, status):
                return TargetRunResult(
                    status=target_status_for_command(status),
                    failure_type="" if status == _C.SUCCESS else failure_type_of(status),
                    command_id=self._command_id, command_status=status)
            stop = self._stop
            if stop is not None and stop.only_before_dispatch:
                # The command is out: an operator's target cancel no longer applies.
                self._stop = None
                stop = None
            if stop is not None and stop.status == _T.TIMEOUT:
                return await self._time_out(request, stop.reason)
            if (stop is not None or self._cancel_requested) and not cancel_sent:
                await self._cancel_at_gateway()
                cancel_sent = True
            if self._seen_running and not running_recorded:
                await record(change(_KIND, request.target_run_id, _T.RUNNING,
                                    command_status=status, command_meta=self._command_meta))
                self._status = _T.RUNNING
                running_recorded = True
            if self._backstop_fired:
                return await self._time_out(
                    request, f"target run timed out after {request.timeout_seconds} s "
                    "(its stage run did not stop it)")
            await workflow.wait_condition(lambda: self._news or self._backstop_fired)
            self._news = False

    def _apply_events(self) -> None:
        """Move the command status forward with the events received; duplicates and
        out-of-order events never move it back. Events of an older attempt are dropped."""
        for event in self._events.pop(self._command_id or "", []):
            current = self._command_status or _C.SCHEDULED
            if event.status == current or not can_transition(RunKind.COMMAND, current,
                                                             event.status):
                continue
            if event.status in _RUNNING_COMMAND:
                self._seen_running = True
            self._command_status = event.status
            if event.reason or event.output:
                self._command_meta = {"reason": event.reason, "output": event.output}
        self._events.clear()
        if self._command_status:
            workflow.set_current_details(
                f"command `{self._command_id}`: {self._command_status}")

    async def _cancel_at_gateway(self) -> None:
        assert self._command_id is not None
        await workflow.execute_activity_method(
            RunActivities.cancel_command, CancelCommandInput(self._command_id, epoch_now()),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=_CANCEL_RETRY)

    async def _time_out(self, request: TargetRunInput, reason: str) -> TargetRunResult:
        """Timed out (its own timer or its stage's): cancel the command, end `timeout`."""
        try:
            await self._cancel_at_gateway()
        except ActivityError:
            workflow.logger.warning("could not cancel command %s at the gateway",
                                    self._command_id)
        self._command_status = _C.TIMEOUT
        self._timeout_reason = reason
        return TargetRunResult(status=_T.TIMEOUT, failure_type="TIMED_OUT",
                               command_id=self._command_id, command_status=_C.TIMEOUT)

    async def _end_before_dispatch(self, request: TargetRunInput, stop: TargetStop,
                                   attempt: int) -> TargetRunResult:
        statuses = await record(change(_KIND, request.target_run_id, stop.status, stop.reason))
        self._status = statuses[0]
        if (self._status != stop.status and is_terminal(RunKind.TARGET, self._status)
                and workflow.patched(_PATCH_ENDED_EARLIER)):
            # Ended already, by a task of this workflow lost with its worker: a dispatch of an
            # ended row sends nothing and tells the command it ended with.
            dispatch = await call_local(RunActivities.dispatch_command,
                                        DispatchInput(request.target_run_id, attempt,
                                                      epoch_now(), request.sensitive))
            if dispatch.command_id:
                return self._ended_earlier(dispatch.command_id, dispatch.command_status)
        return TargetRunResult(status=self._status)

    async def _finish(self, request: TargetRunInput, result: TargetRunResult) -> TargetRunResult:
        """Record the final status (through running, if the device got that far)."""
        changes = []
        if self._seen_running and self._status != _T.RUNNING and result.status != _T.TIMEOUT:
            changes.append(change(_KIND, request.target_run_id, _T.RUNNING))
        reason = self._command_meta.get("reason", "") if result.status != _T.SUCCESS else ""
        if result.status == _T.TIMEOUT:
            reason = self._timeout_reason
        changes.append(change(_KIND, request.target_run_id, result.status, reason,
                              command_status=result.command_status or self._command_status,
                              command_meta=self._command_meta))
        statuses = await record(*changes)
        self._status = statuses[-1]
        return TargetRunResult(status=self._status, failure_type=result.failure_type,
                               command_id=self._command_id,
                               command_status=result.command_status or self._command_status)

    async def _report(self, request: TargetRunInput, result: TargetRunResult) -> None:
        succeeded_lean = request.reports_by_completion and result.status == _T.SUCCESS
        if request.search_attributes and not succeeded_lean:
            # The final status, once, in the task that ends the run anyway: one event on the
            # fan-out's hot path (an older target started `pending`; a lean one started with
            # none and keeps none if it succeeded). Versioned by the input, not by a patch
            # here: only a stage past its own patch (PATCH_NAMED_TARGET_START) sets the flag,
            # older inputs decode it False, so every history replays with its own commands; a
            # patch would cost each target two events more (its marker and the SDK's
            # TemporalChangeVersion upsert, measured: docs/decisions.md).
            workflow.upsert_search_attributes(labels.status_update(result.status))
        workflow.set_current_details(
            f"ended **{result.status}**" + (f", command `{result.command_id}`: "
                                            f"{result.command_status}"
                                            if result.command_id else ""))
        if request.reports_by_completion and not self._told_to_signal:
            return  # the stage run reads this run's result when it completes
        try:
            await workflow.get_external_workflow_handle(request.stage_workflow_id).signal(
                names.SIGNAL_TARGET_FINISHED,
                TargetFinished(request.target_run_id, result.status, result.failure_type,
                               result.closed_before_start),
            )
        except FailureError:
            # The stage run has ended (it stopped waiting for us); the store has our status.
            workflow.logger.info("stage run %s no longer listening", request.stage_workflow_id)

    @workflow.query(name="target_state")
    def state(self) -> TargetRunResult:
        return TargetRunResult(status=self._status, command_id=self._command_id,
                               command_status=self._command_status)

