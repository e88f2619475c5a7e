"""Activities: thin adapters from the workflows to the store and the device gateway.

Store calls run on the engine's store threads (store/executor.py). Every one is idempotent,
so Temporal may retry or replay them freely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities import names
from activities.messages import (
    AddDeviceInput,
    AddedDevice,
    CancelCommandInput,
    CarriedStage,
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
from domain.commands import DeviceCommand
from domain.gateway import DeviceGateway
from domain.inputs import apply_inputs
from domain.records import RetriedTarget, StagePlan
from domain.statuses import RunKind, is_terminal
from observability.logs import log_fields
from observability.metrics import TARGETS_FINISHED, TARGETS_STARTED, record_gateway_error
from store.executor import run_db
from store.group_commit import run_unit
from store.runs import carry, commands, creation, materialize, retries, statuses, targets

T = TypeVar("T")
log = logging.getLogger(__name__)
# The part of its start-to-close timeout an attempt of materialize_targets spends writing
# chunks before it hands over to its retry: a chunk takes well under a second here.
MATERIALIZE_ATTEMPT_SHARE = 0.5


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RunActivities:
    def __init__(self, engine: Engine, gateway: DeviceGateway) -> None:
        self._engine = engine
        self._gateway = gateway

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await run_db(self._engine, fn, *args, **kwargs)
        except LookupError as missing:
            # A row that is not there will not appear on a retry.
            raise ApplicationError(str(missing), type="NotFound", non_retryable=True) from None

    async def _unit(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` committed, with SQLite in one transaction with the other
        targets' writes waiting for the store (store.group_commit): the hot path's writes."""
        try:
            return await run_unit(self._engine, lambda session: fn(session, *args))
        except LookupError as missing:
            raise ApplicationError(str(missing), type="NotFound", non_retryable=True) from None

    @activity.defn(name=names.RECORD_STATUSES)
    async def record_statuses(self, request: RecordStatusesInput) -> RecordStatusesResult:
        recorded = await self._unit(statuses.apply_statuses, request.changes)
        for change, status in zip(request.changes, recorded, strict=True):
            # Counted at least once: a replay after a crash may record an end again.
            if (change.kind == RunKind.TARGET and status == change.status
                    and is_terminal(RunKind.TARGET, status)):
                TARGETS_FINISHED.labels(status=status, gateway=self._gateway.name).inc()
        return RecordStatusesResult(recorded)

    @activity.defn(name=names.PREPARE_PIPELINE_RUN)
    async def prepare_pipeline_run(self, ref: PipelineRunRef) -> PreparedPipelineRun:
        run_id = UUID(ref.pipeline_run_id)
        stages = await self._db(creation.prepare_stage_runs, self._engine, run_id)
        timeout = await self._db(creation.pipeline_timeout_seconds, self._engine, run_id)
        return PreparedPipelineRun(timeout_seconds=timeout, stages=stages)

    @activity.defn(name=names.CLOSE_OPEN_STAGE_RUNS)
    async def close_open_stage_runs(self, request: CloseStageRunsInput) -> ClosedCount:
        return ClosedCount(await self._db(
            statuses.close_open_stage_runs, self._engine, UUID(request.pipeline_run_id),
            request.status, request.reason, _at(request.at_epoch)))

    @activity.defn(name=names.MATERIALIZE_TARGETS)
    async def materialize_targets(self, ref: StageRunRef) -> StagePlan:
        """Chunk by chunk (store.runs.materialize), heartbeating between chunks. An attempt
        that has used its share of the start-to-close timeout (its begin included) fails,
        retryably, after a chunk (at least one per attempt): the next attempt carries on from
        the store, so a stage of any size is made however short the timeout per attempt."""
        stage_run_id = UUID(ref.stage_run_id)
        with log_fields(stage_run_id=ref.stage_run_id):
            timeout = activity.info().start_to_close_timeout or timedelta(seconds=20)
            stop_at = time.monotonic() + timeout.total_seconds() * MATERIALIZE_ATTEMPT_SHARE
            state = await self._db(materialize.begin, self._engine, stage_run_id)
            while state.plan is None:
                state = await self._db(materialize.write_chunk, self._engine, state)
                activity.heartbeat(state.next_seq)
                if state.plan is None and time.monotonic() >= stop_at:
                    raise ApplicationError(
                        f"{state.next_seq} devices made, {len(state.remaining)} to go: the next "
                        "attempt carries on", type="MaterializationContinues",
                        next_retry_delay=timedelta(seconds=1),
                        category=ApplicationErrorCategory.BENIGN)  # expected: logged at DEBUG
            plan = state.plan
            log.info("stage run targets %d device(s) x %d operation(s)%s", plan.device_count,
                     len(plan.operation_ids),
                     f"; invalid: {plan.invalid_reason}" if plan.invalid_reason else "")
        return plan

    @activity.defn(name=names.NEXT_TARGET_PAGE)
    async def next_target_page(self, request: TargetPageInput) -> TargetPage:
        if request.carried:
            rows = await self._db(targets.next_carried_page, self._engine,
                                  UUID(request.stage_run_id), request.after_seq, request.limit)
            return TargetPage([(seq, device) for seq, device, _ in rows],
                              first_ops=[first for _, _, first in rows])
        named = await self._db(targets.next_named_target_page, self._engine,
                               UUID(request.stage_run_id), request.after_seq, request.limit)
        return TargetPage([(seq, device) for seq, device, _ in named],
                          device_names=[name for _, _, name in named])

    @activity.defn(name=names.CARRY_OVER_STAGE)
    async def carry_over_stage(self, ref: StageRunRef) -> CarriedStage:
        """A retry's stage carried over whole: recorded as it ended, no workflow started."""
        status = await self._db(carry.carry_over_stage, self._engine, UUID(ref.stage_run_id),
                                datetime.now(UTC))
        return CarriedStage(status)

    @activity.defn(name=names.CLOSE_PENDING_TARGETS)
    async def close_pending_targets(self, request: ClosePendingTargetsInput) -> ClosedCount:
        closed = await self._db(
            targets.close_pending_targets, self._engine, UUID(request.stage_run_id),
            request.status, request.reason, _at(request.at_epoch),
            target_run_ids=request.target_run_ids)
        if closed:
            TARGETS_FINISHED.labels(status=request.status, gateway=self._gateway.name).inc(closed)
        return ClosedCount(closed)

    @activity.defn(name=names.ADD_TARGET_DEVICE)
    async def add_target_device(self, request: AddDeviceInput) -> AddedDevice:
        seq, ids = await self._db(targets.add_target_device, self._engine,
                                  UUID(request.stage_run_id), UUID(request.device_id),
                                  request.device_name, request.device_alias)
        return AddedDevice(seq, ids)

    @activity.defn(name=names.COUNT_TARGETS)
    async def count_targets(self, ref: StageRunRef) -> TargetCounts:
        return TargetCounts(await self._db(targets.target_counts, self._engine,
                                           UUID(ref.stage_run_id)))

    @activity.defn(name=names.RETRY_TARGET_RUN)
    async def retry_target_run(self, request: RetryTargetInput) -> RetriedTarget:
        """Send a finished target run again: its retry row (store.runs.retries). A refusal is
        a non-retryable `RetryRefused` error carrying the store's words."""
        try:
            return await self._db(retries.retry_target_run, self._engine,
                                  UUID(request.stage_run_id), UUID(request.target_run_id))
        except retries.RetryRefused as refused:
            raise ApplicationError(str(refused), type=names.RETRY_REFUSED,
                                   non_retryable=True) from None

    @activity.defn(name=names.RESUME_TARGET_RUNS)
    async def resume_target_runs(self, request: ResumeTargetsInput) -> RetriedTargets:
        return RetriedTargets(await self._db(retries.resume_target_runs, self._engine,
                                             UUID(request.stage_run_id), request.target_run_ids))

    @activity.defn(name=names.DISPATCH_COMMAND)
    async def dispatch_command(self, request: DispatchInput) -> DispatchResult:
        """Create this attempt's command and queue it at the gateway, once.

        The command id derives from (target run, attempt), so a retry finds the same command;
        one already sent is not sent again, and the gateway itself ignores a repeated id.
        """
        at = _at(request.at_epoch)
        target_run_id = UUID(request.target_run_id)
        plan = await self._unit(commands.prepare_command, target_run_id, request.attempt,
                                self._gateway.name, at)
        if is_terminal(RunKind.TARGET, plan.target_status):
            return DispatchResult(plan.command_id, plan.target_status, sent=False,
                                  command_status=plan.command_status)
        with log_fields(pipeline_run_id=plan.pipeline_run_id, stage_run_id=plan.stage_run_id,
                        target_run_id=request.target_run_id, command_id=plan.command_id):
            if not plan.already_sent:
                # Sensitive inputs reach the gateway's copy of the args only; the command
                # row keeps their references.
                args = (apply_inputs(plan.args, request.sensitive.values)
                        if request.sensitive else plan.args)
                await self._send(DeviceCommand(
                    command_id=plan.command_id, target_run_id=request.target_run_id,
                    enterprise_id="", device_id=plan.device_id,
                    operation_type=plan.operation_type, args=args,
                    device_attributes=plan.device_attributes,
                ))
            status = await self._unit(commands.mark_dispatched, target_run_id,
                                      UUID(plan.command_id), at)
        return DispatchResult(plan.command_id, status, sent=not plan.already_sent)

    async def _send(self, command: DeviceCommand) -> None:
        gateway = self._gateway.name
        try:
            await self._gateway.send(command)
        except Exception as err:
            record_gateway_error(gateway, "send", err)
            log.warning("gateway %s did not take command %s (%s: %s); the activity retries",
                        gateway, command.command_id, type(err).__name__, err)
            raise
        TARGETS_STARTED.labels(gateway=gateway).inc()
        log.debug("command %s (%s) sent to gateway %s", command.command_id,
                  command.operation_type, gateway)

    @activity.defn(name=names.CANCEL_COMMAND)
    async def cancel_command(self, request: CancelCommandInput) -> None:
        await self._db(commands.mark_command_cancel_requested, self._engine,
                       UUID(request.command_id), _at(request.at_epoch))
        with log_fields(command_id=request.command_id):
            try:
                await self._gateway.cancel(request.command_id)
            except Exception as err:
                record_gateway_error(self._gateway.name, "cancel", err)
                log.warning("gateway %s could not cancel command %s (%s: %s)",
                            self._gateway.name, request.command_id, type(err).__name__, err)
                raise

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_statuses, self.prepare_pipeline_run, self.close_open_stage_runs,
            self.materialize_targets, self.next_target_page, self.close_pending_targets,
            self.add_target_device, self.count_targets, self.dispatch_command,
            self.cancel_command, self.retry_target_run, self.resume_target_runs,
            self.carry_over_stage,
        ]
