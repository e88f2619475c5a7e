"""FLEETPIPE_GATEWAY -> the device gateway the worker drives. Each gateway is one entry of
`CONFIGURERS`: it checks its own settings, refusing (GatewayRefused) with what to set, and
returns how to build the gateway. The worker configures first, before it connects anywhere,
so a misconfigured worker never starts, and never falls back to another gateway."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from devices.simulated import SimulatedFleet
from domain.gateway import DeviceGateway, EventSink
from settings import Settings


class GatewayRefused(RuntimeError):
    """The chosen gateway cannot run with these settings; the message says what to set."""


Build = Callable[[Engine, EventSink], DeviceGateway]
Configure = Callable[[Settings], Build]


def require(settings: Settings, gateway: str, *fields: str) -> None:
    """Refuse unless every named setting has a value, naming the ones missing."""
    missing = [f"FLEETPIPE_{name.upper()}" for name in fields if not getattr(settings, name)]
    if missing:
        raise GatewayRefused(f"the {gateway} gateway needs {', '.join(missing)}")


def _simulated(settings: Settings) -> Build:
    return lambda engine, sink: SimulatedFleet(engine, sink, seed=settings.sim_seed)


def _mqtt(settings: Settings) -> Build:
    from devices.mqtt.broker import BrokerAddress, BrokerAddressError
    from devices.mqtt.gateway import MqttJobsGateway
    from devices.mqtt.topics import TopicRootError, Topics

    require(settings, "mqtt", "mqtt_url", "mqtt_topic_root")
    try:
        broker = BrokerAddress.parse(settings.mqtt_url)
        topics = Topics(settings.mqtt_topic_root)
    except (BrokerAddressError, TopicRootError) as exc:
        raise GatewayRefused(str(exc)) from None
    return lambda engine, sink: MqttJobsGateway(engine, sink, broker, topics)


def _esper(settings: Settings) -> Build:
    from devices.esper.config import EsperConfig, EsperNotConfigured
    from devices.esper.gateway import EsperGateway

    try:
        config = EsperConfig.from_settings(settings)
    except EsperNotConfigured as exc:
        raise GatewayRefused(str(exc)) from None
    return lambda engine, sink: EsperGateway(engine, sink, config)


CONFIGURERS: dict[str, Configure] = {"simulated": _simulated, "mqtt": _mqtt, "esper": _esper}


def configure_gateway(settings: Settings) -> Build:
    """How to build the gateway FLEETPIPE_GATEWAY names; refuses a missing configuration."""
    configure = CONFIGURERS.get(settings.gateway)
    if configure is None:  # Settings admits only known names; an entry may still be missing
        raise GatewayRefused(f"FLEETPIPE_GATEWAY={settings.gateway!r} has no gateway; "
                             f"allowed: {', '.join(sorted(CONFIGURERS))}")
    return configure(settings)


def build_gateway(settings: Settings, engine: Engine, sink: EventSink) -> DeviceGateway:
    """The gateway FLEETPIPE_GATEWAY names, built (not started) with its settings."""
    return configure_gateway(settings)(engine, sink)
