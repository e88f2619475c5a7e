"""`fleetpipe dev`: the embedded stack (Temporal dev server, worker, API) under one supervisor."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import typer

from cli import dev_stack
from cli.banner import banner
from cli.ports import require_free, split_address
from cli.processes import ChildDied, Supervisor
from cli.seed import DemoSeed, seed_demo
from settings import Settings
from store.db import make_engine
from store.migrations import upgrade

TEMPORAL_START_TIMEOUT = 90.0
API_START_TIMEOUT = 60.0


class StackError(RuntimeError):
    """The stack could not come up; the message says why."""


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


@dataclass(frozen=True)
class Endpoints:
    temporal_host: str
    temporal_port: int
    ui_port: int

    @property
    def ui_url(self) -> str:
        return f"http://{self.temporal_host}:{self.ui_port}"


def endpoints(settings: Settings, ui_port: int | None) -> Endpoints:
    host, port = split_address(settings.temporal_address)
    return Endpoints(host, port, ui_port if ui_port is not None else port + 1000)


def run_dev(settings: Settings, ui_port: int | None = None) -> int:
    """Runs the stack until Ctrl-C/SIGTERM (exit 0) or until a child dies (exit 1)."""
    stop = _stop_on_signals()
    supervisor = Supervisor()
    try:
        _start(settings, endpoints(settings, ui_port), supervisor, stop)
        while not stop.wait(0.5):
            supervisor.check_alive()
        typer.echo("\nstopping…")
        return 0
    except Stopped:
        typer.echo("\nstopping…")
        return 0
    except Exception as exc:  # ChildDied, StackError, PortBusy, a seeding error: say it plainly
        typer.secho(f"\nfleetpipe dev: {exc}", fg=typer.colors.RED, err=True)
        if isinstance(exc, ChildDied) and (tail := exc.child.log_tail()):
            typer.echo(f"--- last lines of {exc.child.log_path} ---\n{tail}", err=True)
        return 1
    finally:
        for warning in supervisor.stop_all():
            typer.secho(warning, fg=typer.colors.YELLOW, err=True)


def _start(
    settings: Settings, ends: Endpoints, supervisor: Supervisor, stop: threading.Event
) -> None:
    ports = {
        "Temporal": (ends.temporal_host, ends.temporal_port, "FLEETPIPE_TEMPORAL_ADDRESS"),
        "Temporal Web UI": (ends.temporal_host, ends.ui_port, "--ui-port"),
        "API": (settings.api_host, settings.api_port, "FLEETPIPE_API_PORT"),
    }
    if settings.worker_metrics_port:
        ports["worker metrics"] = (settings.worker_metrics_host, settings.worker_metrics_port,
                                   "FLEETPIPE_WORKER_METRICS_PORT")
    require_free(ports)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dev_stack.child_env(settings, os.environ)
    # The run page links runs to this stack's Web UI, wherever --ui-port moved it.
    env.setdefault("FLEETPIPE_TEMPORAL_UI_URL", ends.ui_url)

    typer.echo(f"starting the Temporal dev server on {settings.temporal_address} …")
    supervisor.start(
        "temporal dev server",
        dev_stack.temporal_command(
            dev_stack.temporal_binary(),
            data_dir,
            ends.temporal_host,
            ends.temporal_port,
            ends.ui_port,
            settings.temporal_namespace,
        ),
        env=env,
        log_path=data_dir / dev_stack.TEMPORAL_LOG,
    )
    # The store is ours alone: set it up while Temporal boots.
    seed = _prepare_store(settings)
    _wait_for(
        "the Temporal dev server",
        lambda: dev_stack.temporal_answers(settings.temporal_address, settings.temporal_namespace),
        TEMPORAL_START_TIMEOUT,
        supervisor,
        stop,
    )

    typer.echo("starting the worker and the API …")
    supervisor.start("worker", dev_stack.worker_command(), env=env)
    supervisor.start("api", dev_stack.api_command(), env=env)
    api_docs = f"http://{settings.api_host}:{settings.api_port}/openapi.json"
    _wait_for(
        "the API", lambda: dev_stack.http_answers(api_docs), API_START_TIMEOUT, supervisor, stop
    )
    typer.echo(banner(settings, ends.ui_url, seed, data_dir / "demo-token"))


def _prepare_store(settings: Settings) -> DemoSeed:
    engine = make_engine(settings.resolved_database_url())
    try:
        upgrade(engine)  # as `fleetpipe db upgrade`: adopts a store made before migrations
        return seed_demo(engine, settings.data_dir.resolve() / "demo-token")
    finally:
        engine.dispose()


def _wait_for(
    what: str,
    answers: Callable[[], bool],
    timeout: float,
    supervisor: Supervisor,
    stop: threading.Event,
) -> None:
    deadline = time.monotonic() + timeout
    while not answers():
        supervisor.check_alive()
        if stop.is_set():
            raise Stopped
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not answer within {timeout:.0f}s")
        stop.wait(0.25)
    supervisor.check_alive()


def _stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM only set a flag: the supervisor loop then stops the children in order,
    rather than an exception landing in the middle of a start-up step."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
