"""Runs ended from Temporal's side (cancelled, terminated) or by a workflow that failed: each
ends in the store with its stage runs, target runs and commands, leaves no child workflow
running, and can then be deleted through the API. The real stack: API, worker with the
simulated fleet, the Temporal dev server and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from control.reconciler import RunReconciler
from devices.simulated import CANCEL_REASON
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from store.db import transaction
from store.definitions.pipelines import Pipeline
from tests.api.conftest import Api, api_for, settings_for
from tests.api.test_definitions import INSTALL
from tests.api.test_runs_e2e import devices, until
from tests.workflows.helpers import commands_of, stage_rows, target_rows
from worker import RunningWorker, running_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Stack:
    api: Api
    worker: RunningWorker
    client: Client
    engine: Engine

    def reconciler(self) -> RunReconciler:
        """The worker's reconciler, without its start-up grace (these runs are seconds old)."""
        return RunReconciler(self.engine, self.client, self.worker.gateway,
                             start_grace=timedelta(0))


@pytest.fixture
async def stack(sqlite_engine: Engine, temporal_client: Client,
                task_queue: str) -> AsyncIterator[Stack]:
    settings = settings_for(task_queue=task_queue)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              reconcile_interval=3600) as worker:
        async with api_for(sqlite_engine, temporal_client=temporal_client,
                           settings=settings) as api:
            yield Stack(api, worker, temporal_client, sqlite_engine)


async def offline_run(stack: Stack, name: str) -> tuple[str, UUID]:
    """(path, id) of a one-stage run whose three devices never answer, once all three
    commands are out."""
    api = stack.api
    ids = await devices(api, 3, behavior="offline", prefix=name)
    pipeline = await api.ok("POST", "/pipelines", {"name": name, "stages": [
        {"name": "only", "device_ids": ids, "operations": [INSTALL]}]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    run_id = UUID(run["id"])
    await until(api, f"/runs/{run_id}/stageruns", lambda c: c["count"] == 1)
    stage_run_id = stage_rows(stack.engine, run_id)[0].id
    await until(api, f"/stageruns/{stage_run_id}/targetruns",
                lambda c: c["count"] == 3
                and all(t["status"] == "dispatched" for t in c["results"]))
    return f"/pipelines/{pipeline['id']}/runs/{run_id}", run_id


async def _closed(client: Client, workflow_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
        return True
    return described.status != WorkflowExecutionStatus.RUNNING


async def assert_ended_everywhere(stack: Stack, path: str, run_id: UUID, status: str,
                                  reason_has: str) -> dict[str, Any]:
    run = await stack.api.ok("GET", path)
    assert run["status"] == status and reason_has in run["status_reason"], run
    stages = stage_rows(stack.engine, run_id)
    targets = [t for s in stages for t in target_rows(stack.engine, s.id)]
    assert {s.status for s in stages} <= {"cancelled", "failure"}
    # Dispatched target runs can only fail (their command cancelled); the rest were cancelled.
    assert all(t.status in ("cancelled", "failure") for t in targets), targets
    assert all(t.command_status in (None, "cancelled") for t in targets)
    assert {c.status for c in commands_of(stack.engine, run_id)} <= {"cancelled"}
    workflow_ids = ([pipeline_run_workflow_id(run_id)]
                    + [stage_run_workflow_id(s.id) for s in stages]
                    + [target_run_workflow_id(t.id) for t in targets])
    for workflow_id in workflow_ids:
        assert await _closed(stack.client, workflow_id), f"{workflow_id} still running"
    deleted = await stack.api.http.delete("/api/pipelines/v0" + path)
    assert deleted.status_code == 200, deleted.json()
    return run


async def test_a_run_cancelled_in_temporal_goes_through_the_cancel_path(stack: Stack):
    path, run_id = await offline_run(stack, "cancel-in-temporal")
    commands = commands_of(stack.engine, run_id)
    assert len(commands) == 3
    await stack.client.get_workflow_handle(pipeline_run_workflow_id(run_id)).cancel()
    await until(stack.api, path, lambda r: r["status"] == "cancelled")
    stage_run_id = stage_rows(stack.engine, run_id)[0].id
    # The stage stopped its targets: each cancelled its command at the gateway, which
    # confirmed, so each target run ended failure (as an API cancel leaves them).
    await until(stack.api, f"/stageruns/{stage_run_id}/targetruns",
                lambda c: all(t["status"] == "failure" for t in c["results"]))
    assert [c.cancel_requested_at is not None for c in commands_of(stack.engine, run_id)] == [
        True] * 3
    # The workflow itself recorded it all (no reconciler ran), then ended cancelled.
    described = await stack.client.get_workflow_handle(
        pipeline_run_workflow_id(run_id)).describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    await assert_ended_everywhere(stack, path, run_id, "cancelled", "cancellation requested")


async def test_a_run_terminated_in_temporal_ends_cancelled_once_reconciled(stack: Stack):
    path, run_id = await offline_run(stack, "terminated")
    await stack.client.get_workflow_handle(pipeline_run_workflow_id(run_id)).terminate(
        reason="operator pulled the plug")
    run = await stack.api.ok("GET", path)
    assert run["status"] == "running"  # nothing of the run's ran to record it
    closed = await stack.reconciler().reconcile_once()
    assert closed == [str(run_id)]
    assert await stack.reconciler().reconcile_once() == []  # idempotent: nothing left open
    # The devices' commands were cancelled at the gateway (its confirmation is recorded), not
    # only marked in the store.
    assert {c.reason for c in commands_of(stack.engine, run_id)} == {CANCEL_REASON}
    await assert_ended_everywhere(stack, path, run_id, "cancelled",
                                  "terminated in Temporal: operator pulled the plug")


async def test_a_run_whose_workflow_failed_ends_failure_with_the_error(stack: Stack):
    api = stack.api
    ids = await devices(api, 1, prefix="overflow")
    pipeline = await api.ok("POST", "/pipelines", {"name": "overflow", "stages": [
        {"name": "only", "device_ids": ids, "operations": [INSTALL]}]}, 201)
    with transaction(stack.engine) as session:  # past what a date can hold: the run's
        row = session.get(Pipeline, UUID(pipeline["id"]))  # deadline overflows
        assert row is not None
        row.timeout_seconds = 10**12
        session.add(row)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    run_id = UUID(run["id"])
    handle = stack.client.get_workflow_handle(pipeline_run_workflow_id(run_id))

    async def failed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.FAILED

    for _ in range(300):
        if await failed():
            break
        await asyncio.sleep(0.1)
    assert await failed(), "the workflow's task error did not fail the workflow"
    assert await stack.reconciler().reconcile_once() == [str(run_id)]
    await assert_ended_everywhere(stack, f"/pipelines/{pipeline['id']}/runs/{run_id}", run_id,
                                  "failure", "failed in Temporal")
