"""The stage run's retry_target update against a real worker and the simulated fleet: a failed
target run sent again, a device's later operations that ended for its failure running again
once it succeeds, the refusals of the validator, and the histories replaying."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Replayer

from control.launch import start_pipeline_run
from domain.ids import stage_run_workflow_id
from domain.retries import EARLIER_OPERATION_FAILED
from store.db import transaction
from store.definitions.devices import Device
from store.runs.tables import TargetRun
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import result_of, stage_rows, target_rows, wait_for
from worker import WORKFLOWS, running_worker
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import StageRunResult, TargetRetryRequest, TargetRetryResult

FAIL = {"sim_behavior": "fail"}
SLOW = {"sim_latency_ms": "5000"}  # keeps the stage run open meanwhile


def _rows(engine: Engine, stage_run_id: UUID) -> dict[tuple[int, int, int], TargetRun]:
    """(device seq, operation, generation) -> row."""
    return {(t.device_seq, t.operation_order, t.generation): t
            for t in target_rows(engine, stage_run_id)}


def _fix_device(engine: Engine, device_id: UUID) -> None:
    with transaction(engine) as session:
        device = session.get(Device, device_id)
        assert device is not None
        device.attributes = {}
        session.add(device)


async def _stage_open_with_failed_device(client: Client, engine: Engine, task_queue: str):
    """A stage of two devices x (INSTALL, REBOOT): device 0 failed its INSTALL (so its REBOOT
    ended without running), device 1 is still at work."""
    enterprise_id, pipeline_id = make_pipeline(engine, [
        StageSpec("fleet", devices=[FAIL, SLOW], operations=[INSTALL, REBOOT])])
    run = await start_pipeline_run(client, engine, enterprise_id=enterprise_id,
                                   pipeline_id=pipeline_id, task_queue=task_queue)
    await wait_for(lambda: bool(stage_rows(engine, run.id))
                   and stage_rows(engine, run.id)[0].status == "running")
    stage = stage_rows(engine, run.id)[0]
    await wait_for(lambda: _rows(engine, stage.id)[(0, 1, 0)].status == "failure")
    rows = _rows(engine, stage.id)
    assert rows[(0, 0, 0)].command_status == "failure"
    assert rows[(0, 1, 0)].status_reason == EARLIER_OPERATION_FAILED
    handle = client.get_workflow_handle(stage_run_workflow_id(stage.id))
    return run, stage, rows, handle


def _retry_request(row: TargetRun) -> TargetRetryRequest:
    return TargetRetryRequest(str(row.id), str(row.target_id), row.operation_order)


async def _stage_result(client: Client, stage_run_id: UUID) -> StageRunResult:
    return await client.get_workflow_handle(stage_run_workflow_id(stage_run_id),
                                            result_type=StageRunResult).result()


async def test_the_later_operation_runs_again_once_the_failed_one_sent_again_succeeds(
        temporal_client, sqlite_engine, task_queue):
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run, stage, rows, handle = await _stage_open_with_failed_device(
            temporal_client, sqlite_engine, task_queue)
        install, reboot = rows[(0, 0, 0)], rows[(0, 1, 0)]
        busy = rows[(1, 0, 0)]
        # the validator: a target run still in flight, one that is not the current row
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(names.UPDATE_RETRY_TARGET, _retry_request(busy),
                                        result_type=TargetRetryResult)
        assert "still running" in str(refused.value.cause)
        wrong = TargetRetryRequest(str(install.id), str(install.target_id), 1)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(names.UPDATE_RETRY_TARGET, wrong,
                                        result_type=TargetRetryResult)
        assert "not the current target run" in str(refused.value.cause)
        # the store's refusal: the later operation waits for the earlier one
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(names.UPDATE_RETRY_TARGET, _retry_request(reboot),
                                        result_type=TargetRetryResult)
        assert "Send that one again" in str(refused.value.cause)

        _fix_device(sqlite_engine, install.target_id)
        sent = await handle.execute_update(names.UPDATE_RETRY_TARGET, _retry_request(install),
                                           result_type=TargetRetryResult)
        assert (sent.retry_of, sent.waiting) == (str(install.id), "")
        # sent twice: the old row is no longer the current one
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(names.UPDATE_RETRY_TARGET, _retry_request(install),
                                        result_type=TargetRetryResult)
        assert "not the current target run" in str(refused.value.cause)
        result = await result_of(temporal_client, run.id)
        stage_result = await _stage_result(temporal_client, stage.id)
        histories = [await temporal_client.get_workflow_handle(workflow_id).fetch_history()
                     for workflow_id in (stage_run_workflow_id(stage.id),)]
    assert result.status == "success"
    assert stage_result.status == "success" and stage_result.counts == {"success": 4}
    rows = _rows(sqlite_engine, stage.id)
    assert sorted(rows) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 1, 0)]
    assert str(rows[(0, 0, 1)].id) == sent.target_run_id
    for operation in (0, 1):
        old, new = rows[(0, operation, 0)], rows[(0, operation, 1)]
        assert old.status == "failure" and old.superseded_by == new.id
        assert new.status == "success" and new.retry_of == old.id
        assert new.superseded_by is None and new.command_status == "success"
    assert rows[(0, 1, 0)].command_id is None  # it never ran; its retry did
    assert rows[(0, 1, 0)].status_reason == EARLIER_OPERATION_FAILED
    assert {rows[(1, op, 0)].status for op in (0, 1)} == {"success"}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in histories:
        await replayer.replay_workflow(history)  # the update and the resume replay


async def test_a_retry_that_fails_again_leaves_the_later_operation_as_it_was(
        temporal_client, sqlite_engine, task_queue):
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run, stage, rows, handle = await _stage_open_with_failed_device(
            temporal_client, sqlite_engine, task_queue)
        install = rows[(0, 0, 0)]
        await handle.execute_update(names.UPDATE_RETRY_TARGET, _retry_request(install),
                                    result_type=TargetRetryResult)  # the device still fails
        result = await result_of(temporal_client, run.id)
        stage_result = await _stage_result(temporal_client, stage.id)
    assert result.status == "failure"
    # one failure per device x operation: the replaced row no longer counts
    assert stage_result.counts == {"failure": 2, "success": 2}
    rows = _rows(sqlite_engine, stage.id)
    assert sorted(rows) == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    assert rows[(0, 0, 1)].status == "failure" and rows[(0, 0, 1)].command_status == "failure"
    assert rows[(0, 1, 0)].superseded_by is None and rows[(0, 1, 0)].status == "failure"
