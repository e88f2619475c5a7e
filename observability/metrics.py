"""fleetpipe's Prometheus metrics: what each process counts, named and labelled once.

Labels are bounded: route templates (never raw paths), status words, gateway names and error
class names. No run, stage, target, command or device id is ever a label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# ---- the API ------------------------------------------------------------------------------------
API_REQUESTS = Counter(
    "fleetpipe_api_requests_total", "API requests answered, by route template and status code.",
    ["method", "route", "status"])
API_LATENCY = Histogram(
    "fleetpipe_api_request_duration_seconds", "Time to answer an API request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

# ---- target runs and their commands (worker; command events also where the API relays them) ----
TARGETS_STARTED = Counter(
    "fleetpipe_target_runs_started_total",
    "Target runs whose command this process sent to its gateway (first send of an attempt).",
    ["gateway"])
TARGETS_FINISHED = Counter(
    "fleetpipe_target_runs_finished_total",
    "Target runs this process recorded in a final status.", ["status", "gateway"])
COMMAND_LATENCY = Histogram(
    "fleetpipe_command_latency_seconds",
    "From a command's dispatch to its final status as its gateway reported it.",
    ["status", "gateway"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
             1800.0, 3600.0, 21600.0, 86400.0))
GATEWAY_ERRORS = Counter(
    "fleetpipe_gateway_errors_total",
    "Calls to a device gateway that raised, by operation (send, cancel) and error class.",
    ["gateway", "operation", "kind"])

# ---- sampled from the store at each scrape (the worker) ----------------------------------------
SAMPLE_UP = "fleetpipe_store_sample_up"
# The sample's keys (store.runs.gauges) -> (metric name, help).
SAMPLED: dict[str, tuple[str, str]] = {
    "target_runs_in_flight": (
        "fleetpipe_stage_window_occupancy",
        "Target runs in flight (started, not ended) across all open stage runs: the stage "
        "windows' occupancy, store-wide."),
    "stage_runs_running": ("fleetpipe_stage_runs_running",
                           "Stage runs open (started, not ended), store-wide."),
    "signals_owed": ("fleetpipe_signals_owed",
                     "Applied command events not yet signalled to their workflow (the outbox)."),
}


def record_gateway_error(gateway: str, operation: str, error: BaseException) -> None:
    GATEWAY_ERRORS.labels(gateway=gateway, operation=operation, kind=type(error).__name__).inc()


class StoreSample(Collector):
    """Gauges read from the store when Prometheus scrapes: every worker reports the same
    store-wide figures (take `max` across workers). A failed read shows as
    fleetpipe_store_sample_up 0 instead of failing the scrape."""

    def __init__(self, sample: Callable[[], Mapping[str, float]]) -> None:
        self._sample = sample

    def collect(self) -> Iterable[Metric]:
        try:
            values = self._sample()
        except Exception as err:
            log.warning("could not sample the store for metrics: %s", err)
            values = None
        up = GaugeMetricFamily(SAMPLE_UP, "1 if the last scrape could read the store's gauges.")
        up.add_metric([], 0.0 if values is None else 1.0)
        yield up
        for key, (name, text) in SAMPLED.items():
            if values is not None and key in values:
                yield GaugeMetricFamily(name, text, value=float(values[key]))


def exposition(*registries: CollectorRegistry) -> bytes:
    """The process's own metrics (the default registry) followed by each registry given."""
    return b"".join(generate_latest(registry) for registry in (REGISTRY, *registries))
