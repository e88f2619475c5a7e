"""Closing a run whose workflow can no longer end it: its child workflows stopped, its open
commands cancelled at the gateway (when this process has one), and its rows ended in the store.

Used by the reconciler (runs closed from Temporal's side) and by RunControl (a cancel of a run
whose workflow is gone). Safe to repeat and to run in several processes at once: a workflow
already closed is skipped, and the store only moves statuses forward.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.gateway import DeviceGateway
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from store.executor import run_db
from store.runs.closing import ClosedRun, close_run, open_parts
from store.types import utcnow

log = logging.getLogger(__name__)


class RunCloser:
    def __init__(self, engine: Engine, client: Client,
                 gateway: DeviceGateway | None = None) -> None:
        self._engine = engine
        self._client = client
        self._gateway = gateway

    async def close(self, pipeline_run_id: UUID | str, status: str, reason: str) -> ClosedRun:
        """End the run `status` (cancelled or failure) with `reason`, and all of it still open.

        Its stage and target workflows are started with ABANDON, so they outlive a run closed
        from outside: they are terminated first, so none writes after the store is closed."""
        run_id = UUID(str(pipeline_run_id))
        parts = await run_db(self._engine, open_parts, self._engine, run_id)
        why = f"its pipeline run {run_id} was closed: {reason}"
        # The run's own workflow too: it may have been started just after it was found gone.
        await self._terminate(pipeline_run_workflow_id(run_id), reason)
        for stage_run_id in parts.stage_run_ids:  # before targets: a stage starts them
            await self._terminate(stage_run_workflow_id(stage_run_id), why)
        await asyncio.gather(*(self._terminate(target_run_workflow_id(t), why)
                               for t in parts.target_run_ids))
        if self._gateway is not None:
            for command_id in parts.command_ids:
                try:
                    await self._gateway.cancel(command_id)
                except Exception as err:  # the store still marks it cancelled below
                    log.warning("could not cancel command %s at gateway %s: %s", command_id,
                                self._gateway.name, err)
        closed = await run_db(self._engine, close_run, self._engine, run_id, status, reason,
                              utcnow())
        log.info("closed pipeline run %s %s (%s): %d stage runs, %d target runs, %d commands",
                 run_id, closed.pipeline_status, reason, closed.stage_runs, closed.target_runs,
                 closed.commands)
        return closed

    async def _terminate(self, workflow_id: str, reason: str) -> None:
        try:
            await self._client.get_workflow_handle(workflow_id).terminate(reason=reason)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: closed or never started
                raise
