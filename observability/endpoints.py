"""The worker's HTTP port: /metrics (fleetpipe's metrics, then the Temporal SDK's, fetched
from the SDK's own loopback exporter, so one scrape target per worker has both), /healthz
(the process answers) and /readyz (every readiness check passes)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from observability.http_server import HttpEndpoints, Response
from observability.metrics import exposition
from observability.readiness import Check, check_readiness

SDK_UP = "fleetpipe_temporal_sdk_metrics_up"
_SDK_TIMEOUT_S = 2.0


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sdk_metrics_runtime(port: int) -> Runtime:
    """A Temporal runtime whose core SDK serves its metrics (Prometheus names: `_total`,
    `_seconds`) on 127.0.0.1:`port`; clients connected with it report there."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"127.0.0.1:{port}", counters_total_suffix=True, unit_suffix=True,
        durations_as_seconds=True)))


def _sdk_up(value: int) -> bytes:
    return (f"# HELP {SDK_UP} 1 if the Temporal SDK's metrics were read for this scrape.\n"
            f"# TYPE {SDK_UP} gauge\n{SDK_UP} {value}\n").encode()


async def _sdk_metrics(url: str | None) -> bytes:
    if url is None:
        return b""
    try:
        async with httpx.AsyncClient(timeout=_SDK_TIMEOUT_S) as http:
            response = await http.get(url)
            response.raise_for_status()
    except httpx.HTTPError:
        return _sdk_up(0)
    text = response.content
    return _sdk_up(1) + text + (b"" if text.endswith(b"\n") else b"\n")


def worker_endpoints(checks: Sequence[Check], registries: Sequence[CollectorRegistry] = (),
                     sdk_metrics_url: str | None = None) -> HttpEndpoints:
    async def metrics() -> Response:
        ours = await asyncio.to_thread(exposition, *registries)  # store samples block
        return Response(200, ours + await _sdk_metrics(sdk_metrics_url), CONTENT_TYPE_LATEST)

    async def healthz() -> Response:
        return Response(200, b'{"status": "alive"}', "application/json")

    async def readyz() -> Response:
        readiness = await check_readiness(checks)
        return Response(readiness.status_code, json.dumps(readiness.body()).encode(),
                        "application/json")

    return HttpEndpoints({"/metrics": metrics, "/healthz": healthz, "/readyz": readyz})
