"""Activities of concurrency lanes: a run joining its lane (signal-with-start, which a workflow
cannot do itself) and the lane asking whether its holder's workflow is still open.

Both are idempotent: a join sent twice is ignored by the lane (domain.concurrency.admit), and
describing a workflow changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.concurrency import (
    AHEAD_KEPT,
    LANE_WORKFLOW,
    SIGNAL_LANE_JOIN,
    LaneEntry,
    LaneInput,
    lane_workflow_id,
)
from domain.ids import pipeline_run_workflow_id
from store.executor import run_db
from store.runs.lanes import lane_place

JOIN_LANE = "join_concurrency_lane"
WORKFLOW_IS_OPEN = "workflow_is_open"


@dataclass
class JoinLaneInput:
    pipeline_run_id: str
    enterprise_id: str
    concurrency_key: str
    workflow_id: str  # the run's own workflow: where the lane sends "go"
    # Used only if this join starts the lane.
    check_seconds: int = 300
    history_budget: int = 2_000


@dataclass
class JoinedLane:
    lane_workflow_id: str
    ahead: list[str] = field(default_factory=list)  # active runs with the key created before


@dataclass
class WorkflowRef:
    workflow_id: str


class LaneActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=JOIN_LANE)
    async def join_lane(self, request: JoinLaneInput) -> JoinedLane:
        """Put the run in its lane's line, starting the lane if it is not running."""
        try:
            place = await run_db(self._engine, lane_place, self._engine,
                                 UUID(request.pipeline_run_id))
        except LookupError as missing:  # it will not appear on a retry
            raise ApplicationError(str(missing), type="NotFound", non_retryable=True) from None
        lane_id = lane_workflow_id(request.enterprise_id, request.concurrency_key)
        entry = LaneEntry(workflow_id=request.workflow_id,
                          pipeline_run_id=request.pipeline_run_id,
                          created_epoch=place.created_epoch,
                          ahead=[pipeline_run_workflow_id(UUID(run_id))
                                 for run_id in place.ahead[-AHEAD_KEPT:]])
        await activity.client().start_workflow(
            LANE_WORKFLOW, LaneInput(request.enterprise_id, request.concurrency_key,
                                     check_seconds=request.check_seconds,
                                     history_budget=request.history_budget),
            id=lane_id, task_queue=activity.info().task_queue,
            start_signal=SIGNAL_LANE_JOIN, start_signal_args=[entry],
            static_summary=f"concurrency key {request.concurrency_key!r}",
        )
        return JoinedLane(lane_id, place.ahead)

    @activity.defn(name=WORKFLOW_IS_OPEN)
    async def workflow_is_open(self, ref: WorkflowRef) -> bool:
        try:
            described = await activity.client().get_workflow_handle(ref.workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    def all(self) -> list[Callable[..., Any]]:
        return [self.join_lane, self.workflow_is_open]
