"""Run inputs over HTTP against the real stack (API, worker, simulated fleet, Temporal dev
server, SQLite and PostgreSQL): plain inputs fill the args, a sensitive one reaches the device
and nothing else (store, API answers, logs, raw Temporal history), and the codec endpoint shows
it to a caller with an API key."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy
from google.protobuf import json_format
from sqlalchemy.engine import Engine
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client

from devices.simulated import SimulatedFleet, args_digest
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from tests.api.conftest import Api, api_for, settings_for
from tests.api.test_envelope_auth import assert_error
from tests.api.test_runs_e2e import devices, until
from tests.conftest import TEST_CODEC_KEYS
from worker import running_worker
from workflows.codec import (
    ENCODING,
    SENSITIVE_MARK,
    SensitivePayloadCodec,
    new_key_entry,
    parse_keyring,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

UI = "http://127.0.0.1:8233"
ARGS = {"package_name": "com.example.app", "app_version": "{{ inputs.app_version }}",
        "auth": "Bearer {{ inputs.token }}", "channel": {"name": "{{ inputs.channel }}"}}


@dataclass
class Live:
    api: Api
    fleet: SimulatedFleet
    client: Client


@pytest.fixture
async def live(engine: Engine, temporal_client: Client, task_queue: str,
               every_line: io.StringIO) -> AsyncIterator[Live]:
    settings = settings_for(task_queue=task_queue, codec_keys=TEST_CODEC_KEYS)
    async with running_worker(temporal_client, engine, task_queue=task_queue) as running:
        async with api_for(engine, temporal_client=temporal_client, settings=settings) as api:
            assert isinstance(running.gateway, SimulatedFleet)
            yield Live(api, running.gateway, temporal_client)


async def _pipeline(api: Api, args: dict[str, Any] = ARGS, count: int = 2) -> str:
    ids = await devices(api, count)
    pipeline = await api.ok("POST", "/pipelines", {"name": f"inputs-{uuid.uuid4().hex[:6]}",
                                                   "stages": [{"name": "only", "device_ids": ids,
                                                               "operations": [{
                                                                   "operation_type": "INSTALL",
                                                                   "args": args}]}]}, 201)
    return str(pipeline["id"])


def _every_row(engine: Engine) -> str:
    """Every row of every table in the store (the simulated fleet's and gateways' too)."""
    texts = []
    with engine.connect() as connection:
        for table in sqlalchemy.inspect(connection).get_table_names():
            rows = connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"')).all()
            texts.append(f"{table}: {[tuple(row) for row in rows]!r}")
    return "\n".join(texts)


async def _raw_histories(client: Client, workflow_ids: list[str]) -> list[bytes]:
    """Every run's history of these workflows, read by a client WITHOUT the codec."""
    raw = await Client.connect(client.service_client.config.target_host,
                               namespace=client.namespace)
    histories = []
    for workflow_id in workflow_ids:
        async for execution in raw.list_workflows(f"WorkflowId = '{workflow_id}'"):
            history = await raw.get_workflow_handle(
                workflow_id, run_id=execution.run_id).fetch_history()
            histories.append(History(events=history.events).SerializeToString())
    assert len(histories) >= len(workflow_ids)
    return histories


async def test_a_sensitive_input_reaches_the_device_and_nothing_else(
        live: Live, engine: Engine, every_line: io.StringIO):
    api, secret = live.api, f"s3cr3t-{uuid.uuid4().hex}"
    pipeline_id = await _pipeline(api)
    answers: list[str] = []
    created = await api.post(f"/pipelines/{pipeline_id}/runs", {
        "input_values": {"app_version": "2.0.1", "channel": "beta"},
        "sensitive_input_values": {"token": secret}})
    assert created.status_code == 200, created.text
    answers.append(created.text)
    run = created.json()["content"]
    assert run["input_values"] == {"app_version": "2.0.1", "channel": "beta"}
    assert run["sensitive_input_aliases"] == {"token": "{{ inputs.token }}"}
    one = f"/pipelines/{pipeline_id}/runs/{run['id']}"
    await until(api, one, lambda r: r["status"] == "success", timeout=60)

    stage_runs = (await api.ok("GET", f"/runs/{run['id']}/stageruns"))["results"]
    stage_run_id = stage_runs[0]["id"]
    operations = (await api.ok("GET", f"/stageruns/{stage_run_id}/operations"))["results"]
    # The plain inputs are in the args; the sensitive one keeps its reference.
    assert operations[0]["args"] == {
        "package_name": "com.example.app", "app_version": "2.0.1",
        "auth": "Bearer {{ inputs.token }}", "channel": {"name": "beta"}}
    targets = (await api.ok("GET", f"/stageruns/{stage_run_id}/targetruns"))["results"]
    assert len(targets) == 2
    for path in [one, f"/runs/{run['id']}/stageruns", f"/stageruns/{stage_run_id}/operations",
                 f"/stageruns/{stage_run_id}/targetruns", f"/pipelines/{pipeline_id}/runs",
                 "/runs"]:
        answers.append((await api.get(path)).text)
    sent = {"package_name": "com.example.app", "app_version": "2.0.1",
            "auth": f"Bearer {secret}", "channel": {"name": "beta"}}
    for target in targets:
        command = await api.get(f"/stageruns/{stage_run_id}/targetruns/{target['id']}/command")
        answers.append(command.text)
        content = command.json()["content"]
        assert content["args"]["auth"] == "Bearer {{ inputs.token }}"  # the stored command
        # ... while the device got the value (the simulated fleet keeps a digest of it).
        assert live.fleet.received_digests[str(content["id"])] == args_digest(sent)

    for answer in answers:
        assert secret not in answer
    assert secret not in _every_row(engine)
    logs = every_line.getvalue()
    assert run["id"] in logs  # the worker's and the API's lines were captured
    assert secret not in logs

    workflow_ids = ([pipeline_run_workflow_id(run["id"]), stage_run_workflow_id(stage_run_id)]
                    + [target_run_workflow_id(t["id"]) for t in targets])
    histories = await _raw_histories(live.client, workflow_ids)
    for history in histories:
        assert secret.encode() not in history
    assert all(ENCODING in history for history in histories)  # each carried it, encrypted

    # The codec endpoint shows the pipeline run's input to a caller with a key.
    raw = await Client.connect(live.client.service_client.config.target_host,
                               namespace=live.client.namespace)
    started = [event async for event in raw.get_workflow_handle(
        pipeline_run_workflow_id(run["id"])).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED][0]
    body = json_format.MessageToDict(
        Payloads(payloads=started.workflow_execution_started_event_attributes.input.payloads))
    decoded = await api.http.post("/codec/decode", json=body,
                                  headers={"X-Namespace": live.client.namespace})
    assert decoded.status_code == 200, decoded.text
    [payload] = decoded.json()["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert secret in base64.b64decode(payload["data"]).decode()
    async with api.make_client(token=None) as anonymous:
        refused = await anonymous.post("/codec/decode", json=body)
    assert_error(refused, 401)
    assert secret not in refused.text


async def test_inputs_that_cannot_be_applied_are_refused_and_nothing_is_made(
        sqlite_engine: Engine, temporal_client: Client, task_queue: str):
    settings = settings_for(task_queue=task_queue, codec_keys=TEST_CODEC_KEYS)
    async with api_for(sqlite_engine, temporal_client=temporal_client,
                       settings=settings) as api:
        pipeline_id = await _pipeline(api, count=1)
        runs = f"/pipelines/{pipeline_id}/runs"
        unknown = await api.post(runs, {"input_values": {"app_version": "2", "channel": "x"}})
        assert_error(unknown, 400)
        message = unknown.json()["message"]
        assert "unknown input 'token'" in message and "operation 1 (INSTALL)" in message
        assert "args.auth" in message
        both = await api.post(runs, {"input_values": {"app_version": "2", "token": "a",
                                                      "channel": "x"},
                                     "sensitive_input_values": {"token": "hidden-1"}})
        assert_error(both, 400)
        assert "both a plain and a sensitive" in both.json()["message"]
        assert "hidden-1" not in both.text
        not_text = await api.post(runs, {"sensitive_input_values": {"token": 12345678}})
        assert_error(not_text, 400)
        assert "12345678" not in not_text.text
        bad_name = await api.post(runs, {"input_values": {"not a name": 1}})
        assert_error(bad_name, 400)
        assert (await api.ok("GET", runs))["count"] == 0  # nothing half-made
        # ... and the run counter did not move: the first run made is number 1.
        first = await api.post(runs, {"input_values": {"app_version": "2", "token": "t",
                                                       "channel": "x"}})
        assert first.status_code == 200, first.text
        assert first.json()["content"]["run_number"] == 1
        # No worker polls this task queue: the run's workflow goes away with the test.
        await temporal_client.get_workflow_handle(
            pipeline_run_workflow_id(first.json()["content"]["id"])).terminate("test over")


async def test_sensitive_inputs_without_codec_keys_are_refused(sqlite_engine: Engine,
                                                               temporal_client: Client):
    async with api_for(sqlite_engine, temporal_client=temporal_client,
                       settings=settings_for()) as api:
        pipeline_id = await _pipeline(api, count=1)
        refused = await api.post(f"/pipelines/{pipeline_id}/runs", {
            "input_values": {"app_version": "2", "channel": "x"},
            "sensitive_input_values": {"token": "hidden-2"}})
        assert_error(refused, 400)
        assert "FLEETPIPE_CODEC_KEYS" in refused.json()["message"]
        assert "hidden-2" not in refused.text
        assert (await api.ok("GET", f"/pipelines/{pipeline_id}/runs"))["count"] == 0
        # The codec endpoint says the same, clearly.
        codec = await api.http.post("/codec/decode", json={"payloads": []})
        assert_error(codec, 503)
        assert "FLEETPIPE_CODEC_KEYS" in codec.json()["message"]


async def test_sensitive_inputs_are_refused_with_a_gateway_that_stores_args(
        sqlite_engine: Engine, temporal_client: Client):
    settings = settings_for(codec_keys=TEST_CODEC_KEYS, gateway="mqtt")
    async with api_for(sqlite_engine, temporal_client=temporal_client,
                       settings=settings) as api:
        pipeline_id = await _pipeline(api, count=1)
        refused = await api.post(f"/pipelines/{pipeline_id}/runs", {
            "input_values": {"app_version": "2", "channel": "x"},
            "sensitive_input_values": {"token": "hidden-3"}})
        assert_error(refused, 400)
        assert "mqtt gateway" in refused.json()["message"]


async def test_the_codec_endpoint_allows_only_the_web_uis_origin(sqlite_engine: Engine):
    settings = settings_for(codec_keys=TEST_CODEC_KEYS)
    async with api_for(sqlite_engine, settings=settings) as api:
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
        ok = await api.http.options("/codec/decode", headers={"Origin": UI, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == UI
        allowed = {h.strip().lower()
                   for h in ok.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-namespace"} <= allowed
        elsewhere = await api.http.options("/codec/decode", headers={
            "Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in elsewhere.headers
        other_path = await api.http.options("/api/pipelines/v0/runs",
                                            headers={"Origin": UI, **preflight})
        assert "access-control-allow-origin" not in other_path.headers
        # A real call from the UI's origin carries its CORS header; a plain payload comes back.
        plain = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain")
                                            .decode()}, "data": base64.b64encode(b"1").decode()}]}
        decoded = await api.http.post("/codec/decode", json=plain, headers={"Origin": UI})
        assert decoded.status_code == 200 and decoded.json() == plain
        assert decoded.headers["access-control-allow-origin"] == UI
        wrong_namespace = await api.http.post("/codec/decode", json=plain,
                                              headers={"X-Namespace": "elsewhere"})
        assert_error(wrong_namespace, 400)
        malformed = await api.http.post("/codec/encode", json={"payloads": "nope"})
        assert_error(malformed, 400)


async def test_the_codec_endpoint_decodes_after_a_rotation_and_names_a_missing_key(
        sqlite_engine: Engine):
    old, new = new_key_entry("kid1"), new_key_entry("kid2")
    [sealed] = await SensitivePayloadCodec(parse_keyring(old)).encode([Payload(
        metadata={"encoding": b"json/plain", SENSITIVE_MARK: b"1"}, data=b'"rotated"')])
    body = json_format.MessageToDict(Payloads(payloads=[sealed]))
    async with api_for(sqlite_engine, settings=settings_for(codec_keys=f"{new},{old}")) as api:
        decoded = await api.http.post("/codec/decode", json=body)
        assert decoded.status_code == 200, decoded.text
        assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == b'"rotated"'
        encoded = await api.http.post("/codec/encode", json=decoded.json())
        [again] = encoded.json()["payloads"]
        assert base64.b64decode(again["metadata"]["encryption-key-id"]) == b"kid2"
    async with api_for(sqlite_engine, enterprise="other",
                       settings=settings_for(codec_keys=new)) as api:
        refused = await api.http.post("/codec/decode", json=body)
        assert_error(refused, 400, "'kid1'")
