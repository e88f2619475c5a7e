"""The Esper gateway: Android devices under the Esper MDM, through Esper's Commands V2 API.

Each command becomes one Esper command request (`create_command`, command_type DEVICE, the
device's `esper_device_id`, device_type all), written first as an intent in the gateway's own
table. Its progress is followed with `get_command_request_status`, one command at a time in
due order, each backing off while nothing changes, and every call to Esper under one
request-rate bound (so 10,000 devices never mean 10,000 calls a second). Esper's states map
one to one onto the command statuses and reach the run as command events.

Never two Esper requests for one command: a create is counted in the table before it is
made, and a command whose earlier create may have reached Esper (an error, a lost answer, a
worker that died) is looked up with `list_command_request` before anything is created again.

What Esper allows: the SDK's Commands V2 API has no call that cancels a command request, so a
command is cancelled here only while it has not reached Esper yet; once created it runs on,
and its outcome (or a cancel made in the Esper console) comes back as usual.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from devices.esper import records
from devices.esper.client import (
    EsperApi,
    EsperAuthError,
    EsperError,
    EsperRejected,
    EsperUnavailable,
)
from devices.esper.config import EsperConfig
from devices.esper.mapping import command_args, esper_device_id, status_of
from domain.commands import CommandEvent, DeviceCommand
from domain.gateway import EventSink
from domain.statuses import CommandStatus, RunKind, can_transition, is_terminal
from settings import Settings
from store.executor import run_db
from store.runs.commands import UnknownCommand, open_commands

log = logging.getLogger(__name__)

_C = CommandStatus
# A request created before its intent was written cannot be ours; this much clock difference
# between the worker and Esper is still matched.
_CLOCK_SKEW = timedelta(minutes=5)
_DELIVERY_ATTEMPTS = 5
NOT_CANCELLABLE = ("Esper's Commands V2 API has no call to cancel a command request: "
                   "it runs on at Esper, and its outcome will be reported")


@dataclass
class _Tracked:
    """A command this process drives."""

    record: records.EsperRecord
    status: str
    request_id: str | None
    interval_s: float
    next_poll: float = 0.0
    polling: bool = False
    cancel_requested: bool = False
    task: asyncio.Task[None] | None = None  # its create, while it has no request
    failures: int = 0  # status polls that failed in a row

    @property
    def command_id(self) -> str:
        return self.record.command_id


class EsperGateway:
    """A DeviceGateway whose devices are managed by an Esper tenant."""

    name = "esper"

    def __init__(self, engine: Engine, sink: EventSink, config: EsperConfig, *,
                 owner: str | None = None) -> None:
        config.check()
        self._engine = engine
        self._sink = sink
        self._config = config
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.api = EsperApi(config)
        self._tracked: dict[str, _Tracked] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._in_flight = asyncio.Semaphore(config.max_in_flight)
        self._auth_failing = False  # logged once until a call succeeds again
        self._unavailable = False  # likewise for an outage
        self._running = False

    @classmethod
    def from_settings(cls, engine: Engine, sink: EventSink, settings: Settings) -> EsperGateway:
        """The gateway FLEETPIPE_ESPER_* describe; EsperNotConfigured names what is missing."""
        return cls(engine, sink, EsperConfig.from_settings(settings))

    # ---- DeviceGateway ---------------------------------------------------------------------
    async def start(self) -> None:
        """Create the gateway's table if missing, then take over every open command of this
        gateway that no live worker drives (those sent before an intent existed are looked
        up at Esper first)."""
        await run_db(self._engine, records.create_tables, self._engine)
        self._running = True
        for found in await run_db(self._engine, open_commands, self._engine, self.name):
            if found.command_id in self._tracked:
                continue
            record = await run_db(
                self._engine, records.record_intent, self._engine,
                command_id=found.command_id, device_id=found.device_id,
                esper_device_id=esper_device_id(found.device_id, found.device_attributes),
                operation=found.operation_type,
                command_args=command_args(found.operation_type, found.args),
                owner=self._owner, lease_s=self._config.lease_s, attempts=1)
            if record is not None:
                self._track(record)
        await self._adopt()
        self._spawn(self._poll_loop(), "esper:poll")
        self._spawn(self._keep_leases(), "esper:leases")

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks) + [t.task for t in self._tracked.values() if t.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        held = list(self._tracked)
        self._tracked.clear()
        try:
            await run_db(self._engine, records.release, self._engine, held, self._owner)
        except Exception as err:  # the leases run out by themselves
            log.warning("could not release %d Esper command lease(s): %s", len(held), err)
        self.api.close()

    async def send(self, command: DeviceCommand) -> None:
        """Write the intent and queue the create; the call to Esper happens in the background
        (with retries), so an Esper outage never holds up the run's workflow."""
        if command.command_id in self._tracked:
            return  # the command id is the idempotency key
        record = await run_db(
            self._engine, records.record_intent, self._engine,
            command_id=command.command_id, device_id=command.device_id,
            esper_device_id=esper_device_id(command.device_id, command.device_attributes),
            operation=command.operation_type,
            command_args=command_args(command.operation_type, command.args),
            owner=self._owner, lease_s=self._config.lease_s)
        if record is None:
            log.info("command %s is driven by another worker", command.command_id)
            return
        if command.command_id not in self._tracked:
            self._track(record)

    async def cancel(self, command_id: str) -> None:
        tracked = self._tracked.get(command_id)
        if tracked is None:
            log.info("cancel of command %s: not driven by this worker (ended, or another "
                     "worker has it)", command_id)
            return
        tracked.cancel_requested = True
        if tracked.request_id is not None:
            log.warning("cancel of command %s (Esper request %s): %s", command_id,
                        tracked.request_id, NOT_CANCELLABLE)
            return
        # The create loop sees the flag before its next attempt and ends the command there.

    # ---- creating ---------------------------------------------------------------------------
    def _track(self, record: records.EsperRecord) -> None:
        tracked = _Tracked(record=record, status=record.status, request_id=record.request_id,
                           interval_s=self._config.poll_interval_s)
        self._tracked[record.command_id] = tracked
        if tracked.request_id is None:
            tracked.task = asyncio.create_task(self._create(tracked),
                                               name=f"esper:create:{record.command_id}")
        else:
            tracked.next_poll = time.monotonic()  # resumed: see where it got to at once
            self._wake.set()

    async def _create(self, tracked: _Tracked) -> None:
        """Bring the command to one Esper request: look it up if an earlier attempt may have
        made it, else create it; retry with backoff until Esper answers."""
        record = tracked.record
        may_exist = record.attempts > 0
        failures = 0
        while self._running and tracked.request_id is None:
            try:
                if may_exist:
                    found = await self._find_existing(record)
                    if found is not None:
                        await self._bound(tracked, found, adopted=True)
                        return
                if tracked.cancel_requested:
                    await self._end(tracked, _C.CANCELLED, "cancelled before it reached Esper")
                    return
                if not await run_db(self._engine, records.begin_attempt, self._engine,
                                    record.command_id, self._owner):
                    self._untrack(tracked)  # adopted elsewhere, or bound already
                    return
                may_exist = True  # from here on, this attempt may have reached Esper
                created = await self.api.create(record.esper_device_id, record.operation,
                                                record.command_args)
                self._succeeded()
                await self._bound(tracked, created, adopted=False)
                return
            except EsperAuthError as err:
                self._auth_failed(err)
                await self._end(tracked, _C.FAILURE, _auth_reason(err, self._config, record,
                                                                  None))
                return
            except EsperRejected as err:
                await self._end(tracked, _C.FAILURE,
                                f"Esper rejected the {record.operation} command for device "
                                f"{record.esper_device_id}: {err}")
                return
            except EsperUnavailable as err:
                failures += 1
                await self._back_off(err, failures)
            except asyncio.CancelledError:
                raise
            except Exception:  # a background task: log, keep trying, never leak
                failures += 1
                log.exception("creating the Esper request of command %s failed",
                              record.command_id)
                await asyncio.sleep(self._backoff_s(failures))

    async def _find_existing(self, record: records.EsperRecord) -> Any | None:
        """The Esper request an earlier attempt made for this command, if any: same device,
        command and args, created after the intent, and not another command's (the earliest
        such, if an operator sent the same one too)."""
        since = record.intent_at - _CLOCK_SKEW
        candidates = []
        for request in await self.api.requests_for(record.esper_device_id, record.operation):
            args = request.command_args.to_dict() if request.command_args else {}
            created = request.created_on
            # Every arg sent, as sent (Esper may add fields of its own to what it keeps).
            if (request.id and request.command == record.operation
                    and record.esper_device_id in (request.devices or [])
                    and all(args.get(k) == v for k, v in record.command_args.items())
                    and (created is None or _aware(created) >= since)):
                candidates.append(request)
        self._succeeded()
        if not candidates:
            return None
        taken = await run_db(self._engine, records.bound_request_ids, self._engine,
                             [c.id for c in candidates])
        free = [c for c in candidates if c.id not in taken]
        free.sort(key=lambda c: (c.created_on is None, c.created_on and _aware(c.created_on)))
        return free[0] if free else None

    async def _bound(self, tracked: _Tracked, request: Any, *, adopted: bool) -> None:
        await run_db(self._engine, records.bind_request, self._engine, tracked.command_id,
                     request.id)
        tracked.request_id = request.id
        tracked.task = None
        if adopted:
            log.info("command %s: found its Esper request %s (an earlier answer was lost); "
                     "not sending it again", tracked.command_id, request.id)
        # The create's answer counts the device's state: report it, then poll from here.
        for summary in request.status or []:
            if summary.state and (summary.total or 0) > 0:
                await self._report(tracked, summary.state, "", {})
        tracked.next_poll = time.monotonic() + tracked.interval_s
        self._wake.set()

    # ---- following --------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while self._running:
            self._wake.clear()
            now = time.monotonic()
            due = sorted((t for t in self._tracked.values()
                          if t.request_id and not t.polling and t.next_poll <= now),
                         key=lambda t: t.next_poll)
            for tracked in due:
                await self._in_flight.acquire()
                if tracked.command_id not in self._tracked:
                    self._in_flight.release()
                    continue
                tracked.polling = True
                self._spawn(self._poll(tracked), f"esper:status:{tracked.command_id}")
            waits = [t.next_poll for t in self._tracked.values() if t.request_id and not t.polling]
            timeout = max(0.01, min(waits) - time.monotonic()) if waits else 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(timeout, 1.0))
            except TimeoutError:
                pass

    async def _poll(self, tracked: _Tracked) -> None:
        assert tracked.request_id is not None
        record = tracked.record
        try:
            results = await self.api.status(tracked.request_id, record.esper_device_id)
            self._succeeded()
            mine = [r for r in results if r.device in (None, record.esper_device_id)]
            changed = False
            if mine:
                latest = max(mine, key=lambda r: (r.updated_on is not None, r.updated_on))
                changed = await self._report(
                    tracked, latest.state, latest.reason or "", {"esper_command_id": latest.id})
            tracked.interval_s = (self._config.poll_interval_s if changed else
                                  min(tracked.interval_s * 2, self._config.poll_max_interval_s))
            tracked.next_poll = time.monotonic() + tracked.interval_s
        except EsperAuthError as err:
            self._auth_failed(err)
            await self._end(tracked, _C.FAILURE,
                            _auth_reason(err, self._config, record, tracked.request_id))
        except EsperRejected as err:
            await self._end(tracked, _C.FAILURE,
                            f"Esper refused the status of request {tracked.request_id} for "
                            f"device {record.esper_device_id}: {err}")
        except EsperUnavailable as err:
            tracked.failures += 1
            self._unavailable_now(err)
            tracked.next_poll = time.monotonic() + self._backoff_s(tracked.failures)
        except Exception:
            log.exception("polling Esper request %s failed", tracked.request_id)
            tracked.next_poll = time.monotonic() + self._config.poll_max_interval_s
        else:
            tracked.failures = 0
        finally:
            tracked.polling = False
            self._in_flight.release()

    async def _report(self, tracked: _Tracked, state: str, reason: str,
                      output: dict[str, Any]) -> bool:
        """Deliver the status Esper reports if it moves the command forward; True if it did.
        A status the store could not take is reported again at the next poll."""
        status = status_of(state)
        if status == tracked.status or not can_transition(RunKind.COMMAND, tracked.status,
                                                          status):
            return False
        if status in (_C.FAILURE, _C.TIMEOUT, _C.CANCELLED) and not reason:
            reason = f"Esper reported {state}"
        out = {"esper_request_id": tracked.request_id, "esper_state": state, **output}
        event = CommandEvent(command_id=tracked.command_id, status=str(status), reason=reason,
                             output=out, at_epoch=time.time())
        if not await self._deliver(tracked.command_id, [event]):
            return False
        tracked.status = status
        if is_terminal(RunKind.COMMAND, status):
            await run_db(self._engine, records.mark_ended, self._engine, tracked.command_id)
            self._untrack(tracked)
        return True

    async def _end(self, tracked: _Tracked, status: str, reason: str) -> None:
        """End a command fleetpipe-side (Esper refused it, or it was cancelled before it
        reached Esper)."""
        event = CommandEvent(command_id=tracked.command_id, status=str(status), reason=reason,
                             output={"esper_request_id": tracked.request_id},
                             at_epoch=time.time())
        await self._deliver(tracked.command_id, [event])
        await run_db(self._engine, records.mark_ended, self._engine, tracked.command_id)
        self._untrack(tracked)

    async def _deliver(self, command_id: str, events: list[CommandEvent]) -> bool:
        for attempt in range(1, _DELIVERY_ATTEMPTS + 1):
            try:
                await self._sink.deliver(command_id, events)
                return True
            except UnknownCommand:
                log.warning("command %s is unknown to the store; its events are dropped",
                            command_id)
                return True
            except Exception as err:
                if attempt == _DELIVERY_ATTEMPTS:
                    log.error("could not record events of command %s (%s); the next poll "
                              "reports them again", command_id, err)
                    return False
                await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt))
        return False

    # ---- leases ----------------------------------------------------------------------------
    async def _keep_leases(self) -> None:
        """Renew this worker's leases, drop commands the store ended (a target run that timed
        out) or another worker took, and adopt the ones nobody drives."""
        while self._running:
            await asyncio.sleep(self._config.lease_s / 3)
            try:
                ids = list(self._tracked)
                held = await run_db(self._engine, records.renew, self._engine, ids,
                                    self._owner, self._config.lease_s)
                ended = await run_db(self._engine, records.ended_in_store, self._engine, ids)
                for cid in ids:
                    tracked = self._tracked.get(cid)
                    if tracked is None:
                        continue
                    if cid in ended:
                        await run_db(self._engine, records.mark_ended, self._engine, cid)
                        self._untrack(tracked)
                    elif cid not in held:
                        log.warning("command %s was adopted by another worker", cid)
                        self._untrack(tracked)
                await self._adopt()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("keeping the Esper command leases failed; trying again")

    async def _adopt(self) -> None:
        adopted = await run_db(self._engine, records.adopt, self._engine, self._owner,
                               self._config.lease_s)
        for record in adopted:
            if record.command_id not in self._tracked:
                self._track(record)

    # ---- errors ------------------------------------------------------------------------------
    def _auth_failed(self, err: EsperAuthError) -> None:
        if not self._auth_failing:
            self._auth_failing = True
            log.error("Esper refused fleetpipe's API key (%s): every command sent now fails. "
                      "Set FLEETPIPE_ESPER_API_KEY to a valid key of enterprise %s at %s "
                      "(logged once until a call succeeds)", err, self._config.enterprise_id,
                      self._config.url)

    def _unavailable_now(self, err: EsperUnavailable) -> None:
        if err.status == 429 or err.retry_after_s:
            self.api.pacer.hold(err.retry_after_s or self._config.retry_base_s)
        if not self._unavailable:
            self._unavailable = True
            log.warning("Esper is unavailable (%s); retrying with backoff, nothing is lost "
                        "(logged once until a call succeeds)", err)

    def _succeeded(self) -> None:
        if self._unavailable or self._auth_failing:
            log.info("Esper answers again")
        self._unavailable = self._auth_failing = False

    async def _back_off(self, err: EsperUnavailable, failures: int) -> None:
        self._unavailable_now(err)
        await asyncio.sleep(max(err.retry_after_s or 0.0, self._backoff_s(failures)))

    def _backoff_s(self, failures: int) -> float:
        return min(self._config.retry_max_s, self._config.retry_base_s * 2 ** (failures - 1))

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _untrack(self, tracked: _Tracked) -> None:
        if self._tracked.get(tracked.command_id) is tracked:
            del self._tracked[tracked.command_id]
        current = asyncio.current_task()
        if tracked.task is not None and tracked.task is not current:
            tracked.task.cancel()
        tracked.task = None

    @property
    def tracked(self) -> set[str]:
        """The commands this worker drives now (for tests and the operator's view)."""
        return set(self._tracked)


def _auth_reason(err: EsperError, config: EsperConfig, record: records.EsperRecord,
                 request_id: str | None) -> str:
    where = (f"nothing was sent to device {record.esper_device_id}" if request_id is None else
             f"Esper request {request_id} may still run on device {record.esper_device_id}")
    return (f"Esper refused fleetpipe's API key ({err}): set FLEETPIPE_ESPER_API_KEY to a "
            f"valid key of enterprise {config.enterprise_id}; {where}")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
