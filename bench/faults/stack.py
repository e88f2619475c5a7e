"""The real processes the drill hurts: a Temporal dev server on a SQLite file of its own, the
worker (`python worker.py`) and the API (`uvicorn api.app:app`), each killable with SIGKILL
and restartable. A restarted server reuses its port and `--db-filename`, so it comes back
with every workflow it had; each incarnation of a process logs to a file of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.fanout import (
    BASE,
    Processes,
    child_env,
    connect,
    free_port,
    temporal_argv,
    wait_for_log,
)

TEMPORAL, WORKER, API = "temporal", "worker", "api"
# Bounds of every wait for a process to come up (a loaded 2-core machine is slow to import).
UP_TIMEOUT_S = 120.0


class Stack:
    """One drill's processes, on free ports chosen once and kept across restarts."""

    def __init__(self, work: Path, *, task_queue: str, window: int) -> None:
        self.work = work
        self.db_url = f"sqlite:///{work / 'fleetpipe.db'}"
        self.temporal_db = work / "temporal.db"
        self.task_queue = task_queue
        self.window = window
        self.ports = {name: free_port() for name in ("temporal", "http", "metrics", "api")}
        self.procs = Processes()
        self.started: Counter[str] = Counter()  # incarnations of each process
        self.client: Client | None = None
        self.api_key = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['temporal']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}{BASE}"

    def _env(self) -> dict[str, str]:
        return child_env({
            "FLEETPIPE_TEMPORAL_ADDRESS": self.address, "FLEETPIPE_DATABASE_URL": self.db_url,
            "FLEETPIPE_DATA_DIR": str(self.work / "data"), "FLEETPIPE_TASK_QUEUE": self.task_queue,
            "FLEETPIPE_STAGE_WINDOW": str(self.window),
            "FLEETPIPE_API_PORT": str(self.ports["api"]),
        })

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.started[name] += 1
        log_path = self.work / f"{name}-{self.started[name]:02d}.log"
        self.procs.start(name, argv, log_path, env=env)

    # ---- start ---------------------------------------------------------------------------
    async def start_temporal(self) -> None:
        """Start (or restart) the server and wait until the default namespace answers."""
        self._spawn(TEMPORAL, temporal_argv(self.temporal_db, self.ports["temporal"],
                                            self.ports["http"], self.ports["metrics"]))
        deadline = time.monotonic() + UP_TIMEOUT_S
        self.client = await connect(self.address, deadline)

    async def start_worker(self) -> None:
        self._spawn(WORKER, [sys.executable, str(Path(__file__).parents[2] / "worker.py")],
                    self._env())
        await wait_for_log(self.procs, WORKER, "worker polling task queue", UP_TIMEOUT_S)

    async def start_api(self) -> None:
        self._spawn(API, [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1",
                          "--port", str(self.ports["api"]), "--log-level", "warning"],
                    self._env())
        deadline = time.monotonic() + UP_TIMEOUT_S
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                self.procs.check_alive(API)
                try:
                    answer = await http.get(f"{self.api_url}/runs", headers=self.headers)
                    if answer.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the API did not answer within {UP_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.3)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key}"}

    # ---- hurt ----------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL the process (its whole group): no shutdown code of it runs."""
        proc = self.procs.procs.pop(name, None)
        if proc is None:
            raise RuntimeError(f"{name} is not running: nothing to kill")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"{name} (pid {proc.pid}) survived SIGKILL for 30 s") from err

    def exited(self, name: str) -> int | None:
        """The exit code of a process that ended by itself (None while it runs)."""
        proc = self.procs.procs.get(name)
        return None if proc is None else proc.poll()

    def forget(self, name: str) -> None:
        self.procs.procs.pop(name, None)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.procs.logs.get(name)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""

    def stop_all(self) -> None:
        self.procs.stop_all()
