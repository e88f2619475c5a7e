"""ConcurrencyLaneWorkflow: one per (enterprise, concurrency key); its runs go one at a time.

A pipeline run with a key joins its lane (signal-with-start, from an activity) and waits for
"go". The lane keeps the line in creation order, gives the turn to the first in line (once the
runs created before it that are still open have joined: joins race), and takes
it back when the holder says it left (a signal the run sends as it ends, whatever its end) or,
while others wait, when it finds the holder's workflow closed (terminated runs say nothing).
A run that leaves while still in line (cancelled while queued) just leaves the line.

The lane lives in Temporal, so a worker restart loses nothing. It continues as new when its
history grows, and ends when no run holds or waits: a join that arrives as it ends makes
Temporal refuse the end, and the lane carries on with it; a join after it ended starts a new
lane (signal-with-start).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.lanes import LaneActivities, WorkflowRef
    from domain.concurrency import (
        LANE_WORKFLOW,
        QUERY_LANE_STATE,
        RECENTLY_LEFT_KEPT,
        SIGNAL_LANE_GO,
        SIGNAL_LANE_JOIN,
        SIGNAL_LANE_LEAVE,
        LaneEntry,
        LaneGo,
        LaneInput,
        LaneLeave,
        LaneState,
        admit,
        not_joined,
    )
    from workflows.steps import call


# Histories recorded before the lane waited for earlier runs' joins replay without the wait.
PATCH_CREATION_ORDER = "lane-turn-in-creation-order"
# How long the lane waits for a late join before it asks whether that run is still open.
EARLIER_JOIN_CHECK_SECONDS = 10


@workflow.defn(name=LANE_WORKFLOW)
class ConcurrencyLaneWorkflow:
    @workflow.init
    def __init__(self, request: LaneInput) -> None:
        # The carried line is in place before any signal of the first task is handled.
        self._holder: LaneEntry | None = request.holder
        self._waiting: list[LaneEntry] = list(request.waiting)
        self._left: list[str] = list(request.recently_left)
        self._news = False
        # Runs created earlier that the lane stopped waiting for: their workflows were found
        # closed (or never started). They may still join; they are only no longer waited for.
        self._given_up: set[str] = set()

    @workflow.signal(name=SIGNAL_LANE_JOIN)
    def join(self, entry: LaneEntry) -> None:
        if admit(self._waiting, entry, self._holder, self._left):
            self._news = True

    @workflow.signal(name=SIGNAL_LANE_LEAVE)
    def leave(self, request: LaneLeave) -> None:
        if self._holder is not None and self._holder.workflow_id == request.workflow_id:
            self._holder = None
        self._waiting = [w for w in self._waiting if w.workflow_id != request.workflow_id]
        self._left = [*self._left, request.workflow_id][-RECENTLY_LEFT_KEPT:]
        self._news = True

    @workflow.query(name=QUERY_LANE_STATE)
    def state(self) -> LaneState:
        return LaneState(holder=self._holder.pipeline_run_id if self._holder else None,
                         waiting=[w.pipeline_run_id for w in self._waiting])

    @workflow.run
    async def run(self, request: LaneInput) -> None:
        # Signals delivered with the start (or after a continue-as-new) are already in.
        while self._holder is not None or self._waiting:
            if self._holder is None:
                missing = not_joined(self._waiting[0], self._holder, self._waiting,
                                     self._left, self._given_up)
                if missing and workflow.patched(PATCH_CREATION_ORDER):
                    await self._wait_for_earlier(missing, request.check_seconds)
                    continue
                await self._give_turn(self._waiting.pop(0))
                continue
            self._describe()
            if self._history_is_long(request.history_budget):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(LaneInput(
                    request.enterprise_id, request.concurrency_key, holder=self._holder,
                    waiting=list(self._waiting), check_seconds=request.check_seconds,
                    history_budget=request.history_budget, recently_left=list(self._left)))
            await self._wait(request.check_seconds)
        self._describe()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _give_turn(self, entry: LaneEntry) -> None:
        # The holder is set before the signal goes: a leave that arrives meanwhile clears it.
        self._holder = entry
        lane_id = workflow.info().workflow_id
        try:
            await workflow.get_external_workflow_handle(entry.workflow_id).signal(
                SIGNAL_LANE_GO, LaneGo(lane_id))
        except FailureError as gone:  # its workflow closed before its turn came
            workflow.logger.info("run %s left before its turn: %s", entry.pipeline_run_id, gone)
            if self._holder is entry:
                self._holder = None

    async def _wait_for_earlier(self, missing: list[str], check_seconds: int) -> None:
        """The first in line was created after runs whose joins have not arrived yet (their
        join activities ran later than its own): wait for them; give up on those whose
        workflows are found closed."""
        self._news = False
        workflow.set_current_details(
            f"idle: {len(missing)} run(s) created earlier have not joined yet")
        timeout = timedelta(seconds=min(check_seconds, EARLIER_JOIN_CHECK_SECONDS))
        try:
            await workflow.wait_condition(lambda: self._news, timeout=timeout)
            return
        except TimeoutError:
            pass
        for workflow_id in missing:
            if not await call(LaneActivities.workflow_is_open, WorkflowRef(workflow_id)):
                self._given_up.add(workflow_id)

    async def _wait(self, check_seconds: int) -> None:
        """Until a run joins or leaves; while others wait, check now and then that the
        holder's workflow is still open."""
        self._news = False
        holder = self._holder
        timeout = timedelta(seconds=check_seconds) if self._waiting else None
        try:
            await workflow.wait_condition(lambda: self._news, timeout=timeout)
            return
        except TimeoutError:
            pass
        assert holder is not None
        if not await call(LaneActivities.workflow_is_open, WorkflowRef(holder.workflow_id)):
            workflow.logger.warning("run %s ended without leaving its lane: its turn is over",
                                    holder.pipeline_run_id)
            if self._holder is holder:
                self._holder = None

    def _history_is_long(self, budget: int) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > budget)

    def _describe(self) -> None:
        held = f"run `{self._holder.pipeline_run_id}` has the turn" if self._holder else "idle"
        workflow.set_current_details(f"{held}; {len(self._waiting)} waiting")
