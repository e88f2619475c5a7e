"""A stage made over several attempts of its materialize_targets activity, as a big one is
when an attempt runs out of its share of the workflow's start-to-close timeout: the real
StageRunWorkflow, worker, dev server and SQLite store."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from activities import run_activities
from control.launch import start_pipeline_run
from domain.ids import stage_run_workflow_id
from store.runs import materialize
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import result_of, stage_rows, target_rows
from worker import running_worker
from workflows.stage_run import HEARTBEAT_TIMEOUT, MATERIALIZE_TIMEOUT


async def test_a_stage_made_over_three_attempts_runs_every_target_once(
        temporal_client, sqlite_engine, task_queue, monkeypatch):
    # Two devices per chunk, and every attempt hands over after its first chunk.
    monkeypatch.setattr(materialize, "CHUNK_DEVICES", 2)
    monkeypatch.setattr(run_activities, "MATERIALIZE_ATTEMPT_SHARE", 0.0)
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{}] * 5, operations=[INSTALL, REBOOT])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    [stage] = stage_rows(sqlite_engine, run.id)
    rows = target_rows(sqlite_engine, stage.id)
    assert stage.device_count == 5
    assert [(t.device_seq, t.operation_order) for t in rows] == [
        (seq, order) for seq in range(5) for order in (0, 1)]
    assert {t.status for t in rows} == {"success"}
    history = await temporal_client.get_workflow_handle(
        stage_run_workflow_id(stage.id)).fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and scheduled[e.activity_task_started_event_attributes.scheduled_event_id]
                == "materialize_targets"]
    assert attempts == [3]
    # A lean stage gives it room for a big stage in one attempt, and watches its heartbeat.
    [options] = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name
                 == "materialize_targets"]
    assert options.heartbeat_timeout.ToTimedelta() == HEARTBEAT_TIMEOUT
    assert options.start_to_close_timeout.ToTimedelta() == MATERIALIZE_TIMEOUT
