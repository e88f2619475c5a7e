"""A simulated fleet inside the worker: each device walks its commands to an end and reports.

Device attributes choose the behaviour (`sim_behavior` = succeed | fail | offline,
`sim_latency_ms`); everything random comes from `random.Random(f"{seed}:{command_id}")`, so
a seed replays the same fleet. Deliveries are claimed in the store (at most once per command,
across restarts), and `start()` picks up the commands an earlier process left open.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from devices.sim_records import claim_sim_delivery, claim_sim_delivery_in, create_tables
from domain.commands import CommandEvent, DeviceCommand
from domain.gateway import EventSink
from domain.statuses import CommandStatus, RunKind, is_terminal
from store.executor import run_db
from store.group_commit import run_unit
from store.runs.commands import (
    OpenCommand,
    UnknownCommand,
    command_still_open,
    load_open_command,
)
from store.runs.commands import open_commands as store_open_commands
from store.types import utcnow

log = logging.getLogger(__name__)

_C = CommandStatus
SUCCEED, FAIL, OFFLINE = "succeed", "fail", "offline"
FAILURE_REASON = "simulated device failure"
CANCEL_REASON = "cancelled at the gateway"
# Position of each status on the walk, so a resumed command only goes forwards.
_ORDER: dict[str, int] = {s: i for i, s in enumerate(
    (_C.SCHEDULED, _C.QUEUED, _C.INITIATED, _C.ACKNOWLEDGED, _C.INPROGRESS, _C.SUCCESS))}
_ORDER[_C.FAILURE] = _ORDER[_C.SUCCESS]


def args_digest(args: dict) -> str:
    """SHA-256 of the args as canonical JSON."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Step:
    """Statuses the device reports together, `at_s` seconds after the command was sent."""

    at_s: float
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class Behaviour:
    kind: str  # succeed | fail | offline
    latency_s: float


def behaviour_of(attributes: dict[str, str]) -> Behaviour:
    kind = (attributes.get("sim_behavior") or SUCCEED).strip().lower()
    if kind not in (SUCCEED, FAIL, OFFLINE):
        log.warning("unknown sim_behavior %r; the device succeeds", kind)
        kind = SUCCEED
    try:
        latency_ms = max(0.0, float(attributes.get("sim_latency_ms") or 0))
    except ValueError:
        log.warning("sim_latency_ms %r is not a number; using 0", attributes["sim_latency_ms"])
        latency_ms = 0.0
    return Behaviour(kind=kind, latency_s=latency_ms / 1000)


def plan_walk(command_id: str, attributes: dict[str, str], seed: int = 0) -> list[Step]:
    """The whole walk of a command: same command, attributes and seed, same plan."""
    how = behaviour_of(attributes)
    if how.kind == OFFLINE:
        return [Step(0.0, (_C.QUEUED,))]  # the gateway queues it; the device never answers
    end = _C.FAILURE if how.kind == FAIL else _C.SUCCESS
    middle = (_C.INITIATED, _C.ACKNOWLEDGED, _C.INPROGRESS)
    if how.latency_s == 0:
        return [Step(0.0, (_C.QUEUED, *middle, end))]  # one delivery, so one signal
    # Three deliveries: queued now, the device's start at a seeded point, the end at latency.
    started = how.latency_s * random.Random(f"{seed}:{command_id}").uniform(0.1, 0.9)
    return [Step(0.0, (_C.QUEUED,)), Step(started, middle), Step(how.latency_s, (end,))]


def remaining_steps(plan: list[Step], status: str, elapsed_s: float) -> list[Step]:
    """What is left of a plan for a command at `status`, `elapsed_s` after it was sent."""
    done = _ORDER.get(status, 0)
    left = []
    for step in plan:
        statuses = tuple(s for s in step.statuses if _ORDER[s] > done)
        if statuses:
            left.append(Step(max(0.0, step.at_s - elapsed_s), statuses))
    return left


@dataclass
class _Walk:
    command: DeviceCommand
    status: str = _C.SCHEDULED
    next_sequence: int = 0
    cancelled: bool = False
    task: asyncio.Task[None] | None = None
    # Held while claiming, delivering or cancelling: one report at a time per command.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SimulatedFleet:
    """A DeviceGateway whose devices live in this process."""

    def __init__(self, engine: Engine, sink: EventSink, seed: int = 0, name: str = "simulated",
                 *, retry_base_s: float = 0.2, retry_max_s: float = 10.0) -> None:
        self.name = name
        self._engine = engine
        self._sink = sink
        self._seed = seed
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._walks: dict[str, _Walk] = {}  # commands this process is walking or holding
        self._ended: set[str] = set()  # ids only: a repeated send of an ended command is a no-op
        self._tasks: set[asyncio.Task[None]] = set()
        self.send_calls: Counter[str] = Counter()  # every send, for tests
        self.deliveries: Counter[str] = Counter()  # commands this process started on a device
        # What each device was sent, as a digest (args_digest): the test's view of the device
        # side, without keeping a run's sensitive inputs in memory in clear.
        self.received_digests: dict[str, str] = {}

    # ---- DeviceGateway ---------------------------------------------------------------------
    async def send(self, command: DeviceCommand) -> None:
        cid = command.command_id
        self.send_calls[cid] += 1
        self.received_digests[cid] = args_digest(command.args)
        if cid in self._walks or cid in self._ended:
            return  # already have it: the command id is the idempotency key
        walk = _Walk(command)
        self._walks[cid] = walk  # before any await, so a concurrent send of it is a no-op
        try:
            async with walk.lock:
                claimed = await run_unit(self._engine, lambda session: claim_sim_delivery_in(
                    session, cid, command.device_id, self.name))
                if claimed:
                    self.deliveries[cid] += 1
                    self._launch(walk, plan_walk(cid, command.device_attributes, self._seed))
                    return
                # An earlier process started it: carry on from what the store last heard.
                found = await run_db(self._engine, load_open_command, self._engine, cid)
                if found is None:
                    self._end(walk)  # it ended already
                    return
                self._resume(walk, found)
        except BaseException:
            self._forget(walk)  # let a retried send try again
            raise

    async def cancel(self, command_id: str) -> None:
        walk = self._walks.get(command_id)
        if walk is None:
            found = await run_db(self._engine, load_open_command, self._engine, command_id)
            if found is None:
                log.info("cancel of %s: not open at this gateway", command_id)
                return
            walk = self._walks.setdefault(command_id, self._adopt(found))
        async with walk.lock:
            if walk.cancelled or is_terminal(RunKind.COMMAND, walk.status):
                return
            walk.cancelled = True
            if walk.task is not None:
                walk.task.cancel()  # it sleeps or waits for the lock: never mid-delivery
            await self._report(walk, (_C.CANCELLED,))
        self._end(walk)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the fleet's own table if missing, then resume every command of this gateway
        that an earlier process left open."""
        await run_db(self._engine, create_tables, self._engine)
        for found in await run_db(self._engine, store_open_commands, self._engine, self.name):
            if found.command_id in self._walks or found.command_id in self._ended:
                continue
            walk = self._adopt(found)
            self._walks[found.command_id] = walk
            claimed = await run_db(self._engine, claim_sim_delivery, self._engine,
                                   found.command_id, found.device_id, self.name)
            if claimed:  # marked sent elsewhere but never started on the device
                self.deliveries[found.command_id] += 1
            self._resume(walk, found)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- internals -------------------------------------------------------------------------
    def _adopt(self, found: OpenCommand) -> _Walk:
        command = DeviceCommand(
            command_id=found.command_id, target_run_id=found.target_run_id,
            enterprise_id=found.enterprise_id, device_id=found.device_id,
            operation_type=found.operation_type, args=found.args,
            device_attributes=found.device_attributes,
        )
        return _Walk(command, status=found.status, next_sequence=found.last_sequence + 1)

    def _resume(self, walk: _Walk, found: OpenCommand) -> None:
        walk.status, walk.next_sequence = found.status, found.last_sequence + 1
        plan = plan_walk(found.command_id, found.device_attributes, self._seed)
        self._launch(walk, remaining_steps(plan, found.status, _since(found.sent_at)))

    def _launch(self, walk: _Walk, steps: list[Step]) -> None:
        if not steps:
            return  # an offline device that already said queued: it stays silent
        task = asyncio.create_task(self._walk(walk, steps), name=f"sim:{walk.command.command_id}")
        walk.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _walk(self, walk: _Walk, steps: list[Step]) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            for step in steps:
                delay = began + step.at_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                async with walk.lock:
                    if walk.cancelled:
                        return
                    await self._report(walk, step.statuses)
            if is_terminal(RunKind.COMMAND, walk.status):
                self._end(walk)  # an offline device's command stays, so it can be cancelled
        except asyncio.CancelledError:
            raise
        except Exception:  # a background task: log, never leak
            log.exception("simulated walk of command %s failed", walk.command.command_id)

    async def _report(self, walk: _Walk, statuses: tuple[str, ...]) -> None:
        """Build the events for these statuses and deliver them (the device did them anyway)."""
        command = walk.command
        events = []
        for status in statuses:
            reason, output = "", {}
            if status == _C.FAILURE:
                reason = FAILURE_REASON
                output = {"error": FAILURE_REASON, "operation_type": command.operation_type}
            elif status == _C.SUCCESS:
                output = {"result": "ok", "operation_type": command.operation_type}
            elif status == _C.CANCELLED:
                reason = CANCEL_REASON
            events.append(CommandEvent(command_id=command.command_id, status=str(status),
                                       reason=reason, output=output,
                                       sequence=walk.next_sequence, at_epoch=time.time()))
            walk.next_sequence += 1
        walk.status = statuses[-1]
        await self._deliver(command.command_id, events)

    async def _deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        """Hand events to the sink, retrying with backoff (at most `retry_max_s` apart) for as
        long as the store says someone waits for them: until the command or its target run
        has ended. Events the store recorded but could not signal stay owed in its outbox,
        which the relay resends on its own timer."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._sink.deliver(command_id, events)
                return
            except UnknownCommand:
                log.warning("command %s is unknown to the store; its events are dropped",
                            command_id)
                return
            except Exception as err:
                failure = err
            if not await self._still_awaited(command_id):
                log.info("command %s has ended in the store; %d event(s) no longer delivered "
                         "(%s)", command_id, len(events), failure)
                return
            delay = min(self._retry_max_s, self._retry_base_s * 2 ** min(attempt - 1, 30))
            log.warning("delivering events of command %s failed (attempt %d: %s); retry in "
                        "%.1fs", command_id, attempt, failure, delay)
            await asyncio.sleep(delay)

    async def _still_awaited(self, command_id: str) -> bool:
        try:
            return await run_db(self._engine, command_still_open, self._engine, command_id)
        except Exception as err:  # the store is down too: keep trying
            log.warning("could not read command %s from the store: %s", command_id, err)
            return True

    def _forget(self, walk: _Walk) -> None:
        if self._walks.get(walk.command.command_id) is walk:
            del self._walks[walk.command.command_id]

    def _end(self, walk: _Walk) -> None:
        self._forget(walk)
        self._ended.add(walk.command.command_id)
        walk.task = None


def _since(sent_at: datetime | None) -> float:
    return 0.0 if sent_at is None else max(0.0, (utcnow() - sent_at).total_seconds())
