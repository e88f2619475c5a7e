"""A worker process with the Esper gateway, for the crash tests: `python -m
tests.devices.esper.esper_worker` with FLEETPIPE_TEMPORAL_ADDRESS, FLEETPIPE_DATABASE_URL,
FLEETPIPE_TASK_QUEUE and FLEETPIPE_ESPER_* set; runs until SIGTERM (or a SIGKILL)."""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client

from control.relay import CommandEventRelay
from devices.esper.config import EsperConfig
from devices.esper.gateway import EsperGateway
from settings import Settings
from store.db import make_engine
from worker import running_worker
from workflows.converter import data_converter


async def serve() -> None:
    settings = Settings()
    engine = make_engine(settings.resolved_database_url())
    client = await Client.connect(settings.temporal_address, data_converter=data_converter(
        settings.codec_keyring()))
    base = EsperConfig.from_settings(settings)
    # Test-sized leases and timeouts, so a dead worker's commands are adopted in seconds.
    config = EsperConfig(url=base.url, api_key=base.api_key, enterprise_id=base.enterprise_id,
                         max_requests_per_second=base.max_requests_per_second,
                         poll_interval_s=base.poll_interval_s,
                         poll_max_interval_s=base.poll_max_interval_s,
                         request_timeout_s=30, lease_s=3.0, retry_base_s=0.1, retry_max_s=0.5)
    gateway = EsperGateway(engine, CommandEventRelay(engine, client), config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, engine, task_queue=settings.task_queue, gateway=gateway):
        logging.getLogger("esper_worker").info("worker with the Esper gateway is up")
        await stop.wait()
    engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve())
