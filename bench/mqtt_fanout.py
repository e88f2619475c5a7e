"""Fan-out through the real broker: one stage of N AWS IoT Jobs devices on the MQTT gateway,
against the simulated gateway in the same run.

    .venv/bin/python bench/mqtt_fanout.py --targets 1000

On one Temporal dev server it starts itself (as bench/fanout.py does, whose helpers it uses):

(m) mqtt: the product run of bench/fanout.py's (b) (a fresh store, N devices `dev-000000`...,
    one INSTALL, the real worker and API as processes, the run started over HTTP) with the
    worker on FLEETPIPE_GATEWAY=mqtt against the broker (`--broker`, Mosquitto at
    127.0.0.1:1883 by default) under a topic root of its own (`bench-<random>/things`), so it
    never meets other users of a shared broker. The devices are `bench/mqtt_fleet.py`, a
    process of its own: N things over `--connections` connections, each answering its job
    with start-next and update SUCCEEDED (after `--latency-ms`), plus one connection that
    counts every publication under the root (the gateway's and the devices').
(s) simulated: the same product run on a fresh store with the simulated gateway.

mqtt_tps = N / (POST run -> the pipeline run returned success, all N target runs success);
ratio = mqtt_tps / simulated_tps. Broker messages per target: publications into the broker
under the root (devices' requests + the gateway's answers and notifications) and deliveries
out of it (to the devices, and the requests to the gateway's responder), over N.

Progress goes to stderr; the last stdout line is the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.databases import describe, fresh_store  # noqa: E402
from bench.fanout import (  # noqa: E402
    Processes,
    Product,
    child_env,
    connect,
    cpu_seconds,
    free_port,
    log,
    run_bench,
    run_product,
    source_version,
    stop_store_users,
    temporal_argv,
    wait_for_log,
)


async def product_run(args: argparse.Namespace, procs: Processes, work: Path, address: str,
                      label: str, extra_env: dict[str, str]) -> Product:
    client = await connect(address, time.monotonic() + 60)
    run_work = work / label
    run_work.mkdir()
    with fresh_store(args.database, run_work) as db_url:
        try:
            return await run_product(client, procs, run_work, address, args.targets,
                                     args.timeout or max(300.0, args.targets / 4), args.window,
                                     False, db_url, extra_env={
                                         # not the default port: another bench may hold it
                                         "FLEETPIPE_WORKER_METRICS_PORT": str(free_port()),
                                         **extra_env})
        finally:  # the store's users stop before a PostgreSQL schema is dropped
            stop_store_users(procs)


def fleet_argv(args: argparse.Namespace, root: str, stats: Path) -> list[str]:
    return [sys.executable, "-m", "bench.mqtt_fleet", "--broker", args.broker,
            "--topic-root", root, "--prefix", "dev-", "--width", "6",
            "--count", str(args.targets), "--connections", str(args.connections),
            "--latency-ms", str(args.latency_ms), "--observe", "--stats", str(stats)]


async def settled_stats(stats: Path, n: int, timeout: float = 30.0) -> dict[str, Any]:
    """The fleet's counts once every job is done and nothing moved for 2 s (the last
    notifications arrive after the run ended)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        now = json.loads(stats.read_text())
        if (now["succeeded"] >= n and last
                and now["observed_total"] == last["observed_total"]
                and now["received_total"] == last["received_total"]):
            return now
        last = now
        await asyncio.sleep(2.0)
    return last


async def bench(args: argparse.Namespace, procs: Processes, work: Path) -> dict[str, Any]:
    n = args.targets
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs.start("temporal", temporal_argv(work / "temporal.db", port, free_port(), free_port()),
                work / "temporal.log")
    await connect(address, time.monotonic() + 60)
    figures: dict[str, Any] = {"targets": n, "window": args.window,
                               "database": describe(args.database),
                               "connections": args.connections,
                               "latency_ms": args.latency_ms, **source_version()}
    root = f"bench-{uuid.uuid4().hex[:12]}/things"
    stats = work / "fleet.json"
    procs.start("fleet", fleet_argv(args, root, stats), work / "fleet.log", env=child_env({}))
    await wait_for_log(procs, "fleet", "fleet ready", 60)
    log(f"(m) fleet of {n} things up under {root}/")
    fleet_pid = procs.procs["fleet"].pid
    fleet_cpu = cpu_seconds(fleet_pid)
    mqtt = await product_run(args, procs, work, address, "mqtt", {
        "FLEETPIPE_GATEWAY": "mqtt", "FLEETPIPE_MQTT_URL": args.broker,
        "FLEETPIPE_MQTT_TOPIC_ROOT": root})
    procs.check_alive("fleet")
    fleet_cpu = cpu_seconds(fleet_pid) - fleet_cpu  # the devices' cost, in "others" above
    await settled_stats(stats, n)
    procs.stop("fleet")
    counts = json.loads(stats.read_text())
    log(f"(m) mqtt: {n} targets in {mqtt.phase.wall:.1f} s = {mqtt.phase.tps:.1f}/s; fleet "
        f"sent {counts['sent']}, received {counts['received']}, rejected {counts['rejected']}, "
        f"retries {counts['retries']}; observed under the root {counts['observed']}")
    if counts["succeeded"] != n:
        raise RuntimeError(f"the fleet reported {counts['succeeded']} jobs SUCCEEDED of {n}")
    sim = await product_run(args, procs, work, address, "simulated", {})
    log(f"(s) simulated: {n} targets in {sim.phase.wall:.1f} s = {sim.phase.tps:.1f}/s")
    published = counts["observed_total"]
    delivered = counts["received_total"] + counts["sent_total"]
    figures.update({
        "mqtt_tps": mqtt.phase.tps, "mqtt_targets_per_min": 60 * mqtt.phase.tps,
        "mqtt_wall_s": mqtt.phase.wall, "mqtt_cpu_s": mqtt.phase.cpu,
        "simulated_tps": sim.phase.tps, "simulated_targets_per_min": 60 * sim.phase.tps,
        "simulated_wall_s": sim.phase.wall, "simulated_cpu_s": sim.phase.cpu,
        "ratio": mqtt.phase.tps / sim.phase.tps,
        "broker_messages_per_target": (published + delivered) / n,
        "broker_publications_per_target": published / n,
        "broker_deliveries_per_target": delivered / n,
        "device_sent_per_target": counts["sent_total"] / n,
        "device_received_per_target": counts["received_total"] / n,
        "gateway_published_per_target": (published - counts["sent_total"]) / n,
        "fleet": counts, "fleet_cpu_s": fleet_cpu,
        "fleet_cpu_ms_per_target": 1000 * fleet_cpu / n,
        "mqtt_worker_rss_mb": mqtt.rss_peak_mb, "simulated_worker_rss_mb": sim.rss_peak_mb,
        "mqtt_api_p99_ms": mqtt.api_p99_ms, "simulated_api_p99_ms": sim.api_p99_ms,
    })
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=1000, help="N, the devices")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                        help="FLEETPIPE_MQTT_URL for the worker and the fleet")
    parser.add_argument("--connections", type=int, default=4,
                        help="the fleet's MQTT connections (default 4)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="how long each device works before SUCCEEDED (default 0)")
    parser.add_argument("--window", type=int, default=200, help="FLEETPIPE_STAGE_WINDOW")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="bound for each run in seconds (default max(300, N/4))")
    parser.add_argument("--database", default="",
                        help="the store: a fresh SQLite file by default, or a PostgreSQL URL "
                        "(a fresh schema per run, dropped afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, dbs)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.targets < 1:
        parser.error("--targets must be at least 1")

    def body(procs: Processes, work: Path) -> int:
        figures = asyncio.run(bench(args, procs, work))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(json.dumps({k: v for k, v in figures.items()
                          if not isinstance(v, (dict, list))}, default=str))
        print(f"gateway=mqtt targets={figures['targets']} "
              f"connections={figures['connections']} "
              f"targets_per_min={figures['mqtt_targets_per_min']:.0f} "
              f"simulated_targets_per_min={figures['simulated_targets_per_min']:.0f} "
              f"ratio={figures['ratio']:.2f} "
              f"broker_messages_per_target={figures['broker_messages_per_target']:.1f} "
              f"(publications {figures['broker_publications_per_target']:.1f}, deliveries "
              f"{figures['broker_deliveries_per_target']:.1f}) "
              f"device_messages_per_target={figures['device_sent_per_target']:.1f} sent + "
              f"{figures['device_received_per_target']:.1f} received", flush=True)
        return 0

    return run_bench("fleetpipe-mqtt-bench-", args.keep, body)


if __name__ == "__main__":
    sys.exit(main())
