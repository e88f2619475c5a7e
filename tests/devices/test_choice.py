"""FLEETPIPE_GATEWAY: which gateway a worker drives, and the refusals of one it cannot run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from devices.choice import GatewayRefused, build_gateway, configure_gateway
from devices.esper.gateway import EsperGateway
from devices.mqtt.gateway import MqttJobsGateway
from devices.simulated import SimulatedFleet
from settings import Settings, get_settings, settings_problem
from store.db import make_engine
from store.migrations import upgrade
from tests.devices.conftest import RecordingSink

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_gateways_are_refused_naming_the_allowed_values() -> None:
    for value in ("http", "esper-mdm", ""):
        with pytest.raises(ValidationError) as refused:
            Settings(gateway=value)  # type: ignore[arg-type]
        problem = settings_problem(refused.value)
        assert problem.startswith("FLEETPIPE_GATEWAY: ")
        assert "'simulated', 'esper' or 'mqtt'" in problem and repr(value) in problem


def test_each_gateway_is_built_from_its_settings(sqlite_engine) -> None:
    sink = RecordingSink()
    simulated = build_gateway(Settings(), sqlite_engine, sink)
    assert isinstance(simulated, SimulatedFleet) and simulated.name == "simulated"
    mqtt = build_gateway(Settings(gateway="mqtt", mqtt_url="mqtt://u:p%40ss@broker:1884",
                                  mqtt_topic_root="fleet/things"), sqlite_engine, sink)
    assert isinstance(mqtt, MqttJobsGateway) and mqtt.name == "mqtt"
    broker = mqtt._broker  # noqa: SLF001
    assert (broker.host, broker.port, broker.username, broker.password, broker.tls) == (
        "broker", 1884, "u", "p@ss", False)
    assert "p@ss" not in str(broker)  # the address goes into logs; the password does not
    assert mqtt._topics.request_filters()[0] == "fleet/things/+/jobs/get"  # noqa: SLF001
    esper = build_gateway(Settings(gateway="esper", esper_url="https://t-api.esper.cloud/api/",
                                   esper_api_key="k", esper_enterprise_id="e"),
                          sqlite_engine, sink)
    assert isinstance(esper, EsperGateway) and esper.name == "esper"


def test_a_gateway_it_cannot_run_is_refused_naming_the_setting() -> None:
    with pytest.raises(GatewayRefused, match="FLEETPIPE_ESPER_URL, FLEETPIPE_ESPER_API_KEY, "
                       "FLEETPIPE_ESPER_ENTERPRISE_ID"):
        configure_gateway(Settings(gateway="esper"))
    with pytest.raises(GatewayRefused, match="FLEETPIPE_ESPER_MAX_REQUESTS_PER_SECOND"):
        configure_gateway(Settings(gateway="esper", esper_url="https://t-api.esper.cloud/api",
                                   esper_api_key="k", esper_enterprise_id="e",
                                   esper_max_requests_per_second=0))
    with pytest.raises(GatewayRefused, match="FLEETPIPE_MQTT_URL 'http://broker'"):
        configure_gateway(Settings(gateway="mqtt", mqtt_url="http://broker"))
    with pytest.raises(GatewayRefused, match="FLEETPIPE_MQTT_URL"):
        configure_gateway(Settings(gateway="mqtt", mqtt_url=""))
    with pytest.raises(GatewayRefused, match="FLEETPIPE_MQTT_TOPIC_ROOT"):
        configure_gateway(Settings(gateway="mqtt", mqtt_topic_root="things/+"))


def _worker(environ: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT,
                            env=dict(os.environ, **environ), stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("environ", "said"), [
    ({"FLEETPIPE_GATEWAY": "http"},
     "FLEETPIPE_GATEWAY: Input should be 'simulated', 'esper' or 'mqtt' (got 'http')"),
    ({"FLEETPIPE_GATEWAY": "esper", "FLEETPIPE_ESPER_URL": "https://t-api.esper.cloud/api"},
     "FLEETPIPE_GATEWAY=esper needs FLEETPIPE_ESPER_API_KEY, FLEETPIPE_ESPER_ENTERPRISE_ID"),
    ({"FLEETPIPE_GATEWAY": "mqtt", "FLEETPIPE_MQTT_URL": "tcp://x"}, "FLEETPIPE_MQTT_URL"),
])
def test_the_worker_refuses_to_start_in_one_line(environ, said, tmp_path) -> None:
    # Nothing listens at this Temporal address: the refusal comes before any connection.
    log = tmp_path / "worker.log"
    worker = _worker({**environ, "FLEETPIPE_TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
                      "FLEETPIPE_DATA_DIR": str(tmp_path)}, log)
    assert worker.wait(timeout=60) == 1
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetpipe worker: "), lines
    assert said in lines[0]


def test_the_cli_refuses_an_unknown_gateway_before_any_command(monkeypatch) -> None:
    monkeypatch.setenv("FLEETPIPE_GATEWAY", "http")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "current"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "FLEETPIPE_GATEWAY" in result.output and "'mqtt'" in result.output


def test_the_worker_drives_the_gateway_it_names_and_says_which(temporal_env, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    log = tmp_path / "worker.log"
    worker = _worker({"FLEETPIPE_GATEWAY": "mqtt", "FLEETPIPE_DATABASE_URL": url,
                      "FLEETPIPE_TASK_QUEUE": f"tq-{_free_port()}",
                      "FLEETPIPE_TEMPORAL_ADDRESS":
                          temporal_env.client.service_client.config.target_host}, log)
    try:
        deadline = time.monotonic() + 60
        while "through the mqtt gateway" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()


def test_a_broker_that_does_not_answer_is_refused_naming_the_setting(
        temporal_env, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    log = tmp_path / "worker.log"
    worker = _worker({"FLEETPIPE_GATEWAY": "mqtt", "FLEETPIPE_DATABASE_URL": url,
                      "FLEETPIPE_MQTT_URL": f"mqtt://127.0.0.1:{_free_port()}",
                      "FLEETPIPE_TEMPORAL_ADDRESS":
                          temporal_env.client.service_client.config.target_host}, log)
    assert worker.wait(timeout=90) == 1, log.read_text()
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith("fleetpipe worker: the MQTT broker at mqtt://127.0.0.1:")
    assert "FLEETPIPE_MQTT_URL" in last
