"""What the devices tests share beyond tests/builders.py: a recording sink, and a wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from domain.commands import CommandEvent
from store.runs.events import record_command_events


class RecordingSink:
    """The relay without Temporal: records into the store like the relay, and remembers calls."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self.calls: list[tuple[str, list[CommandEvent], float]] = []

    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        self.calls.append((command_id, list(events), time.monotonic()))
        if self.engine is not None:
            await asyncio.to_thread(record_command_events, self.engine, command_id, events)

    def for_command(self, command_id: str) -> list[list[CommandEvent]]:
        return [events for cid, events, _ in self.calls if cid == command_id]

    def statuses(self, command_id: str) -> list[str]:
        return [e.status for events in self.for_command(command_id) for e in events]


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait until `check()` is truthy; fail the test after `timeout` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
