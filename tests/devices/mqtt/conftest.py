"""The broker the MQTT tests use (the machine's Mosquitto unless FLEETPIPE_TEST_MQTT_URL says
otherwise), gateways on it with a responder of their own, and SDK devices with fresh thing
names."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.engine import Engine

from devices.mqtt.broker import BrokerAddress
from devices.mqtt.gateway import MqttJobsGateway
from devices.mqtt.topics import Topics
from domain.gateway import EventSink
from tests.devices.mqtt.device import JobsDevice

MQTT_URL = os.environ.get("FLEETPIPE_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
ROOT = "$aws/things"  # the SDK's jobs client speaks under this root only


@pytest.fixture
def broker() -> BrokerAddress:
    address = BrokerAddress.parse(MQTT_URL)
    try:
        socket.create_connection((address.host, address.port), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"no MQTT broker at {address} ({exc}); start Mosquitto or set "
                    "FLEETPIPE_TEST_MQTT_URL")
    return address


def new_thing(label: str = "thing") -> str:
    return f"fp-test-{label}-{uuid.uuid4().hex[:10]}"


GatewayFactory = Callable[..., Awaitable[MqttJobsGateway]]


@pytest.fixture
async def make_gateway(broker: BrokerAddress) -> AsyncIterator[GatewayFactory]:
    """Started gateways; each test's share one responder name of their own."""
    started: list[MqttJobsGateway] = []
    responder = f"test-{uuid.uuid4().hex[:10]}"

    async def make(engine: Engine, sink: EventSink, **options: object) -> MqttJobsGateway:
        options.setdefault("responder_name", responder)
        gateway = MqttJobsGateway(engine, sink, options.pop("broker", broker),  # type: ignore[arg-type]
                                  Topics(ROOT), **options)  # type: ignore[arg-type]
        await gateway.start()
        started.append(gateway)
        return gateway

    yield make
    for gateway in reversed(started):
        await gateway.stop()


@pytest.fixture
async def make_device(broker: BrokerAddress) -> AsyncIterator[Callable[..., Awaitable[JobsDevice]]]:
    made: list[JobsDevice] = []

    async def make(thing: str, address: BrokerAddress | None = None) -> JobsDevice:
        where = address or broker
        device = JobsDevice(thing, where.host, where.port)
        await device.connect()
        made.append(device)
        return device

    yield make
    for device in made:
        await device.disconnect()
