"""The reconciler: ends in the store the runs whose workflow closed without ending them.

A workflow that is terminated (Web UI, `temporal workflow terminate`), that failed, or that
timed out runs no more code of its own, so its run would stay open in the store for ever. The
worker runs `keep_reconciling`: every interval it looks at the runs the store holds open (or
with open stage or target runs), describes each one's workflow (by the derived id), and closes
the runs whose workflow is closed or gone through control.closing: cancelled for a cancel or a
terminate, failure for a failed or timed-out workflow, with the reason from the close event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.engine import Engine
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
)
from temporalio.service import RPCError, RPCStatusCode

from control.closing import RunCloser
from domain.gateway import DeviceGateway
from domain.ids import pipeline_run_workflow_id
from domain.statuses import PipelineRunStatus
from store.executor import run_db
from store.runs.closing import runs_left_open
from store.types import utcnow

log = logging.getLogger(__name__)

_S = WorkflowExecutionStatus
_WORDS = {_S.CANCELED: "cancelled", _S.TERMINATED: "terminated", _S.FAILED: "failed",
          _S.TIMED_OUT: "timed out", _S.COMPLETED: "completed",
          _S.CONTINUED_AS_NEW: "continued as new"}
# A run's row is written just before its workflow is started: younger than this, a workflow
# not found may still be on its way.
START_GRACE = timedelta(seconds=60)


def run_status_for(closed: WorkflowExecutionStatus | None) -> str:
    """The status a run ends with when its workflow closed this way (None: not found)."""
    if closed in (_S.FAILED, _S.TIMED_OUT):
        return PipelineRunStatus.FAILURE.value
    return PipelineRunStatus.CANCELLED.value


class RunReconciler:
    def __init__(self, engine: Engine, client: Client, gateway: DeviceGateway | None = None,
                 *, start_grace: timedelta = START_GRACE) -> None:
        self._engine = engine
        self._client = client
        self._closer = RunCloser(engine, client, gateway)
        self._start_grace = start_grace

    async def reconcile_once(self) -> list[str]:
        """Close every run left open whose workflow is closed; returns their ids."""
        closed = []
        created_before = utcnow() - self._start_grace
        for run_id in await run_db(self._engine, runs_left_open, self._engine,
                                   created_before=created_before):
            handle = self._client.get_workflow_handle(pipeline_run_workflow_id(run_id))
            try:
                status = (await handle.describe()).status
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                status = None
            if status == _S.RUNNING:
                continue
            await self._closer.close(run_id, run_status_for(status),
                                     await _reason(handle, status))
            closed.append(run_id)
        return closed

    async def keep_reconciling(self, interval: float) -> None:
        """Reconcile every `interval` seconds until cancelled; a failed round is logged and
        tried again at the next."""
        while True:
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("reconciling runs failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)


async def _reason(handle: WorkflowHandle, status: WorkflowExecutionStatus | None) -> str:
    if status is None:
        return "its workflow is not in Temporal (deleted, or never started)"
    said = f"its workflow was {_WORDS.get(status, status.name.lower())} in Temporal"
    detail = ""
    try:
        async for event in handle.fetch_history_events(
                event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
            detail = _close_detail(event)
    except RPCError as err:
        log.warning("could not read how workflow %s closed: %s", handle.id, err)
    return f"{said}: {detail}" if detail else said


def _close_detail(event: HistoryEvent) -> str:
    if event.HasField("workflow_execution_terminated_event_attributes"):
        return event.workflow_execution_terminated_event_attributes.reason
    if event.HasField("workflow_execution_failed_event_attributes"):
        return event.workflow_execution_failed_event_attributes.failure.message
    return ""
