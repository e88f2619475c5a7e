"""Fan-out benchmark: bare Temporal against a real fleetpipe stage, on one embedded server.

    .venv/bin/python bench/fanout.py --targets 1000

In one run, on one `temporal server start-dev` it starts itself (fresh SQLite file in WAL mode,
headless, the product's search attributes registered, free ports):

(a) baseline: a tree of child workflows (<= 100 children per parent, two levels for N <= 10,000)
    whose N leaves each run one no-op activity, with its worker in a process of its own
    (`bench/baseline.py`, the product worker's concurrency limits); baseline_tps = N / wall.
(b) product: a single-stage pipeline of N simulated devices (one INSTALL, devices answer at
    once) written to a fresh store (an SQLite file, or with `--database postgresql://...` a
    schema of its own in PostgreSQL, dropped afterwards; built by the migrations), the real
    worker (`python worker.py`, `--workers K` processes of it on the same task queues) and the
    real API (`uvicorn api.app:app`) as separate processes; the run is started with
    `POST /api/pipelines/v0/pipelines/{id}/runs`; product_tps = N / (start request -> the
    pipeline run's workflow returned `success`, confirmed through the API). Meanwhile it polls
    `GET /stageruns/{id}/targetruns?status=running&limit=100` every 0.2 s (api_p99_ms), samples
    the worker's RSS every 0.5 s, and `describe()`s the pipeline and stage workflows every 1 s
    for their pending children / activities (max_pending is that sampled maximum).

Afterwards it lists every workflow the server holds (each run, continued-as-new runs included,
with its history length) for max_history and events per target, and reads whole histories of
every stage-run workflow run (and a sample of target runs) for the event mix.

Progress goes to stderr; the last stdout line is the figures. Every process it starts is
stopped on exit, Ctrl-C or failure; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client, WorkflowExecutionStatus  # noqa: E402

from bench import baseline  # noqa: E402
from bench.databases import describe, fresh_store  # noqa: E402
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id  # noqa: E402
from settings import get_settings  # noqa: E402
from store.db import make_engine, transaction  # noqa: E402
from store.definitions.devices import Device  # noqa: E402
from store.definitions.operation_lists import Operation, OperationList  # noqa: E402
from store.definitions.pipelines import Pipeline, Stage  # noqa: E402
from store.definitions.target_lists import (  # noqa: E402
    StageTargetList,
    TargetList,
    TargetListDevice,
)
from store.definitions.tenants import create_token, ensure_enterprise  # noqa: E402
from store.migrations import upgrade  # noqa: E402
from store.types import utcnow  # noqa: E402
from workflows import names  # noqa: E402
from workflows.converter import data_converter  # noqa: E402
from workflows.messages import PipelineRunResult, StageState  # noqa: E402

BASE = "/api/pipelines/v0"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = 1000


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- processes ---------------------------------------------------------------------------
class Processes:
    """Every child process of the bench, each in its own process group, stopped on exit."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str], log_path: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = open(log_path, "wb")  # noqa: SIM115 (kept open for the child's lifetime)
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = proc
        self.logs[name] = log_path
        log(f"started {name} (pid {proc.pid}): {' '.join(argv[:4])} ...")
        return proc

    def stop(self, name: str, grace: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {grace:.0f} s: killing it")
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)

    def stop_all(self) -> None:
        # Clients of the server first, the server last.
        for name in [n for n in self.procs if n != "temporal"] + ["temporal"]:
            self.stop(name)

    def check_alive(self, *names_: str) -> None:
        for name in names_:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                tail = self.logs[name].read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}; its log ends:\n{tail}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17.
    return sum(int(v) for v in fields[11:15]) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK


class CpuMeter:
    """CPU seconds of each of our processes over a phase, and of everything else on the
    machine (other people's tests share these 2 cores)."""

    def __init__(self, pids: dict[str, int | list[int]]) -> None:
        self.pids = {name: pid if isinstance(pid, list) else [pid]
                     for name, pid in pids.items()}
        self.start = {name: sum(cpu_seconds(p) for p in group)
                      for name, group in self.pids.items()}
        self.start["bench"] = time.process_time()
        self.start["machine"] = machine_busy_seconds()
        self.wall = time.monotonic()

    def read(self) -> dict[str, float]:
        used = {name: sum(cpu_seconds(p) for p in group) - self.start[name]
                for name, group in self.pids.items()}
        used["bench"] = time.process_time() - self.start["bench"]
        used["machine"] = machine_busy_seconds() - self.start["machine"]
        ours = sum(v for k, v in used.items() if k != "machine")
        used["others"] = used["machine"] - ours
        used["wall"] = time.monotonic() - self.wall
        used["cores"] = os.cpu_count() or 0
        used["loadavg_1m_end"] = os.getloadavg()[0]
        return used


class RssSampler(threading.Thread):
    """Peak RSS of any one of the given processes."""

    def __init__(self, pids: list[int], every: float = 0.5) -> None:
        super().__init__(daemon=True, name="rss")
        self.pids, self.every = pids, every
        self.peak = 0.0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max([self.peak] + [rss_mb(pid) for pid in self.pids])
            self.samples += 1
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class ApiPoller(threading.Thread):
    """GET targetruns?status=running&limit=100 every 0.2 s, timing each request."""

    def __init__(self, url: str, headers: dict[str, str], every: float = 0.2) -> None:
        super().__init__(daemon=True, name="api-poller")
        self.url, self.headers, self.every = url, headers, every
        self.latencies_ms: list[float] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.max_running = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10.0) as http:
            next_at = time.monotonic()
            while not self._halt.is_set():
                began = time.perf_counter()
                try:
                    response = http.get(self.url, headers=self.headers,
                                        params={"status": "running", "limit": 100})
                    elapsed = (time.perf_counter() - began) * 1000
                    if response.status_code == 200:
                        self.latencies_ms.append(elapsed)
                        count = response.json()["content"]["count"]
                        self.max_running = max(self.max_running, count)
                    else:
                        self.errors[str(response.status_code)] += 1
                except httpx.HTTPError as err:
                    self.errors[type(err).__name__] += 1
                next_at += self.every
                self._halt.wait(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic() - self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


# ---- the server --------------------------------------------------------------------------
def temporal_argv(db: Path, port: int, http_port: int, metrics_port: int) -> list[str]:
    argv = [str(Path(sys.executable).parent / "temporal"), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(port), "--headless",
            "--http-port", str(http_port), "--metrics-port", str(metrics_port),
            "--db-filename", str(db),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn"]
    for key, kind in names.SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{key}={kind}"]
    return argv


async def connect(address: str, deadline: float) -> Client:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await asyncio.wait_for(
                Client.connect(address, data_converter=data_converter(
                    get_settings().codec_keyring())), 5)
            await client.count_workflows()  # the default namespace is ready
            return client
        except Exception as err:  # not up yet
            last = err
            await asyncio.sleep(0.5)
    raise TimeoutError(f"Temporal at {address} did not answer in time: {last}")


async def wait_for_log(procs: Processes, name: str, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive(name)
        if needle in procs.logs[name].read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{name} did not log {needle!r} within {timeout:.0f} s")


async def wait_for_api(http: httpx.AsyncClient, procs: Processes, name: str, api_url: str,
                       headers: dict[str, str], timeout: float) -> None:
    """Until the API process `name` answers an authenticated list with 200."""
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive(name)
        try:
            if (await http.get(f"{api_url}/runs", headers=headers)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not answer within {timeout:.0f} s")
        await asyncio.sleep(0.3)


def api_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port",
            str(port), "--log-level", "warning"]


# ---- (a) baseline --------------------------------------------------------------------------
@dataclass
class Phase:
    tps: float = 0.0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


async def run_baseline(client: Client, procs: Processes, work: Path, address: str, n: int,
                       timeout: float) -> Phase:
    queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    worker = procs.start("baseline-worker", [sys.executable, "-m", "bench.baseline",
                                             "--address", address, "--task-queue", queue],
                         work / "baseline-worker.log", env=child_env({}))
    await wait_for_log(procs, "baseline-worker", "baseline worker polling", 60)
    meter = CpuMeter({"server": procs.procs["temporal"].pid, "worker": worker.pid})
    began = time.monotonic()
    handle = await client.start_workflow(baseline.NODE_WORKFLOW, n, id=f"bench-tree-{queue}",
                                         task_queue=queue, result_type=int)
    log(f"(a) baseline tree of {n} leaves started ({baseline.subtree_sizes(n)[:3]}... per "
        "child of the root)")
    leaves = await wait_result(handle, timeout, procs, "baseline-worker", "(a)")
    wall = time.monotonic() - began
    cpu = meter.read()
    if leaves != n:
        raise RuntimeError(f"baseline finished {leaves} leaves, expected {n}")
    procs.stop("baseline-worker")
    phase = Phase(tps=n / wall, wall=wall, cpu=cpu)
    log(f"(a) baseline: {n} leaves in {wall:.1f} s = {phase.tps:.1f}/s; CPU s: "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    return phase


async def wait_result(handle: Any, timeout: float, procs: Processes, worker: str,
                      label: str) -> Any:
    """The workflow's result, while checking the worker is alive and logging progress."""
    task = asyncio.ensure_future(handle.result())
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=5)
            if done:
                return task.result()
            procs.check_alive("temporal", worker)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label} did not finish within {timeout:.0f} s")
    finally:
        task.cancel()


# ---- (b) product ---------------------------------------------------------------------------
def run_bench(prefix: str, keep: bool, body: Callable[[Processes, Path], int],
              on_error: Callable[[Exception, Processes], None] | None = None) -> int:
    """Run `body(procs, work)` in a fresh work dir and return its exit code. Every process it
    starts is stopped on exit, Ctrl-C (130) or SIGTERM. An exception is logged with the end of
    each process's log (or handed to `on_error`) and is exit 1; a failed run keeps the dir."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"work dir {work}")
    procs = Processes()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C stops it even when started from a shell that had SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        code = body(procs, work)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        code = 130
    except Exception as err:
        log(f"FAILED: {type(err).__name__}: {err}")
        if on_error is not None:
            on_error(err, procs)
        else:
            for name, path in procs.logs.items():
                if path.exists():
                    log(f"--- end of {name} log ({path}) ---\n"
                        + path.read_text(errors="replace")[-1500:])
        code = 1
    finally:
        procs.stop_all()
        if keep or code not in (0, 130):
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # A bench runs several workers on this one host: none serves a metrics port unless asked.
    env["FLEETPIPE_WORKER_METRICS_PORT"] = "0"
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def seed_store(db_url: str, n: int,
               attributes: dict[str, str] | None = None) -> tuple[str, str, str]:
    """(api key, pipeline id, stage id): one automatic stage, N fresh devices (each with these
    attributes: the simulated fleet's behaviour), one INSTALL."""
    engine = make_engine(db_url)
    upgrade(engine)
    enterprise = ensure_enterprise(engine, "bench")
    key = create_token(engine, enterprise.id, "bench")
    now = utcnow()
    with transaction(engine) as session:
        pipeline = Pipeline(enterprise_id=enterprise.id, name=f"fanout-{n}")
        session.add(pipeline)
        session.flush()
        stage = Stage(pipeline_id=pipeline.id, name="install", order=0, trigger="automatic")
        target_list = TargetList(pipeline_id=pipeline.id, name="fleet")
        session.add_all([stage, target_list])
        session.flush()
        op_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id, name="install")
        session.add_all([op_list, StageTargetList(stage_id=stage.id,
                                                  target_list_id=target_list.id)])
        session.flush()
        session.add(Operation(operation_list_id=op_list.id, order=0, operation_type="INSTALL",
                              args={"package_name": "com.example.app", "app_version": "1.2.3"}))
        ids = [uuid.uuid4() for _ in range(n)]
        for start in range(0, n, 2000):
            chunk = ids[start:start + 2000]
            session.execute(insert(Device.__table__), [  # type: ignore[attr-defined]
                {"id": d, "enterprise_id": enterprise.id, "name": f"dev-{start + i:06d}",
                 "alias": f"d{start + i}", "attributes": dict(attributes or {}),
                 "created_at": now,
                 "updated_at": now} for i, d in enumerate(chunk)])
            session.execute(insert(TargetListDevice.__table__), [  # type: ignore[attr-defined]
                {"id": uuid.uuid4(), "target_list_id": target_list.id, "device_id": d,
                 "created_at": now} for d in chunk])
        pipeline_id, stage_id = str(pipeline.id), str(stage.id)
    engine.dispose()
    return key, pipeline_id, stage_id


@dataclass
class Product:
    phase: Phase
    run_id: str = ""
    stage_run_id: str = ""
    status: str = ""
    rss_peak_mb: float = 0.0
    rss_samples: int = 0
    api_p99_ms: float = float("nan")
    api_p50_ms: float = float("nan")
    api_max_ms: float = float("nan")
    api_requests: int = 0
    api_idle_p50_ms: float = float("nan")
    api_idle_p99_ms: float = float("nan")
    api_errors: dict[str, int] = field(default_factory=dict)
    api_max_running: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 0
    in_flight_samples: list[int] = field(default_factory=list)
    describe_samples: int = 0
    stage_runs_seen: set[str] = field(default_factory=set)


class PendingSampler:
    """describe() the pipeline and stage workflows every second: pending children/activities."""

    def __init__(self, client: Client, result: Product, pipeline_wf: str) -> None:
        self.client, self.result, self.pipeline_wf = client, result, pipeline_wf
        self.stage_wf: str | None = None
        self.next_log = time.monotonic() + 30

    async def loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for wf in [self.pipeline_wf] + ([self.stage_wf] if self.stage_wf else []):
                try:
                    desc = await self.client.get_workflow_handle(wf).describe(
                        rpc_timeout=timedelta(seconds=5))
                except Exception:  # not started yet, or the server is busy: next time
                    continue
                raw = desc.raw_description
                kind = "stage" if wf == self.stage_wf else "pipeline"
                pend = self.result.pending
                pend[f"{kind}_children"] = max(pend.get(f"{kind}_children", 0),
                                               len(raw.pending_children))
                pend[f"{kind}_activities"] = max(pend.get(f"{kind}_activities", 0),
                                                 len(raw.pending_activities))
                self.result.describe_samples += 1
                if kind == "stage":
                    self.result.stage_runs_seen.add(desc.run_id)
                    if desc.status == WorkflowExecutionStatus.RUNNING:
                        try:
                            state = await self.client.get_workflow_handle(wf).query(
                                names.QUERY_STAGE_STATE, result_type=StageState,
                                rpc_timeout=timedelta(seconds=5))
                            self.result.max_in_flight = max(self.result.max_in_flight,
                                                            state.in_flight)
                            self.result.in_flight_samples.append(state.in_flight)
                            if time.monotonic() >= self.next_log:
                                self.next_log = time.monotonic() + 30
                                log(f"(b) stage: {state.dispatched} dispatched, "
                                    f"{state.in_flight} in flight, finished {state.counts}, "
                                    f"{len(self.result.stage_runs_seen)} workflow run(s) seen")
                        except Exception:
                            pass
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def run_product(client: Client, procs: Processes, work: Path, address: str, n: int,
                      timeout: float, window: int, profile: bool, db_url: str,
                      variant: str = "product", workers: int = 1,
                      extra_env: dict[str, str] | None = None) -> Product:
    """(b); `extra_env` is given to the worker and the API on top (e.g. another gateway)."""
    began_seed = time.monotonic()
    key, pipeline_id, _stage_id = await asyncio.to_thread(seed_store, db_url, n)
    log(f"(b) store seeded with {n} devices in {time.monotonic() - began_seed:.1f} s")
    queue = f"bench-fleetpipe-{uuid.uuid4().hex[:8]}"
    api_port = free_port()
    env = child_env({
        "FLEETPIPE_TEMPORAL_ADDRESS": address, "FLEETPIPE_DATABASE_URL": db_url,
        "FLEETPIPE_DATA_DIR": str(work / "data"), "FLEETPIPE_TASK_QUEUE": queue,
        "FLEETPIPE_STAGE_WINDOW": str(window), "FLEETPIPE_API_PORT": str(api_port),
        **(extra_env or {}),
    })
    argv = [sys.executable, str(REPO / "worker.py")]
    if variant == "unsandboxed":
        argv = [sys.executable, "-m", "bench.worker_unsandboxed"]
    worker = procs.start("worker", argv, work / "worker.log", env=env)
    extra = [procs.start(f"worker-{i}", argv, work / f"worker-{i}.log", env=env)
             for i in range(2, workers + 1)]
    worker_pids = [worker.pid] + [p.pid for p in extra]
    rss = RssSampler(worker_pids)
    rss.start()
    api = procs.start("api", api_argv(api_port), work / "api.log", env=env)
    spies: list[str] = []
    api_url = f"http://127.0.0.1:{api_port}{BASE}"
    headers = {"Authorization": f"Token {key}"}
    result = Product(phase=Phase())
    poller: ApiPoller | None = None
    stop_sampling = asyncio.Event()
    sampler_task: asyncio.Task[None] | None = None
    try:
        for name in ["worker"] + [f"worker-{i}" for i in range(2, workers + 1)]:
            await wait_for_log(procs, name, "worker polling task queue", 60)
        async with httpx.AsyncClient(timeout=30.0) as http:
            await wait_for_api(http, procs, "api", api_url, headers, 60)
            log(f"(b) worker and API up (API on {api_port}); starting the run through HTTP")
            if profile:
                for name, pid in (("worker", worker.pid), ("api", api.pid)):
                    spy = (shutil.which("py-spy", path=str(Path(sys.executable).parent))
                           or shutil.which("py-spy"))  # e.g. `uv tool install py-spy`
                    if spy:
                        # --gil: only the thread holding the GIL is sampled, so idle waits
                        # (epoll, the store thread's queue) do not show as work.
                        procs.start(f"py-spy-{name}", [
                            spy, "record", "--pid", str(pid), "--rate", "50", "--nonblocking",
                            "--gil", "--format", "raw", "-o", str(work / f"profile-{name}.txt")],
                            work / f"py-spy-{name}.log")
                        spies.append(f"py-spy-{name}")
                await asyncio.sleep(1.0)
            meter = CpuMeter({"server": procs.procs["temporal"].pid, "worker": worker_pids,
                              "api": api.pid})
            began = time.monotonic()
            response = await http.post(f"{api_url}/pipelines/{pipeline_id}/runs",
                                       headers=headers, json={})
            if response.status_code != 200:
                raise RuntimeError(f"POST run: {response.status_code} {response.text}")
            run_id = response.json()["content"]["id"]
            result.run_id = run_id
            log(f"(b) run {run_id} started in {(time.monotonic() - began) * 1000:.0f} ms")
            sampler = PendingSampler(client, result, pipeline_run_workflow_id(run_id))
            sampler_task = asyncio.create_task(sampler.loop(stop_sampling))
            deadline = time.monotonic() + 60
            while not result.stage_run_id:
                got = (await http.get(f"{api_url}/runs/{run_id}/stageruns",
                                      headers=headers)).json()
                results = (got.get("content") or {}).get("results") or []
                if results:
                    result.stage_run_id = results[0]["id"]
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("no stage run appeared within 60 s")
                await asyncio.sleep(0.1)
            sampler.stage_wf = stage_run_workflow_id(result.stage_run_id)
            poller = ApiPoller(f"{api_url}/stageruns/{result.stage_run_id}/targetruns",
                               headers)
            poller.start()
            handle = client.get_workflow_handle(pipeline_run_workflow_id(run_id),
                                                result_type=PipelineRunResult)
            outcome: PipelineRunResult = await wait_result(handle, timeout, procs, "worker",
                                                           "(b)")
            wall = time.monotonic() - began
            result.phase.cpu = meter.read()
            poller.stop()
            stop_sampling.set()
            await sampler_task
            row = (await http.get(f"{api_url}/pipelines/{pipeline_id}/runs/{run_id}",
                                  headers=headers)).json()["content"]
            result.status = row["status"]
            counts = (await http.get(f"{api_url}/stageruns/{result.stage_run_id}/targetruns",
                                     headers=headers, params={"status": "success", "limit": 1}
                                     )).json()["content"]["count"]
            # The same poll with the run over (server and worker idle): the endpoint's floor.
            idle = ApiPoller(f"{api_url}/stageruns/{result.stage_run_id}/targetruns", headers,
                             every=0.05)
            idle.start()
            await asyncio.sleep(5)
            idle.stop()
            result.api_idle_p99_ms = percentile(idle.latencies_ms, 99)
            result.api_idle_p50_ms = percentile(idle.latencies_ms, 50)
        if outcome.status != "success" or result.status != "success" or counts != n:
            raise RuntimeError(f"run ended {outcome.status} (store: {result.status}, "
                               f"{counts} of {n} target runs success): {outcome.reason}")
        result.phase.wall = wall
        result.phase.tps = n / wall
        result.rss_peak_mb, result.rss_samples = rss.peak, rss.samples
        lat = poller.latencies_ms
        result.api_requests = len(lat)
        result.api_p99_ms = percentile(lat, 99)
        result.api_p50_ms = percentile(lat, 50)
        result.api_max_ms = max(lat) if lat else float("nan")
        result.api_errors = dict(poller.errors)
        result.api_max_running = poller.max_running
        log(f"(b) product: {n} targets in {wall:.1f} s = {result.phase.tps:.1f}/s; CPU s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in result.phase.cpu.items()))
        log(f"(b) API: {len(lat)} polls, p50 {result.api_p50_ms:.1f} ms, p99 "
            f"{result.api_p99_ms:.1f} ms, max {result.api_max_ms:.1f} ms, errors "
            f"{dict(poller.errors)}, most running seen {poller.max_running}; after the run "
            f"(idle): p50 {result.api_idle_p50_ms:.1f} ms, p99 {result.api_idle_p99_ms:.1f} ms")
        log(f"(b) worker RSS peak {rss.peak:.0f} MB ({rss.samples} samples); pending (sampled "
            f"max) {result.pending}; stage in_flight (query) max {result.max_in_flight}, mean "
            f"{sum(result.in_flight_samples) / max(1, len(result.in_flight_samples)):.0f}")
        return result
    finally:
        stop_sampling.set()
        if sampler_task is not None and not sampler_task.done():
            sampler_task.cancel()
        if poller is not None:
            poller.stop()
        rss.stop()
        for spy in spies:  # SIGINT: py-spy writes its file
            proc = procs.procs.get(spy)
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            procs.stop(spy)


def stop_store_users(procs: Processes) -> None:
    """Stop the product's workers and APIs (everything but the Temporal server)."""
    for name in [p for p in procs.procs if p.startswith(("worker", "api"))]:
        procs.stop(name)


# ---- histories -------------------------------------------------------------------------------
@dataclass
class Histories:
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)
    max_history: int = 0
    max_history_of: str = ""
    stage_runs: list[tuple[str, int]] = field(default_factory=list)
    stage_event_mix: dict[str, int] = field(default_factory=dict)
    target_event_mix: dict[str, float] = field(default_factory=dict)
    pipeline_events: int = 0
    task_failures: list[str] = field(default_factory=list)
    # Causes (WorkflowTaskFailedCause numbers) of the sampled target runs' failed tasks.
    target_task_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    start_batches: list[int] = field(default_factory=list)


async def read_histories(client: Client, run_id: str, stage_run_id: str,
                         n: int, target_sample: int = 20) -> Histories:
    out = Histories()
    per_type: dict[str, list[int]] = collections.defaultdict(list)
    statuses: collections.Counter[str] = collections.Counter()
    targets: list[tuple[str, str]] = []
    # Visibility records a closed workflow's history length a moment after it closes.
    deadline = time.monotonic() + 60
    while True:
        per_type.clear()
        statuses.clear()
        targets.clear()
        unsettled = 0
        async for wf in client.list_workflows(page_size=PAGE):
            per_type[wf.workflow_type].append(wf.history_length)
            statuses[f"{wf.workflow_type}:{wf.status.name if wf.status else '?'}"] += 1
            unsettled += wf.history_length == 0
            if (wf.workflow_type == names.TARGET_RUN_WORKFLOW
                    and len(targets) < 5 * target_sample):
                targets.append((wf.id, wf.run_id or ""))
        if not unsettled or time.monotonic() > deadline:
            break
        log(f"{unsettled} workflows without a history length yet; listing again")
        await asyncio.sleep(2)
    for wtype, lengths in per_type.items():
        out.by_type[wtype] = {"runs": len(lengths), "events": sum(lengths),
                              "max": max(lengths), "mean": sum(lengths) / len(lengths)}
    # Every stage-run workflow run, continued-as-new runs included, from its full history.
    stage_wf = stage_run_workflow_id(stage_run_id)
    mix: collections.Counter[str] = collections.Counter()
    async for wf in client.list_workflows(f"WorkflowId = '{stage_wf}'"):
        events = [e async for e in client.get_workflow_handle(
            wf.id, run_id=wf.run_id).fetch_history_events()]
        out.stage_runs.append((wf.run_id or "", len(events)))
        mix.update(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events)
        # How the window refills: children started per workflow task that started any.
        batch = 0
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                batch += 1
            elif batch:
                out.start_batches.append(batch)
                batch = 0
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = e.workflow_task_failed_event_attributes
                out.task_failures.append(
                    f"{attrs.cause} {attrs.failure.message[:300]}")
    out.stage_event_mix = dict(mix.most_common())
    pipeline_events = [e async for e in client.get_workflow_handle(
        pipeline_run_workflow_id(run_id)).fetch_history_events()]
    out.pipeline_events = len(pipeline_events)
    tmix: collections.Counter[str] = collections.Counter()
    sample = targets[:: max(1, len(targets) // target_sample)][:target_sample]
    for wid, rid in sample:
        events = [e async for e in client.get_workflow_handle(
            wid, run_id=rid).fetch_history_events()]
        tmix.update(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events)
        out.target_task_failures.update(
            str(e.workflow_task_failed_event_attributes.cause) for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    out.target_event_mix = {k: v / max(1, len(sample)) for k, v in tmix.most_common()}
    candidates = [(length, f"{stage_wf} run {rid}") for rid, length in out.stage_runs]
    candidates.append((out.pipeline_events, pipeline_run_workflow_id(run_id)))
    for wtype, lengths in per_type.items():
        candidates.append((max(lengths), f"a {wtype}"))
    out.max_history, out.max_history_of = max(candidates)
    log("workflows on the server: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    return out


def source_version() -> dict[str, Any]:
    """The commit the product processes run (others may be changing the checkout meanwhile)."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    stamp = REPO / ".source-commit"  # a `git archive` snapshot (see docs/benchmarks.md)
    if not (REPO / ".git").exists() and stamp.exists():
        return {"source_commit": stamp.read_text().strip() + " (snapshot)", "source_dirty": []}
    dirty = git("status", "--porcelain", "--", "workflows", "activities", "store", "devices",
                "api", "domain", "worker.py", "settings.py")
    return {"source_commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "source_dirty": [line[3:] for line in dirty.splitlines()]}


# ---- main ----------------------------------------------------------------------------------
async def bench(args: argparse.Namespace, procs: Processes, work: Path) -> dict[str, Any]:
    n = args.targets
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs.start("temporal", temporal_argv(work / "temporal.db", port, free_port(), free_port()),
                work / "temporal.log")
    client = await connect(address, time.monotonic() + 60)
    log(f"Temporal dev server up at {address} (db {work / 'temporal.db'})")
    timeout = args.timeout or max(300.0, n / 4)
    figures: dict[str, Any] = {"targets": n, "window": args.window,
                               "database": describe(args.database),
                               "worker_variant": args.worker_variant,
                               "workers": args.workers, **source_version()}
    dirty = figures["source_dirty"]
    log(f"source: {figures['source_commit']}"
        + (f" (+ uncommitted changes in {', '.join(dirty)})" if dirty else ""))
    if args.skip_baseline:
        base = Phase(tps=float("nan"))
    else:
        base = await run_baseline(client, procs, work, address, n, timeout)
    with fresh_store(args.database, work) as db_url:
        try:
            prod = await run_product(client, procs, work, address, n, timeout, args.window,
                                     args.profile, db_url, args.worker_variant, args.workers)
        finally:  # the store's users stop before a PostgreSQL schema is dropped
            stop_store_users(procs)
    hist = await read_histories(client, prod.run_id, prod.stage_run_id, n)
    product_types = (names.PIPELINE_RUN_WORKFLOW, names.STAGE_RUN_WORKFLOW,
                     names.TARGET_RUN_WORKFLOW)
    product_events = sum(v["events"] for k, v in hist.by_type.items() if k in product_types)
    base_events = sum(v["events"] for k, v in hist.by_type.items()
                      if k in (baseline.NODE_WORKFLOW, baseline.LEAF_WORKFLOW))
    max_pending = max(prod.pending.values(), default=0)
    figures.update({
        "baseline_tps": base.tps, "baseline_wall_s": base.wall, "baseline_cpu_s": base.cpu,
        "baseline_events_per_leaf": base_events / n if base_events else None,
        "product_tps": prod.phase.tps, "product_wall_s": prod.phase.wall,
        "product_cpu_s": prod.phase.cpu, "ratio": prod.phase.tps / base.tps,
        "product_events_per_target": product_events / n,
        "cost_ms_per_target": 1000 * prod.phase.wall / n,
        "server_cpu_ms_per_target": 1000 * prod.phase.cpu.get("server", 0) / n,
        "worker_cpu_ms_per_target": 1000 * prod.phase.cpu.get("worker", 0) / n,
        "baseline_server_cpu_ms_per_leaf": 1000 * base.cpu.get("server", 0) / n
        if base.cpu else None,
        "baseline_worker_cpu_ms_per_leaf": 1000 * base.cpu.get("worker", 0) / n
        if base.cpu else None,
        "max_pending_sampled": prod.pending, "max_pending": max_pending,
        "max_pending_design_bound": args.window,
        "stage_in_flight_max_query": prod.max_in_flight,
        "stage_in_flight_mean_query": (sum(prod.in_flight_samples) / len(prod.in_flight_samples)
                                       if prod.in_flight_samples else None),
        "stage_in_flight_samples": prod.in_flight_samples,
        "describe_samples": prod.describe_samples,
        "max_history": hist.max_history, "max_history_of": hist.max_history_of,
        "history_by_type": hist.by_type, "stage_runs": hist.stage_runs,
        "stage_event_mix": hist.stage_event_mix, "target_event_mix": hist.target_event_mix,
        "pipeline_events": hist.pipeline_events,
        "stage_task_failures": hist.task_failures,
        "target_task_failures": dict(hist.target_task_failures),
        "stage_start_batches": hist.start_batches,
        "worker_rss_mb": prod.rss_peak_mb, "rss_samples": prod.rss_samples,
        "api_p99_ms": prod.api_p99_ms, "api_p50_ms": prod.api_p50_ms,
        "api_max_ms": prod.api_max_ms, "api_idle_p50_ms": prod.api_idle_p50_ms,
        "api_idle_p99_ms": prod.api_idle_p99_ms, "api_requests": prod.api_requests,
        "api_errors": prod.api_errors, "api_max_running_seen": prod.api_max_running,
        "api": "HTTP (uvicorn api.app:app, separate process)",
    })
    log(f"stage-run workflow runs (continue-as-new chain): {len(hist.stage_runs)}, history "
        f"lengths {[length for _, length in hist.stage_runs]}")
    log(f"stage started its children in {len(hist.start_batches)} batches: "
        f"{hist.start_batches[:30]}{' ...' if len(hist.start_batches) > 30 else ''}")
    if hist.task_failures:
        log(f"stage workflow task failures: {hist.task_failures}")
    log(f"events per target {product_events / n:.1f} (baseline per leaf "
        f"{(base_events / n) if base_events else float('nan'):.1f}); longest history "
        f"{hist.max_history} ({hist.max_history_of})")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=1000, help="N, the devices / leaves")
    parser.add_argument("--window", type=int, default=200,
                        help="FLEETPIPE_STAGE_WINDOW for the product (default: the setting's "
                        "default, 200)")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="bound for each phase in seconds (default max(300, N/4))")
    parser.add_argument("--worker-variant", choices=("product", "unsandboxed"),
                        default="product",
                        help="experiment: run worker.py with the workflow sandbox off")
    parser.add_argument("--workers", type=int, default=1,
                        help="product worker processes on the task queue (default 1); "
                        "worker_rss_mb is the peak of any one of them")
    parser.add_argument("--database", default="",
                        help="the store for (b): default a fresh SQLite file; a PostgreSQL URL "
                        "(postgresql://postgres@127.0.0.1:5432/test) runs it in a fresh schema "
                        "of its own, dropped afterwards")
    parser.add_argument("--skip-baseline", action="store_true", help="only run (b)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker and the API during (b) (needs py-spy in the "
                        "venv or on PATH, e.g. `uv tool install py-spy`); raw stacks are kept "
                        "in the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, dbs)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.targets < 1:
        parser.error("--targets must be at least 1")
    if args.profile:
        args.keep = True  # the profiles are in the work dir
    def body(procs: Processes, work: Path) -> int:
        figures = asyncio.run(bench(args, procs, work))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(json.dumps({k: v for k, v in figures.items()
                          if not isinstance(v, (dict, list))}, default=str))
        print(f"database={figures['database']} workers={figures['workers']} "
              f"ratio={figures['ratio']:.2f} product_tps={figures['product_tps']:.1f} "
              f"baseline_tps={figures['baseline_tps']:.1f} max_pending={figures['max_pending']} "
              f"max_history={figures['max_history']} "
              f"worker_rss_mb={figures['worker_rss_mb']:.0f} "
              f"api_p99_ms={figures['api_p99_ms']:.1f}", flush=True)
        return 0

    return run_bench("fleetpipe-bench-", args.keep, body)


if __name__ == "__main__":
    sys.exit(main())
