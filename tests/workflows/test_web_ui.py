"""The Temporal Web UI as an operator reads it: every run named in its summary, found by the
visibility queries of docs/operator-guide.md, and a stage's details telling what is in flight.
On the real dev server (with fleetpipe's search attributes registered), SQLite and the
simulated fleet."""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.common import SearchAttributeKey

from control.launch import start_pipeline_run
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import result_of, stage_rows, target_rows
from worker import running_worker
from workflows import names
from workflows.messages import RunState, RunStatusRequest

_DEVICE = SearchAttributeKey.for_keyword(names.SA_DEVICE)
_KIND = SearchAttributeKey.for_keyword(names.SA_KIND)
_STATUS = SearchAttributeKey.for_keyword(names.SA_STATUS)


async def _ids_matching(client, query: str, expected: int, timeout: float = 30.0) -> set[str]:
    """Workflow ids a visibility query finds, once it finds `expected` (visibility lags)."""
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while time.monotonic() < deadline:
        found = {w.id async for w in client.list_workflows(query)}
        if len(found) >= expected:
            await asyncio.sleep(0.5)  # and no more than that a moment later
            return {w.id async for w in client.list_workflows(query)}
        await asyncio.sleep(0.3)
    return found


async def _details(client, workflow_id: str) -> str:
    metadata = await client.get_workflow_handle(workflow_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_failed_target_runs_of_one_run_are_found_by_name_number_and_status(
        temporal_client, sqlite_engine, task_queue):
    tag = uuid.uuid4().hex[:8]
    pipeline, enterprise = f"webui-{tag}", f"ent-{tag}"
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, {"sim_behavior": "fail"}, {},
                                     {"sim_behavior": "fail"}]),
    ], enterprise=enterprise, name=pipeline)
    # The worker stays up to the end: a query (the current details) needs one.
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        runs = [await start_pipeline_run(temporal_client, sqlite_engine,
                                         enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                         task_queue=task_queue) for _ in range(2)]
        for run in runs:
            assert (await result_of(temporal_client, run.id)).status == "failure"
        first, second = runs
        assert (first.run_number, second.run_number) == (1, 2)
        [stage] = stage_rows(sqlite_engine, first.id)
        targets = target_rows(sqlite_engine, stage.id)
        failed = {target_run_workflow_id(t.id) for t in targets if t.status == "failure"}
        assert len(failed) == 2

        # The guide's query: failed target runs of run 1 of this pipeline, by names only.
        query = (f'FleetpipeEnterprise = "{enterprise}" AND FleetpipePipeline = "{pipeline}" '
                 'AND FleetpipeRunNumber = 1 AND FleetpipeKind = "target" '
                 'AND FleetpipeStatus = "failure"')
        assert await _ids_matching(temporal_client, query, len(failed)) == failed
        assert await _ids_matching(temporal_client, query.replace(
            '= "failure"', 'IN ("failure", "timeout", "cancelled")'), len(failed)) == failed
        # A target that succeeded keeps no status: Temporal's Completed without one.
        succeeded = query.replace('FleetpipeStatus = "failure"',
                                  'ExecutionStatus = "Completed" AND FleetpipeStatus IS NULL')
        assert await _ids_matching(temporal_client, succeeded, 2) == {
            target_run_workflow_id(t.id) for t in targets if t.status == "success"}
        # The other levels carry the same names and their own final status.
        for kind, expected in (("stage", stage_run_workflow_id(stage.id)),
                               ("pipeline", pipeline_run_workflow_id(first.id))):
            assert await _ids_matching(temporal_client, (
                f'FleetpipePipeline = "{pipeline}" AND FleetpipeRunNumber = 1 AND '
                f'FleetpipeKind = "{kind}" AND FleetpipeStatus = "failure"'), 1) == {expected}
        assert len(await _ids_matching(temporal_client, (
            f'FleetpipePipeline = "{pipeline}" AND FleetpipeStage = "canary"'), 10)) == 2 + 2 * 4

        # Each level's summary names it, from the pipeline run down to the device.
        pipeline_view = await temporal_client.get_workflow_handle(
            pipeline_run_workflow_id(first.id)).describe()
        assert await pipeline_view.static_summary() == f"{pipeline} #1"
        stage_view = await temporal_client.get_workflow_handle(
            stage_run_workflow_id(stage.id)).describe()
        assert await stage_view.static_summary() == f"{pipeline} #1 · stage 1 canary"
        target = next(t for t in targets if t.status == "failure")
        target_view = await temporal_client.get_workflow_handle(
            target_run_workflow_id(target.id)).describe()
        assert await target_view.static_summary() == (
            f"{pipeline} #1 · stage 1 canary · device {target.device_name} · op 1 INSTALL")
        attributes = target_view.typed_search_attributes
        assert attributes.get(_DEVICE) == target.device_name
        assert (attributes.get(_KIND), attributes.get(_STATUS)) == ("target", "failure")
        assert "ended **failure**" in await _details(temporal_client, target_run_workflow_id(
            target.id))


async def test_stage_details_count_the_target_runs_in_flight(
        temporal_client, sqlite_engine, task_queue):
    tag = uuid.uuid4().hex[:8]
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("silent", devices=[{"sim_behavior": "offline"}] * 3,
                  operations=[INSTALL, REBOOT]),
    ], enterprise=f"ent-{tag}", name=f"webui-{tag}")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        stage_id = stage_run_workflow_id(
            (await asyncio.to_thread(_first_stage_row, sqlite_engine, run.id)).id)
        # The devices never answer: their three target runs stay in flight until the cancel.
        deadline = time.monotonic() + 30
        details = ""
        while time.monotonic() < deadline and "3 target runs in flight" not in details:
            await asyncio.sleep(0.3)
            try:
                details = await _details(temporal_client, stage_id)
            except Exception:  # noqa: BLE001 (not started yet)
                continue
        assert details.startswith(f"webui-{tag} #1 · stage 1 silent: 3 target runs in flight"), \
            details
        assert "0 of 6 finished" in details
        await temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id)) \
            .execute_update(names.UPDATE_SET_RUN_STATUS, RunStatusRequest("cancelled"),
                            result_type=RunState)
        assert (await result_of(temporal_client, run.id)).status == "cancelled"
        details = await _details(temporal_client, stage_id)
    assert "ended **cancelled**" in details and "0 target runs in flight" in details, details


def _first_stage_row(engine, run_id):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = stage_rows(engine, run_id)
        if rows:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError("the run made no stage run")


async def test_without_search_attributes_runs_still_run_and_carry_none(
        temporal_client, sqlite_engine, task_queue):
    """FLEETPIPE_SEARCH_ATTRIBUTES=false (a server without them registered): no level sets or
    upserts one, and the run still ends as it should."""
    tag = uuid.uuid4().hex[:8]
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, {"sim_behavior": "fail"}]),
    ], enterprise=f"ent-{tag}", name=f"webui-{tag}")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue, search_attributes=False)
        assert (await result_of(temporal_client, run.id)).status == "failure"
    [stage] = stage_rows(sqlite_engine, run.id)
    ids = [pipeline_run_workflow_id(run.id), stage_run_workflow_id(stage.id)] + [
        target_run_workflow_id(t.id) for t in target_rows(sqlite_engine, stage.id)]
    for workflow_id in ids:
        view = await temporal_client.get_workflow_handle(workflow_id).describe()
        assert not any(pair.key.name.startswith("Fleetpipe")
                       for pair in view.typed_search_attributes), workflow_id
        assert f"webui-{tag} #1" in (await view.static_summary() or "")


async def test_without_search_attributes_a_server_that_lacks_them_runs_every_level(
        time_skipping_env, sqlite_engine, task_queue):
    """The time-skipping server has none of fleetpipe's attributes registered and refuses a
    start or an upsert naming one: every level of the run must leave them out."""
    env = time_skipping_env
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, {"sim_behavior": "fail"}], operations=[INSTALL, REBOOT]),
    ])
    async with running_worker(env.client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(env.client, sqlite_engine, enterprise_id=enterprise_id,
                                       pipeline_id=pipeline_id, task_queue=task_queue,
                                       search_attributes=False)
        assert (await result_of(env.client, run.id)).status == "failure"
    [stage] = stage_rows(sqlite_engine, run.id)
    assert stage.status == "failure"
    assert sorted(t.status for t in target_rows(sqlite_engine, stage.id)) == [
        "failure", "failure", "success", "success"]
