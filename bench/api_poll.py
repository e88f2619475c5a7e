"""The operator's poll, alone: `GET /stageruns/{id}/targetruns?status=running&limit=100`.

    .venv/bin/python bench/api_poll.py [--targets 10000] [--requests 300]

bench/fanout.py measures this poll's p99 while a 10,000-device stage runs; there the worker and
the Temporal server keep both cores busy, so the poll's own cost is hard to see. This bench
seeds a store with one stage run of N target runs (100 of them `running`), starts the real API
(`uvicorn api.app:app`) as its own process, and measures, idle and with both cores kept busy by
two spinning processes (the stand-in for worker + server):

- latency p50/p99 of the poll, and the API process's CPU per request (from /proc);
- the same for a floor in the same run: the same URL without a token (401), which pays the
  HTTP, routing and envelope work but no authentication or query.

The last stdout line: `poll_cpu_ms=… floor_cpu_ms=… ratio=… idle_p99_ms=… busy_p99_ms=…`.
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


def seed_stage_run(db_url: str, n: int, running: int) -> tuple[str, str]:
    """(api key, stage run id) of a materialized stage run with `running` target runs running."""
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
    return key, str(stage_run_id)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-api-poll-"))
    db_url = f"sqlite:///{work / 'store.db'}"
    key, stage_run_id = seed_stage_run(db_url, args.targets, running=100)
    port = free_port()
    procs = Processes()
    try:
        api = procs.start("api", [sys.executable, "-m", "uvicorn", "api.app:app", "--port",
                                  str(port), "--log-level", "warning"], work / "api.log",
                          env=child_env({"FLEETPIPE_DATABASE_URL": db_url}))
        url = (f"http://127.0.0.1:{port}/api/pipelines/v0/stageruns/{stage_run_id}/targetruns"
               "?status=running&limit=100")
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
                finally:
                    for s in spinners:
                        s.kill()
                figures[load] = (poll, poll_cpu, floor, floor_cpu)
                print(f"{load}: poll p50={percentile(poll, 50):.1f} p99={percentile(poll, 99):.1f}"
                      f" ms cpu={poll_cpu:.2f} ms/req | floor (401) p50="
                      f"{percentile(floor, 50):.1f} p99={percentile(floor, 99):.1f} ms "
                      f"cpu={floor_cpu:.2f} ms/req", file=sys.stderr)
    finally:
        procs.stop_all()
    poll, poll_cpu, floor, floor_cpu = figures["idle"]
    print(f"poll_cpu_ms={poll_cpu:.2f} floor_cpu_ms={floor_cpu:.2f} "
          f"ratio={poll_cpu / floor_cpu:.2f} idle_p99_ms={percentile(poll, 99):.1f} "
          f"busy_p99_ms={percentile(figures['busy'][0], 99):.1f}")


if __name__ == "__main__":
    main()
