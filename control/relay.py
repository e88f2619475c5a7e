"""Command events from any gateway: recorded in the store, then signalled to the owning workflow.

The simulated fleet (in process) and the API's device-event endpoint both deliver here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.commands import CommandEvent
from domain.ids import target_run_workflow_id
from domain.statuses import RunKind, is_terminal
from observability.logs import log_fields
from observability.metrics import COMMAND_LATENCY
from store.executor import run_db
from store.group_commit import run_unit
from store.runs.events import (
    RecordedEvents,
    ReportBuilder,
    SignalBatch,
    mark_signalled_in,
    pending_signals,
    record_command_events_in,
    record_report_in,
)
from workflows.messages import CommandEvents
from workflows.target_run import TargetRunWorkflow

log = logging.getLogger(__name__)


class CommandEventRelay:
    """An EventSink: the store decides what applies; only applied events become a signal."""

    def __init__(self, engine: Engine, client: Client) -> None:
        self._engine = engine
        self._client = client
        # Outbox rows this relay is signalling now: a resend round (or another delivery for
        # the same target) that reads them before they are cleared leaves them to that send,
        # instead of signalling the workflow twice.
        self._sending: set[int] = set()

    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        await self.record_and_signal(command_id, events)

    async def record_and_signal(
        self, command_id: UUID | str, events: Sequence[CommandEvent]
    ) -> RecordedEvents:
        """Record the events and signal what applied (plus anything an earlier call still owes).

        Raises UnknownCommand / ValueError from the store, and RPCError when Temporal refuses
        the signal for a reason other than a missing workflow: the events are kept either way,
        and the signal is owed until a later delivery or `resend_pending` gets it through.
        """
        return await self._record_then_signal(
            lambda session: record_command_events_in(session, command_id, list(events)),
            command_id)

    async def record_report_and_signal(self, command_id: UUID | str,
                                       build: ReportBuilder) -> RecordedEvents:
        """A report judged under the command's lock (store.runs.events.record_report), then
        signalled like any gateway's events. What `build` raises comes back unrecorded."""
        return await self._record_then_signal(
            lambda session: record_report_in(session, command_id, build), command_id)

    async def _record_then_signal(self, record: Callable[[Session], RecordedEvents],
                                  command_id: UUID | str) -> RecordedEvents:
        with log_fields(command_id=str(command_id)):
            # With the other deliveries waiting for the store, in one transaction.
            recorded = await run_unit(self._engine, record)
            _observe_latency(recorded)
            with log_fields(target_run_id=recorded.target_run_id):
                await self._signal(recorded.signal)
        return recorded

    async def resend_pending(self) -> int:
        """Signal every applied event still owed (e.g. after a crash); returns how many went.
        Raises the first refusal once every other owed batch was tried."""
        sent = 0
        while True:
            batches = self._not_in_flight(
                await run_db(self._engine, pending_signals, self._engine))
            failed: list[Exception] = []
            for batch in batches:
                try:
                    await self._signal(batch)
                except Exception as err:  # the others still go; this one stays owed
                    failed.append(err)
                else:
                    sent += len(batch.events)
            if failed:
                raise failed[0]
            if not batches:
                return sent

    async def keep_resending(self, interval: float, max_interval: float = 60.0) -> None:
        """Resend owed signals every `interval` seconds until cancelled; while Temporal refuses
        them the wait doubles, up to `max_interval`. An owed signal is dropped only once its
        workflow is closed or not found (`_signal`), never for the time it has waited."""
        wait = interval
        while True:
            await asyncio.sleep(wait)
            try:
                if await self.resend_pending():
                    log.info("resent owed command-event signals")
                wait = interval
            except Exception as err:
                wait = min(max_interval, wait * 2)
                log.warning("resending owed command-event signals failed (%s); next try in "
                            "%.0f s", err, wait)

    def _not_in_flight(self, batches: list[SignalBatch]) -> list[SignalBatch]:
        return [b for b in (_without(batch, self._sending) for batch in batches) if b.events]

    async def _signal(self, batch: SignalBatch) -> None:
        batch = _without(batch, self._sending)
        if not batch.events:
            return  # nothing changed (or it is being sent already): no signal, no event
        ids = set(batch.outbox_ids)
        self._sending |= ids
        try:
            await self._send(batch)
        finally:
            self._sending -= ids

    async def _send(self, batch: SignalBatch) -> None:
        workflow_id = target_run_workflow_id(batch.target_run_id)
        try:
            await self._client.get_workflow_handle(workflow_id).signal(
                TargetRunWorkflow.on_command_events, CommandEvents(events=batch.events)
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # The run ended or never started: the store keeps the events, nobody is waiting.
            log.info("no open workflow %s for %d command event(s); kept in the store only",
                     workflow_id, len(batch.events))
        await run_unit(self._engine, lambda session: mark_signalled_in(session, batch.outbox_ids))


def _without(batch: SignalBatch, sending: set[int]) -> SignalBatch:
    """`batch` less the events whose outbox rows are being signalled already."""
    if not sending.intersection(batch.outbox_ids):
        return batch
    kept = [(event, row) for event, row in zip(batch.events, batch.outbox_ids, strict=True)
            if row not in sending]
    return SignalBatch(batch.target_run_id, [event for event, _ in kept],
                       [row for _, row in kept])


def _observe_latency(recorded: RecordedEvents) -> None:
    """Dispatch to final status, once: only the call that applied the final event observes."""
    final = [event for event in recorded.applied if is_terminal(RunKind.COMMAND, event.status)]
    if not final or recorded.sent_at is None:
        return
    seconds = max(0.0, final[-1].at_epoch - recorded.sent_at.timestamp())  # both UTC
    COMMAND_LATENCY.labels(status=final[-1].status, gateway=recorded.gateway or "unknown"
                           ).observe(seconds)
