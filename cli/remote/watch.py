"""`fleetpipe runs watch`: follow a run until it ends, then leave with its outcome's exit code.

The view is re-read from the API (the run and its stage runs) whenever something may have
changed. Where the server offers the run's event stream (`GET /runs/{id}/events`, server-sent
events) each event is the cue; elsewhere the view is polled every second, backing off to every
five while nothing changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from cli.remote.client import Api
from cli.remote.resolve import stage_runs
from cli.remote.run_view import RunView, plain_lines, render

POLL_FIRST, POLL_MAX, POLL_GROWTH = 1.0, 5.0, 1.5
# With a stream, events of a busy stage come many a second: re-read at most this often.
STREAM_COALESCE = 0.5
STREAM_SAFETY = 10.0  # and at least this often, should the stream go quiet


def read_view(api: Api, run_id: str) -> RunView:
    run = api.get(f"/runs/{run_id}")
    return RunView(run, stage_runs(api, run))


class EventCue:
    """Reads the run's event stream in a thread and raises a flag on every event. `alive` is
    false when the server has no stream (404/405) or once the stream broke: the caller polls."""

    def __init__(self, api: Api, run_id: str) -> None:
        self.api = api
        self.path = f"/runs/{run_id}/events"
        self.flag = threading.Event()
        self.alive = True
        self.offered: bool | None = None  # None until the server has answered
        self.answered = threading.Event()
        self.stop = threading.Event()
        self.last_id: str | None = None
        self.thread = threading.Thread(target=self._read, name="fleetpipe-events", daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> None:
        self.flag.wait(timeout)
        self.flag.clear()

    def close(self) -> None:
        self.stop.set()

    def _read(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        try:
            with self.api.http.stream("GET", self.path, headers=headers,
                                      timeout=httpx.Timeout(30.0, read=120.0)) as response:
                kind = response.headers.get("content-type", "")
                self.offered = response.is_success and kind.startswith("text/event-stream")
                self.answered.set()
                if not self.offered:
                    return
                fields = False  # a block of only comments is a keep-alive, not an event
                for line in response.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("id:"):
                        self.last_id = line[3:].strip()
                    if line == "":
                        if fields:
                            self.flag.set()  # the end of one event
                        fields = False
                    elif not line.startswith(":"):
                        fields = True
        except httpx.HTTPError:
            pass
        finally:
            self.answered.set()
            self.alive = False
            self.flag.set()


def follow(api: Api, run_id: str, show: Callable[[RunView], None],
           sleep: Callable[[float], None] = time.sleep) -> RunView:
    """Show the run each time it may have changed, until it ends; its last view."""
    cue = EventCue(api, run_id)
    cue.answered.wait(30.0)
    delay = POLL_FIRST
    last: Any = None
    try:
        while True:
            view = read_view(api, run_id)
            show(view)
            if view.ended:
                return view
            seen = (view.run, view.stages)
            if cue.alive and cue.offered:
                cue.wait(STREAM_SAFETY)
                sleep(STREAM_COALESCE)
                continue
            delay = POLL_FIRST if seen != last else min(delay * POLL_GROWTH, POLL_MAX)
            last = seen
            sleep(delay)
    finally:
        cue.close()


def watch(api: Api, run_id: str, console: Console) -> RunView:
    """A live view on a terminal; elsewhere (a pipe, a log, a test) each changed line once."""
    if console.is_terminal:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            return follow(api, run_id, lambda view: live.update(render(view)))
    printed: set[str] = set()

    def show(view: RunView) -> None:
        for line in plain_lines(view):
            if line not in printed:
                printed.add(line)
                console.print(line, soft_wrap=True)
        if view.ended:
            console.print(view.outcome(), soft_wrap=True)
        console.file.flush()  # a pipe or a log file sees each line as it happens

    return follow(api, run_id, show)
