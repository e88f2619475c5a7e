"""The worker's operator settings: concurrency per worker, and the targets' task queue, which a
run started with it carries to its stage runs (real dev server, SQLite, the simulated fleet)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import CompositePayloadConverter

from control.launch import start_pipeline_run
from domain.ids import target_run_workflow_id
from domain.inputs import SensitiveValues
from settings import Settings
from tests.builders import StageSpec, make_pipeline
from tests.workflows.helpers import result_of, stage_rows, target_rows
from worker import running_worker, sharing_type_adapters
from workflows.codec import new_key_entry, parse_keyring
from workflows.converter import data_converter
from workflows.messages import TargetRunInput


async def test_concurrency_settings_reach_both_workers(temporal_client: Client, sqlite_engine,
                                                       task_queue: str) -> None:
    settings = Settings(worker_runs_max_workflow_tasks=3, worker_runs_max_activities=4,
                        worker_runs_max_local_activities=5, worker_targets_max_workflow_tasks=6,
                        worker_targets_max_activities=7, worker_targets_max_local_activities=8)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              settings=settings) as running:
        runs, targets = running.runs.config(), running.targets.config()
    assert (runs["max_concurrent_workflow_tasks"], runs["max_concurrent_activities"],
            runs["max_concurrent_local_activities"]) == (3, 4, 5)
    assert (targets["max_concurrent_workflow_tasks"], targets["max_concurrent_activities"],
            targets["max_concurrent_local_activities"]) == (6, 7, 8)
    assert targets["task_queue"] == f"{task_queue}-targets"  # the default name


async def test_defaults_without_settings(temporal_client: Client, sqlite_engine,
                                         task_queue: str) -> None:
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue) as running:
        runs, targets = running.runs.config(), running.targets.config()
    assert (runs["max_concurrent_workflow_tasks"], runs["max_concurrent_activities"],
            runs["max_concurrent_local_activities"]) == (20, 50, 100)
    assert (targets["max_concurrent_workflow_tasks"], targets["max_concurrent_activities"],
            targets["max_concurrent_local_activities"]) == (100, 200, 200)


async def test_a_run_sends_its_targets_to_the_configured_queue(
        temporal_client: Client, sqlite_engine, task_queue: str) -> None:
    targets_queue = f"{task_queue}-devices"
    settings = Settings(task_queue=task_queue, targets_task_queue=targets_queue)
    assert settings.resolved_targets_task_queue() == targets_queue
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [StageSpec("all", devices=[{}, {}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              settings=settings) as running:
        assert running.targets.task_queue == targets_queue
        run = await start_pipeline_run(
            temporal_client, sqlite_engine, enterprise_id=enterprise_id,
            pipeline_id=pipeline_id, task_queue=task_queue,
            targets_task_queue=settings.targets_task_queue)
        assert (await result_of(temporal_client, run.id)).status == "success"
    (stage,) = stage_rows(sqlite_engine, run.id)
    for target in target_rows(sqlite_engine, stage.id):
        described = await temporal_client.get_workflow_handle(
            target_run_workflow_id(target.id)).describe()
        assert described.task_queue == targets_queue


async def test_the_workers_converter_encrypts_and_decodes_as_every_client_does() -> None:
    """The worker shares one set of encoders among its workflow runs (so each type's schema is
    built once); what it writes and reads is what the clients' converter writes and reads."""
    ring = parse_keyring(",".join([new_key_entry("kid1")]))
    clients, workers = data_converter(ring), sharing_type_adapters(data_converter(ring))
    secret = TargetRunInput("t", "s", "e", 60, "stage-wf",
                            sensitive=SensitiveValues({"token": "s3cr3t"}))
    plain = TargetRunInput("t", "s", "e", 60, "stage-wf")
    one_run, another_run = (workers.payload_converter_class(),
                            workers.payload_converter_class())
    assert isinstance(one_run, CompositePayloadConverter)
    assert isinstance(another_run, CompositePayloadConverter)
    assert one_run.converters == another_run.converters  # the very same encoder objects
    for value in (secret, plain):
        written = await workers.encode([value])
        assert b"s3cr3t" not in written[0].SerializeToString()  # encrypted, or none to hide
        assert await clients.decode(written, [TargetRunInput]) == [value]
        assert await workers.decode(await clients.encode([value]), [TargetRunInput]) == [value]
