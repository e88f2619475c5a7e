"""The fleetpipe worker: the run workflows, their activities and the device gateway.

Run it as `python worker.py` (or `fleetpipe worker`). SIGINT / SIGTERM shut it down
gracefully: in-flight activities finish, the gateway stops, and it exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.run_activities import RunActivities
from control.relay import CommandEventRelay
from devices.choice import GatewayRefused, configure_gateway
from devices.mqtt.gateway import BrokerUnreachable
from devices.simulated import SimulatedFleet
from domain.gateway import DeviceGateway
from settings import Settings, get_settings, settings_problem
from store.db import make_engine
from store.migrations import StoreNotAtHead, require_head
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.pipeline_run import PipelineRunWorkflow
from workflows.stage_run import StageRunWorkflow
from workflows.target_run import TargetRunWorkflow

log = logging.getLogger("fleetpipe.worker")

RUN_WORKFLOWS = [PipelineRunWorkflow, StageRunWorkflow]  # on the task queue itself
TARGET_WORKFLOWS = [TargetRunWorkflow]  # on names.targets_task_queue(task_queue)
WORKFLOWS = RUN_WORKFLOWS + TARGET_WORKFLOWS
# In-flight activities get this long to finish when the worker is asked to stop.
_GRACE = timedelta(seconds=10)


@dataclass
class RunningWorker:
    runs: Worker  # pipeline and stage runs
    targets: Worker  # target runs
    gateway: DeviceGateway
    relay: CommandEventRelay


@asynccontextmanager
async def running_worker(
    client: Client,
    engine: Engine,
    *,
    task_queue: str,
    gateway: DeviceGateway | None = None,
    seed: int = 0,
) -> AsyncIterator[RunningWorker]:
    """Workers polling `task_queue` (pipeline and stage runs) and its targets queue (target
    runs), with the simulated fleet unless a gateway is given. Both serve every activity: an
    activity runs on the task queue of the workflow that schedules it.

    On entry the gateway resumes commands an earlier process left open and the relay resends
    signals it still owed, so a restarted worker picks up exactly where the last one stopped.
    """
    relay = CommandEventRelay(engine, client)
    fleet = gateway or SimulatedFleet(engine, relay, seed=seed)
    activities = RunActivities(engine, fleet)
    runs = Worker(
        client,
        task_queue=task_queue,
        workflows=RUN_WORKFLOWS,
        activities=activities.all(),
        max_concurrent_activities=50,
        max_concurrent_workflow_tasks=20,
        graceful_shutdown_timeout=_GRACE,
    )
    targets = Worker(
        client,
        task_queue=names.targets_task_queue(task_queue),
        workflows=TARGET_WORKFLOWS,
        activities=activities.all(),
        max_concurrent_activities=200,
        max_concurrent_local_activities=200,
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=_GRACE,
    )
    try:
        async with runs, targets:
            await fleet.start()
            await relay.resend_pending()
            yield RunningWorker(runs, targets, fleet, relay)
    finally:
        await fleet.stop()


async def serve(settings: Settings) -> None:
    build_gateway = configure_gateway(settings)  # a gateway it cannot run refuses first
    engine = make_engine(settings.resolved_database_url())
    require_head(engine)  # the schema is `fleetpipe db upgrade`'s to change, never ours
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                  data_converter=DATA_CONVERTER)
    gateway = build_gateway(engine, CommandEventRelay(engine, client))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, engine, task_queue=settings.task_queue, gateway=gateway):
        log.info("worker polling task queue %r at %s, sending commands through the %s gateway",
                 settings.task_queue, settings.temporal_address, gateway.name)
        await stop.wait()
        log.info("shutting down")
    engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(get_settings()))
    except ValidationError as exc:
        raise SystemExit(f"fleetpipe worker: {settings_problem(exc)}") from None
    except (StoreNotAtHead, GatewayRefused, BrokerUnreachable) as exc:
        raise SystemExit(f"fleetpipe worker: {exc}") from None


if __name__ == "__main__":
    main()
