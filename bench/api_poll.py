"""The operator's poll, alone: `GET /stageruns/{id}/targetruns?status=running&limit=100`.

    .venv/bin/python bench/api_poll.py [--targets 10000] [--requests 300] [--read-rounds 5]

bench/fanout.py measures this poll's p99 while a 10,000-device stage runs; there the worker and
the Temporal server keep both cores busy, so the poll's own cost is hard to see. This bench
seeds a store with one stage run of N target runs (100 of them `running`), starts the real API
(`uvicorn api.app:app`) as its own process, and measures, idle and with both cores kept busy by
two spinning processes (the stand-in for worker + server):

- latency p50/p99 of the poll, and the API process's CPU per request (from /proc);
- the same for a floor in the same run: the same URL without a token (401), which pays the
  HTTP, routing and envelope work but no authentication or query;
- the operator's other reads during a large run (run lists with orderings, the stage runs, a
  page of 1,000 target runs in each ordering and filter, 1,000 devices, the pipeline): how many
  answer within the 2 s bar, and the slowest. (Tests assert no wall time: this is where the
  2-second bar for reads is measured.)

The last stdout line: `poll_cpu_ms=… floor_cpu_ms=… ratio=… idle_p99_ms=… busy_p99_ms=…
idle_reads_within_2s=N/M busy_reads_within_2s=N/M busy_slowest_read_ms=…`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bench.fanout import Processes, child_env, cpu_seconds, free_port, percentile, seed_store  # noqa: E402
from store.db import make_engine, transaction  # noqa: E402
from store.definitions.tenants import enterprise_for_key  # noqa: E402
from store.runs.creation import create_pipeline_run, prepare_stage_runs  # noqa: E402
from store.runs.tables import TargetRun  # noqa: E402
from store.runs.targets import materialize_targets  # noqa: E402


def seed_stage_run(db_url: str, n: int, running: int) -> tuple[str, str, str, str]:
    """(api key, stage run id, pipeline run id, pipeline id) of a materialized stage run with
    `running` target runs running."""
    key, pipeline_id, _ = seed_store(db_url, n)
    engine = make_engine(db_url)
    enterprise_id = enterprise_for_key(engine, key)
    assert enterprise_id is not None
    run = create_pipeline_run(engine, enterprise_id, UUID(pipeline_id))
    (stage,) = prepare_stage_runs(engine, run.id)
    stage_run_id = UUID(str(stage.stage_run_id))
    materialize_targets(engine, stage_run_id)
    with transaction(engine) as session:
        ids = session.exec(select(TargetRun.id).where(TargetRun.stage_run_id == stage_run_id)
                           .order_by(col(TargetRun.device_seq)).limit(running)).all()
        session.execute(update(TargetRun).where(col(TargetRun.id).in_(ids))
                        .values(status="running", command_status="inprogress"))
    engine.dispose()
    return key, str(stage_run_id), str(run.id), pipeline_id


def spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def measure(client: httpx.Client, url: str, headers: dict[str, str], pid: int, count: int,
            expect: int) -> tuple[list[float], float]:
    """(latencies in ms, API CPU ms per request) of `count` requests, one every 20 ms."""
    latencies = []
    cpu_before = cpu_seconds(pid)
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expect, response.text[:200]
        time.sleep(0.02)
    return latencies, (cpu_seconds(pid) - cpu_before) * 1000 / count


READ_BAR_MS = 2000.0


def read_paths(stage_run_id: str, run_id: str, pipeline_id: str) -> list[str]:
    """The operator's reads during a large run (what the API tests once timed)."""
    targets = f"/stageruns/{stage_run_id}/targetruns"
    return ["/runs", "/runs?ordering=-status&limit=1000", f"/runs/{run_id}/stageruns",
            f"{targets}?limit=1000", f"{targets}?limit=1000&ordering=-status",
            f"{targets}?status=running&limit=1000", "/devices?limit=1000",
            f"/pipelines/{pipeline_id}"]


def measure_reads(client: httpx.Client, base: str, headers: dict[str, str], paths: list[str],
                  rounds: int) -> list[float]:
    """Latencies in ms of `rounds` passes over the reads."""
    latencies = []
    for _ in range(rounds):
        for path in paths:
            started = time.perf_counter()
            response = client.get(base + path, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text[:200]
    return latencies


def within_bar(latencies: list[float]) -> str:
    return f"{sum(ms <= READ_BAR_MS for ms in latencies)}/{len(latencies)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--read-rounds", type=int, default=5,
                        help="passes over the operator's reads, idle and busy")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-api-poll-"))
    db_url = f"sqlite:///{work / 'store.db'}"
    key, stage_run_id, run_id, pipeline_id = seed_stage_run(db_url, args.targets, running=100)
    reads = read_paths(stage_run_id, run_id, pipeline_id)
    port = free_port()
    procs = Processes()
    try:
        api = procs.start("api", [sys.executable, "-m", "uvicorn", "api.app:app", "--port",
                                  str(port), "--log-level", "warning"], work / "api.log",
                          env=child_env({"FLEETPIPE_DATABASE_URL": db_url}))
        base = f"http://127.0.0.1:{port}/api/pipelines/v0"
        url = f"{base}/stageruns/{stage_run_id}/targetruns?status=running&limit=100"
        auth = {"Authorization": f"Token {key}"}
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get(url, headers=auth).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"API did not come up: see {work / 'api.log'}")
                time.sleep(0.2)
            measure(client, url, auth, api.pid, 50, 200)  # warm up
            figures = {}
            for load in ("idle", "busy"):
                spinners = []
                if load == "busy":
                    stop_at = time.monotonic() + 600
                    spinners = [multiprocessing.Process(target=spin, args=(stop_at,))
                                for _ in range(os.cpu_count() or 2)]
                    for s in spinners:
                        s.start()
                try:
                    poll, poll_cpu = measure(client, url, auth, api.pid, args.requests, 200)
                    floor, floor_cpu = measure(client, url, {}, api.pid, args.requests, 401)
                    read_ms = measure_reads(client, base, auth, reads, args.read_rounds)
                finally:
                    for s in spinners:
                        s.kill()
                figures[load] = (poll, poll_cpu, floor, floor_cpu, read_ms)
                print(f"{load}: poll p50={percentile(poll, 50):.1f} p99={percentile(poll, 99):.1f}"
                      f" ms cpu={poll_cpu:.2f} ms/req | floor (401) p50="
                      f"{percentile(floor, 50):.1f} p99={percentile(floor, 99):.1f} ms "
                      f"cpu={floor_cpu:.2f} ms/req | reads within 2 s: {within_bar(read_ms)}, "
                      f"slowest {max(read_ms):.0f} ms, p99 {percentile(read_ms, 99):.0f} ms",
                      file=sys.stderr)
    finally:
        procs.stop_all()
    poll, poll_cpu, floor, floor_cpu, idle_reads = figures["idle"]
    busy_reads = figures["busy"][4]
    print(f"poll_cpu_ms={poll_cpu:.2f} floor_cpu_ms={floor_cpu:.2f} "
          f"ratio={poll_cpu / floor_cpu:.2f} idle_p99_ms={percentile(poll, 99):.1f} "
          f"busy_p99_ms={percentile(figures['busy'][0], 99):.1f} "
          f"idle_reads_within_2s={within_bar(idle_reads)} "
          f"busy_reads_within_2s={within_bar(busy_reads)} "
          f"busy_slowest_read_ms={max(busy_reads):.0f}")


if __name__ == "__main__":
    main()
