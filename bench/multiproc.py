"""The multi-process shape, proven: two workers and two APIs on one Temporal server and one
PostgreSQL store, one worker SIGKILLed in the middle of a stage.

    .venv/bin/python bench/multiproc.py [--devices 2000] [--database postgresql://...]

It starts one `temporal server start-dev` of its own, a fresh PostgreSQL schema (dropped
afterwards) built by the migrations and seeded with one automatic stage of N simulated devices
(one INSTALL each; every device answers after `--latency-ms`, so commands are in flight on
the device side too when the worker dies), two `python worker.py` processes on the same task
queues and two `uvicorn api.app:app` processes on two ports. The run is started through API #1
and watched through API #2; once `--kill-at` of its target runs are terminal, worker #2 gets
SIGKILL (its process group: no clean shutdown). With `--restart-after S` (default 10) it is
started again S seconds later, as a supervisor would; `--restart-after -1` leaves it dead.

When the run is over it checks (bench/multiproc_checks.py): every target run terminal and
success, rows == devices x operations; one command per target-run attempt and one simulated
delivery (`sim_delivery`) per command, so no device got a second command; and API #1 and API #2
give the same run, stage runs (statuses, counts) and, paged through, the same target runs as
the store.

Progress goes to stderr; the last stdout line is the figures and PASS or FAIL (exit 1 on FAIL).
Every wait is bounded; every process it started is stopped on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.databases import fresh_store  # noqa: E402
from bench.fanout import (  # noqa: E402
    BASE,
    Processes,
    api_argv,
    child_env,
    connect,
    free_port,
    log,
    run_bench,
    seed_store,
    source_version,
    stop_store_users,
    temporal_argv,
    wait_for_api,
    wait_for_log,
)
from bench.multiproc_checks import api_view, problems, store_facts  # noqa: E402
from domain.ids import pipeline_run_workflow_id  # noqa: E402
from domain.statuses import TERMINAL, RunKind  # noqa: E402
from workflows.messages import PipelineRunResult  # noqa: E402

WORKERS = ("worker-1", "worker-2")
APIS = ("api-1", "api-2")
VICTIM = "worker-2"
TARGET_TERMINAL = TERMINAL[RunKind.TARGET]
DEFAULT_DATABASE = os.environ.get("FLEETPIPE_TEST_POSTGRES_URL",
                                  "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Outcome:
    run_id: str = ""
    wall_s: float = 0.0
    killed_at_s: float | None = None
    killed_at_terminal: int = 0
    in_flight_at_kill: int = 0
    restarted_at_s: float | None = None
    workflow_status: str = ""
    api_errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


class Stack:
    """The processes of the proof, and what starting each of them takes."""

    def __init__(self, procs: Processes, work: Path, env: dict[str, str]) -> None:
        self.procs, self.work, self.env = procs, work, env
        self.starts: dict[str, int] = {}

    def start_worker(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log_path = self.work / f"{name}.{self.starts[name]}.log"
        self.procs.start(name, [sys.executable, str(REPO / "worker.py")], log_path, env=self.env)

    def kill(self, name: str) -> None:
        """SIGKILL, no grace: in-flight workflow tasks, activities and device walks die."""
        proc = self.procs.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        log(f"SIGKILLed {name} (pid {proc.pid})")

    def alive_check(self) -> None:
        self.procs.check_alive("temporal", *WORKERS, *APIS)


async def watch_and_kill(http: httpx.AsyncClient, stack: Stack, api2: str,
                         headers: dict[str, str], stage_run_id: str, outcome: Outcome,
                         began: float, args: argparse.Namespace, done: asyncio.Event) -> None:
    """Poll the stage run through API #2 once a second; kill the victim at --kill-at, then
    restart it after --restart-after (if not negative)."""
    n = args.devices
    next_log = 0.0
    while not done.is_set():
        try:
            response = await http.get(f"{api2}/runs/{outcome.run_id}/stageruns/{stage_run_id}",
                                      headers=headers)
            if response.status_code != 200:
                outcome.api_errors[str(response.status_code)] = (
                    outcome.api_errors.get(str(response.status_code), 0) + 1)
            else:
                counts = response.json()["content"]["target_run_counts"]
                terminal = sum(v for s, v in counts.items() if s in TARGET_TERMINAL)
                now = time.monotonic() - began
                if now >= next_log:
                    next_log = now + 15
                    log(f"t={now:.0f}s: {terminal}/{n} terminal (API #2): "
                        + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
                if outcome.killed_at_s is None and terminal >= args.kill_at * n:
                    outcome.killed_at_s, outcome.killed_at_terminal = now, terminal
                    outcome.in_flight_at_kill = sum(
                        v for s, v in counts.items() if s not in TARGET_TERMINAL | {"pending"})
                    stack.kill(VICTIM)
        except httpx.HTTPError as err:
            outcome.api_errors[type(err).__name__] = (
                outcome.api_errors.get(type(err).__name__, 0) + 1)
        if (outcome.killed_at_s is not None and outcome.restarted_at_s is None
                and args.restart_after >= 0
                and time.monotonic() - began >= outcome.killed_at_s + args.restart_after):
            stack.start_worker(VICTIM)
            outcome.restarted_at_s = time.monotonic() - began
            log(f"restarted {VICTIM} at t={outcome.restarted_at_s:.0f}s")
        try:
            await asyncio.wait_for(done.wait(), 1.0)
        except TimeoutError:
            pass


async def prove(args: argparse.Namespace, procs: Processes, work: Path) -> Outcome:
    n = args.devices
    outcome = Outcome()
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs.start("temporal", temporal_argv(work / "temporal.db", port, free_port(), free_port()),
                work / "temporal.log")
    client = await connect(address, time.monotonic() + 60)
    log(f"Temporal dev server up at {address}")
    with fresh_store(args.database, work) as db_url:
        try:
            await run_stage(args, procs, work, client, address, db_url, outcome)
        finally:  # the store's users stop before its schema is dropped
            stop_store_users(procs)
        facts = await asyncio.to_thread(store_facts, db_url, outcome.run_id)
    outcome.problems = problems(n, 1, facts, outcome.figures.pop("views"))
    if outcome.workflow_status != "success":
        outcome.problems.insert(0, f"the pipeline-run workflow returned {outcome.workflow_status}")
    if outcome.api_errors:
        outcome.problems.append(f"API #2 errors while the run went on: {outcome.api_errors}")
    if outcome.killed_at_s is None:
        outcome.problems.append(f"{VICTIM} was never killed (the run ended first)")
    outcome.figures.update({
        "target_runs": facts.target_runs, "success": facts.statuses.get("success", 0),
        "commands": facts.commands, "sim_deliveries": facts.deliveries,
        "devices_commanded_twice": facts.devices_commanded_twice,
    })
    return outcome


async def run_stage(args: argparse.Namespace, procs: Processes, work: Path, client: Any,
                    address: str, db_url: str, outcome: Outcome) -> None:
    n = args.devices
    began_seed = time.monotonic()
    key, pipeline_id, _ = await asyncio.to_thread(
        seed_store, db_url, n, {"sim_latency_ms": str(args.latency_ms)})
    log(f"store seeded with {n} devices in {time.monotonic() - began_seed:.1f} s")
    env = child_env({
        "FLEETPIPE_TEMPORAL_ADDRESS": address, "FLEETPIPE_DATABASE_URL": db_url,
        "FLEETPIPE_DATA_DIR": str(work / "data"),
        "FLEETPIPE_TASK_QUEUE": f"bench-multiproc-{uuid.uuid4().hex[:8]}",
    })
    stack = Stack(procs, work, env)
    for name in WORKERS:
        stack.start_worker(name)
    ports = {name: free_port() for name in APIS}
    for name in APIS:
        procs.start(name, api_argv(ports[name]), work / f"{name}.log", env=env)
    urls = {name: f"http://127.0.0.1:{ports[name]}{BASE}" for name in APIS}
    headers = {"Authorization": f"Token {key}"}
    for name in WORKERS:
        await wait_for_log(procs, name, "worker polling task queue", 90)
    async with httpx.AsyncClient(timeout=30.0) as http:
        for name in APIS:
            await wait_for_api(http, procs, name, urls[name], headers, 90)
        log(f"2 workers and 2 APIs (ports {ports['api-1']}, {ports['api-2']}) up; starting "
            "the run through API #1")
        began = time.monotonic()
        response = await http.post(f"{urls['api-1']}/pipelines/{pipeline_id}/runs",
                                   headers=headers, json={})
        if response.status_code != 200:
            raise RuntimeError(f"POST run on API #1: {response.status_code} {response.text}")
        outcome.run_id = response.json()["content"]["id"]
        stage_run_id = await first_stage_run(http, urls["api-2"], headers, outcome.run_id)
        log(f"run {outcome.run_id}, stage run {stage_run_id} (seen through API #2)")
        done = asyncio.Event()
        watcher = asyncio.create_task(watch_and_kill(
            http, stack, urls["api-2"], headers, stage_run_id, outcome, began, args, done))
        handle = client.get_workflow_handle(pipeline_run_workflow_id(outcome.run_id),
                                            result_type=PipelineRunResult)
        result_task = asyncio.ensure_future(handle.result())
        deadline = time.monotonic() + args.timeout
        try:
            while not result_task.done():
                await asyncio.wait({result_task, watcher}, timeout=5,
                                   return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    watcher.result()  # raises what stopped it
                stack.alive_check()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the run did not end within {args.timeout:.0f} s")
            result: PipelineRunResult = result_task.result()
        finally:
            result_task.cancel()
            done.set()
            await asyncio.gather(watcher, return_exceptions=True)
        outcome.wall_s = time.monotonic() - began
        outcome.workflow_status = result.status
        log(f"the pipeline-run workflow returned {result.status} after {outcome.wall_s:.1f} s; "
            "reading it back through both APIs")
        outcome.figures["views"] = {name: await api_view(http, urls[name], headers, pipeline_id,
                                                         outcome.run_id) for name in APIS}
        pages = {name: v.pages for name, v in outcome.figures["views"].items()}
        log(f"paged the target runs on both APIs: {pages} pages")


async def first_stage_run(http: httpx.AsyncClient, api_url: str, headers: dict[str, str],
                          run_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = (await http.get(f"{api_url}/runs/{run_id}/stageruns", headers=headers)).json()
        results = (got.get("content") or {}).get("results") or []
        if results:
            return str(results[0]["id"])
        await asyncio.sleep(0.2)
    raise TimeoutError("no stage run appeared within 60 s")


def final_line(args: argparse.Namespace, out: Outcome) -> str:
    fig = out.figures
    killed = "no" if out.killed_at_s is None else f"{VICTIM}@{out.killed_at_s:.0f}s"
    restart = ("restarted=no" if out.restarted_at_s is None or out.killed_at_s is None
               else f"restarted_after_s={out.restarted_at_s - out.killed_at_s:.0f}")
    return (f"devices={args.devices} workers=2 apis=2 database=postgresql "
            f"latency_ms={args.latency_ms} killed={killed} "
            f"({out.killed_at_terminal} terminal, {out.in_flight_at_kill} in flight) {restart} "
            f"wall_s={out.wall_s:.1f} tps={args.devices / out.wall_s if out.wall_s else 0:.1f} "
            f"target_runs={fig.get('target_runs')} success={fig.get('success')} "
            f"commands={fig.get('commands')} sim_deliveries={fig.get('sim_deliveries')} "
            f"devices_commanded_twice={fig.get('devices_commanded_twice')} "
            f"problems={len(out.problems)} {'PASS' if not out.problems else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="PostgreSQL URL; the bench works in a fresh schema of its own")
    parser.add_argument("--latency-ms", type=int, default=1000,
                        help="each simulated device's answer time (sim_latency_ms)")
    parser.add_argument("--kill-at", type=float, default=0.33,
                        help="kill worker #2 once this fraction of target runs is terminal")
    parser.add_argument("--restart-after", type=float, default=10.0,
                        help="seconds before the killed worker is started again; -1: never")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="bound on the run in seconds (default max(600, devices / 2))")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    if args.devices < 10:
        parser.error("--devices must be at least 10")
    if not args.database.startswith("postgresql"):
        parser.error("--database must be a postgresql:// URL (the shape proven is PostgreSQL's)")
    args.timeout = args.timeout or max(600.0, args.devices / 2)
    log(f"source {source_version()}")

    def body(procs: Processes, work: Path) -> int:
        outcome = asyncio.run(prove(args, procs, work))
        for problem in outcome.problems:
            log(f"PROBLEM: {problem}")
        print(final_line(args, outcome), flush=True)
        return 1 if outcome.problems else 0

    def on_error(err: Exception, _procs: Processes) -> None:
        print(f"devices={args.devices} error={type(err).__name__} FAIL", flush=True)

    return run_bench("fleetpipe-multiproc-", args.keep, body, on_error)


if __name__ == "__main__":
    sys.exit(main())
