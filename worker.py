"""The fleetpipe worker: the run workflows, their activities and the device gateway.

Run it as `python worker.py` (or `fleetpipe worker`). SIGINT / SIGTERM shut it down
gracefully: in-flight activities finish, the gateway stops, and it exits 0. Unless
FLEETPIPE_WORKER_METRICS_PORT is 0 it serves /metrics (its own and the Temporal SDK's),
/healthz and /readyz on that port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.converter import CompositePayloadConverter, DataConverter
from temporalio.worker import Worker

from activities.lanes import LaneActivities
from activities.run_activities import RunActivities
from control.connection import SearchAttributesMissing, check_temporal, require_search_attributes
from control.reconciler import RunReconciler
from control.relay import CommandEventRelay
from devices.choice import GatewayRefused, configure_gateway
from devices.mqtt.gateway import BrokerUnreachable
from devices.simulated import SimulatedFleet
from domain.gateway import DeviceGateway
from observability.endpoints import free_loopback_port, sdk_metrics_runtime, worker_endpoints
from observability.logs import configure_logging
from observability.metrics import StoreSample
from observability.readiness import Check
from settings import Settings, get_settings, settings_problem
from store.db import make_engine
from store.health import ping
from store.migrations import StoreNotAtHead, require_head
from store.runs.gauges import run_gauges
from workflows import names
from workflows.concurrency_lane import ConcurrencyLaneWorkflow
from workflows.converter import data_converter
from workflows.pipeline_run import PipelineRunWorkflow
from workflows.stage_run import StageRunWorkflow
from workflows.target_run import TargetRunWorkflow

log = logging.getLogger("fleetpipe.worker")

# on the task queue itself
RUN_WORKFLOWS = [PipelineRunWorkflow, StageRunWorkflow, ConcurrencyLaneWorkflow]
TARGET_WORKFLOWS = [TargetRunWorkflow]  # on names.targets_task_queue(task_queue)
WORKFLOWS = RUN_WORKFLOWS + TARGET_WORKFLOWS
# In-flight activities get this long to finish when the worker is asked to stop.
_GRACE = timedelta(seconds=10)


def sharing_type_adapters(converter: DataConverter) -> DataConverter:
    """The same converter, whose instances share one set of encoding converters.

    The SDK builds a payload converter per workflow run (one per target), and the pydantic
    converter caches its TypeAdapters per instance, so every target run rebuilt the schemas of
    its input, signals and activity results: about a tenth of the worker's CPU (docs/
    benchmarks.md, "Worker CPU per target"). The encoders keep no state but that cache.
    """
    base = converter.payload_converter_class
    if not issubclass(base, CompositePayloadConverter):
        return converter
    shared = tuple(base().converters.values())

    class SharedAdapters(base):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            CompositePayloadConverter.__init__(self, *shared)

    SharedAdapters.__name__ = SharedAdapters.__qualname__ = f"Shared{base.__name__}"
    return dataclasses.replace(converter, payload_converter_class=SharedAdapters)


def worker_client(client: Client) -> Client:
    """`client` (same connection and namespace) with `sharing_type_adapters` on its converter."""
    config = client.config()
    config["data_converter"] = sharing_type_adapters(config["data_converter"])
    return Client(**config)


@dataclass
class RunningWorker:
    runs: Worker  # pipeline and stage runs
    targets: Worker  # target runs
    gateway: DeviceGateway
    relay: CommandEventRelay
    reconciler: RunReconciler

    def polling(self) -> bool:
        return self.runs.is_running and self.targets.is_running


@asynccontextmanager
async def running_worker(
    client: Client,
    engine: Engine,
    *,
    task_queue: str,
    gateway: DeviceGateway | None = None,
    seed: int = 0,
    resend_interval: float = 5.0,
    reconcile_interval: float = 60.0,
    settings: Settings | None = None,
) -> AsyncIterator[RunningWorker]:
    """Workers polling `task_queue` (pipeline and stage runs) and its targets queue (target
    runs), with the simulated fleet unless a gateway is given. Both serve every activity: an
    activity runs on the task queue of the workflow that schedules it. `settings` gives the
    concurrency and the targets queue (the defaults without).

    On entry the gateway resumes commands an earlier process left open and the relay resends
    signals it still owed, so a restarted worker picks up exactly where the last one stopped.
    While it runs, the relay resends owed signals every `resend_interval` seconds and the
    reconciler ends, every `reconcile_interval` seconds, the runs whose workflow closed
    without ending them (control/reconciler.py).
    """
    tuning = settings or Settings.model_construct()  # model_construct: the defaults, no env
    polling = worker_client(client)
    relay = CommandEventRelay(engine, client)
    fleet = gateway or SimulatedFleet(engine, relay, seed=seed)
    activities = RunActivities(engine, fleet)
    every_activity = activities.all() + LaneActivities(engine).all()
    runs = Worker(
        polling,
        task_queue=task_queue,
        workflows=RUN_WORKFLOWS,
        activities=every_activity,
        max_concurrent_activities=tuning.worker_runs_max_activities,
        max_concurrent_local_activities=tuning.worker_runs_max_local_activities,
        max_concurrent_workflow_tasks=tuning.worker_runs_max_workflow_tasks,
        graceful_shutdown_timeout=_GRACE,
    )
    targets = Worker(
        polling,
        task_queue=tuning.targets_task_queue or names.targets_task_queue(task_queue),
        workflows=TARGET_WORKFLOWS,
        activities=every_activity,
        max_concurrent_activities=tuning.worker_targets_max_activities,
        max_concurrent_local_activities=tuning.worker_targets_max_local_activities,
        max_concurrent_workflow_tasks=tuning.worker_targets_max_workflow_tasks,
        graceful_shutdown_timeout=_GRACE,
    )
    reconciler = RunReconciler(engine, client, fleet)
    timers: list[asyncio.Task[None]] = []
    try:
        async with runs, targets:
            await fleet.start()
            await relay.resend_pending()
            timers = [asyncio.create_task(relay.keep_resending(resend_interval)),
                      asyncio.create_task(reconciler.keep_reconciling(reconcile_interval))]
            yield RunningWorker(runs, targets, fleet, relay, reconciler)
    finally:
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        await fleet.stop()


def readiness_checks(engine: Engine, client: Client, running: RunningWorker) -> list[Check]:
    """The store answers and is at the migrations' head, Temporal answers, both workers poll."""

    async def store() -> None:
        await asyncio.to_thread(ping, engine)

    async def migrations() -> None:
        await asyncio.to_thread(require_head, engine)  # raises saying what to run

    async def temporal() -> None:
        await check_temporal(client)

    async def polling() -> None:
        if not running.polling():
            raise RuntimeError("the worker is not polling its task queues")

    return [Check("store", store), Check("migrations", migrations), Check("temporal", temporal),
            Check("worker", polling)]


class MetricsPortUnavailable(RuntimeError):
    """The worker's metrics address cannot be bound; the message says which setting moves it."""


@asynccontextmanager
async def metrics_endpoint(settings: Settings, engine: Engine, client: Client,
                           running: RunningWorker, sdk_port: int) -> AsyncIterator[None]:
    sampled = CollectorRegistry(auto_describe=False)
    sampled.register(StoreSample(lambda: run_gauges(engine)))
    endpoints = worker_endpoints(readiness_checks(engine, client, running), [sampled],
                                 f"http://127.0.0.1:{sdk_port}/metrics")
    try:
        await endpoints.start(settings.worker_metrics_host, settings.worker_metrics_port)
    except OSError as exc:  # most often: another worker on this host has the port
        raise MetricsPortUnavailable(
            f"cannot serve /metrics on {settings.worker_metrics_host}:"
            f"{settings.worker_metrics_port} ({exc.strerror or exc}): give each worker on one "
            "host its own FLEETPIPE_WORKER_METRICS_PORT, or 0 to serve none") from None
    log.info("worker metrics, /healthz and /readyz on http://%s:%d", settings.worker_metrics_host,
             endpoints.port)
    try:
        yield
    finally:
        await endpoints.close()


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """The worker process until SIGINT/SIGTERM (or until `stop` is set, when given)."""
    build_gateway = configure_gateway(settings)  # a gateway it cannot run refuses first
    engine = make_engine(settings.resolved_database_url())
    require_head(engine)  # the schema is `fleetpipe db upgrade`'s to change, never ours
    sdk_port = free_loopback_port() if settings.worker_metrics_port else 0
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                  data_converter=data_converter(settings.codec_keyring()),
                                  runtime=sdk_metrics_runtime(sdk_port) if sdk_port else None)
    if settings.search_attributes:
        await require_search_attributes(client, settings.temporal_namespace)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    gateway = build_gateway(engine, CommandEventRelay(engine, client))
    async with AsyncExitStack() as stack:
        running = await stack.enter_async_context(running_worker(
            client, engine, task_queue=settings.task_queue, gateway=gateway,
            resend_interval=settings.resend_interval_seconds,
            reconcile_interval=settings.reconcile_interval_seconds, settings=settings))
        if sdk_port:
            await stack.enter_async_context(
                metrics_endpoint(settings, engine, client, running, sdk_port))
        log.info("worker polling task queues %r and %r at %s, sending commands through the %s "
                 "gateway", settings.task_queue, running.targets.task_queue,
                 settings.temporal_address, gateway.name)
        await stop.wait()
        log.info("shutting down")
    engine.dispose()


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise SystemExit(f"fleetpipe worker: {settings_problem(exc)}") from None
    configure_logging(settings.log_format)
    try:
        asyncio.run(serve(settings))
    except (StoreNotAtHead, GatewayRefused, BrokerUnreachable, MetricsPortUnavailable,
            SearchAttributesMissing) as exc:
        raise SystemExit(f"fleetpipe worker: {exc}") from None


if __name__ == "__main__":
    main()
