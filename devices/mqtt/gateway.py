"""MqttJobsGateway: fleetpipe as the AWS IoT Jobs service over an MQTT broker.

A command is a job execution (jobId = command id) kept in the store (devices/mqtt/tables.py).
Devices read and change it with the Jobs requests (`get`, `start-next`, `{jobId}/get`,
`{jobId}/update`); every change becomes a command event for the run, with the execution's
version as the event's sequence, so a late or repeated report moves nothing back.

Two connections: every worker publishes `notify` / `notify-next` on its own; the worker that
holds the responder lease also answers requests, on a connection whose client id and broker
session belong to the lease (so requests sent while it reconnects or hands over wait in the
broker, and a second responder with the same id would push the first off the broker).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from devices.mqtt import executions as store
from devices.mqtt.broker import BrokerAddress
from devices.mqtt.jobs import (
    DescribeRequest,
    Execution,
    Rejection,
    StartNextRequest,
    UpdateRequest,
    client_token_of,
    command_event_fields,
    execution_payload,
    next_execution,
    notify_next_payload,
    notify_payload,
    pending_payload,
    read_request,
    rejected_payload,
    state_payload,
    with_token,
)
from devices.mqtt.lease import claim_lease, release_lease
from devices.mqtt.link import BrokerLink
from devices.mqtt.tables import create_tables
from devices.mqtt.topics import DESCRIBE, GET, START_NEXT, UPDATE, Request, Topics
from domain.commands import CommandEvent, DeviceCommand
from domain.gateway import EventSink
from domain.statuses import CommandStatus
from store.executor import run_db
from store.runs.commands import UnknownCommand

log = logging.getLogger(__name__)
T = TypeVar("T")


class BrokerUnreachable(RuntimeError):
    """The broker did not answer when the gateway started."""


class MqttJobsGateway:
    """A DeviceGateway for AWS IoT Jobs devices behind an MQTT broker."""

    def __init__(self, engine: Engine, sink: EventSink, broker: BrokerAddress, topics: Topics,
                 *, name: str = "mqtt", responder_name: str | None = None,
                 lease_ttl_s: float = 15.0, sweep_interval_s: float = 10.0,
                 connect_timeout_s: float = 15.0, session_expiry_s: int = 300,
                 shards: int = 16, retry_attempts: int = 6, retry_base_s: float = 0.2) -> None:
        self.name = name
        self._engine = engine
        self._sink = sink
        self._broker = broker
        self._topics = topics
        # One responder per topic root (and store): the lease's name and the broker session.
        self._responder_name = responder_name or hashlib.sha256(
            f"{topics.root}|{engine.url}".encode()).hexdigest()[:16]
        self._holder = f"{uuid.uuid4().hex[:12]}"
        self._lease_ttl_s = lease_ttl_s
        self._sweep_interval_s = sweep_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._session_expiry_s = session_expiry_s
        self._retry_attempts = retry_attempts
        self._retry_base_s = retry_base_s
        self._holds_lease = False
        self.notifier = BrokerLink(broker, f"fleetpipe-notify-{self._holder}")
        self.responder: BrokerLink | None = None
        self._responder_task: asyncio.Task[None] | None = None
        self._queues: list[asyncio.Queue[tuple[Request, bytes]]] = [
            asyncio.Queue() for _ in range(shards)]
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reporting: Counter[str] = Counter()  # reports in flight here, per job id
        self.requests_answered = 0  # for tests: answers this worker published

    # ---- DeviceGateway ---------------------------------------------------------------------
    async def send(self, command: DeviceCommand) -> None:
        try:
            change = await self._db(store.queue_execution, self._engine, command, time.time())
        except store.NoThingName as exc:
            log.error("command %s cannot reach its device: %s", command.command_id, exc)
            await self._deliver(command.command_id, [CommandEvent(
                command_id=command.command_id, status=CommandStatus.FAILURE, reason=str(exc),
                at_epoch=time.time())])
            return
        if change is None:
            return  # queued already: the command id is the job id
        self._notify(change)
        self._spawn(self._report(change.execution), f"mqtt-report:{command.command_id}")

    async def cancel(self, command_id: str) -> None:
        change = await self._db(store.cancel_execution, self._engine, command_id, time.time())
        if change is None:
            log.info("cancel of %s: no pending job execution", command_id)
            return
        self._notify(change)
        await self._report(change.execution)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the tables, connect (refusing if the broker does not answer), take the
        responder lease if free, and carry on with what an earlier process left: events owed
        to runs, and devices that may have missed their notifications."""
        await self._db(create_tables, self._engine)
        self._spawn(self.notifier.run(), "mqtt-notifier")
        try:
            await asyncio.wait_for(self.notifier.ready.wait(), self._connect_timeout_s)
        except TimeoutError:
            await self.stop()
            raise BrokerUnreachable(
                f"the MQTT broker at {self._broker} did not answer within "
                f"{self._connect_timeout_s:.0f} s: check FLEETPIPE_MQTT_URL") from None
        for index, queue in enumerate(self._queues):
            self._spawn(self._serve_shard(queue), f"mqtt-shard:{index}")
        await self._renew_lease()
        if self.responder is not None:
            try:
                await asyncio.wait_for(self.responder.ready.wait(), self._connect_timeout_s)
            except TimeoutError:
                await self.stop()
                raise BrokerUnreachable(
                    f"the MQTT broker at {self._broker} did not take the responder's "
                    "subscriptions: check the broker's access rules for the topic root") from None
        self._spawn(self._lease_loop(), "mqtt-lease")
        self._spawn(self._sweep_loop(), "mqtt-sweep")
        for thing in await self._db(store.things_with_pending, self._engine):
            pending = await self._db(store.pending_executions, self._engine, thing)
            self._publish_notices(thing, pending)
        log.info("MQTT gateway on %s under %s/; responder: %s", self._broker,
                 self._topics.root, "this worker" if self._holds_lease else "another worker")

    async def stop(self) -> None:
        for link in (self.responder, self.notifier):
            if link is not None:
                await link.flush(timeout_s=2.0)
        tasks = list(self._tasks)
        if self._responder_task is not None:
            tasks.append(self._responder_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._holds_lease:
            self._holds_lease = False
            try:
                await self._db(release_lease, self._engine, self._responder_name, self._holder)
            except Exception as exc:  # it expires on its own
                log.warning("could not release the MQTT responder lease: %s", exc)

    @property
    def responding(self) -> bool:
        return self._holds_lease

    # ---- the responder lease ---------------------------------------------------------------
    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl_s / 3)
            await self._renew_lease()

    async def _renew_lease(self) -> None:
        try:
            held = await self._db(claim_lease, self._engine, self._responder_name,
                                  self._holder, self._lease_ttl_s, time.time())
        except Exception as exc:
            # Unrenewed, it expires and another worker may take it: stop answering now.
            log.warning("could not renew the MQTT responder lease (%s); not answering", exc)
            held = False
        if held and not self._holds_lease:
            log.info("this worker answers the devices' Jobs requests")
            self._holds_lease = True
            self.responder = BrokerLink(
                self._broker, f"fleetpipe-jobs-{self._responder_name}",
                filters=tuple(self._topics.request_filters()), on_message=self._on_request,
                session_expiry_s=self._session_expiry_s, may_connect=lambda: self._holds_lease)
            self._responder_task = asyncio.create_task(self.responder.run(),
                                                       name="mqtt-responder")
        elif not held and self._holds_lease:
            log.warning("the MQTT responder lease moved to another worker")
            self._holds_lease = False
            if self._responder_task is not None:
                self._responder_task.cancel()
                await asyncio.gather(self._responder_task, return_exceptions=True)
                self._responder_task = None

    # ---- device requests -------------------------------------------------------------------
    async def _on_request(self, topic: str, payload: bytes) -> None:
        request = self._topics.parse(topic)
        if request is None:
            return
        # One queue per thing (by hash): a device's requests are handled in the order sent.
        index = zlib.crc32(request.thing.encode()) % len(self._queues)
        self._queues[index].put_nowait((request, payload))

    async def _serve_shard(self, queue: asyncio.Queue[tuple[Request, bytes]]) -> None:
        while True:
            request, payload = await queue.get()
            try:
                await self._answer(request, payload)
            except Exception:  # one bad request never stops the others
                log.exception("answering %s failed", request.topic)

    async def _answer(self, request: Request, payload: bytes) -> None:
        now = time.time()
        token: str | None = None
        change: store.Change | None = None
        try:
            body = read_request(payload)
            token = client_token_of(body)
            answer, change = await self._handle(request, body, now)
        except Rejection as rejection:
            self._respond(request, False, rejected_payload(rejection, token, now))
            return
        self._respond(request, True, with_token(answer, token))
        if change is not None:
            self._notify(change)
            await self._report(change.execution)

    async def _handle(self, request: Request, body: dict[str, Any],
                      now: float) -> tuple[dict[str, Any], store.Change | None]:
        thing = request.thing
        answer: dict[str, Any] = {"timestamp": int(now)}
        if request.operation == GET:
            pending = await self._db(store.pending_executions, self._engine, thing)
            return pending_payload(pending, now), None
        if request.operation == START_NEXT:
            change = await self._db(store.start_next_execution, self._engine, thing,
                                    StartNextRequest.read(body), now)
            if change is not None:
                answer["execution"] = execution_payload(change.execution)
            return answer, change
        if request.operation == DESCRIBE:
            describe = DescribeRequest.read(body)
            found = await self._db(store.describe_execution, self._engine, thing,
                                   request.job_id, describe)
            if found is not None:
                answer["execution"] = execution_payload(found, describe.include_job_document)
            return answer, None
        assert request.operation == UPDATE
        update = UpdateRequest.read(body)
        change = await self._db(store.update_execution, self._engine, thing, request.job_id,
                                update, now)
        if update.include_job_execution_state:
            answer["executionState"] = state_payload(change.execution)
        if update.include_job_document:
            answer["jobDocument"] = change.execution.job_document
        return answer, change

    def _respond(self, request: Request, accepted: bool, body: dict[str, Any]) -> None:
        link = self.responder or self.notifier
        link.publish(request.answer_topic(accepted), body)
        self.requests_answered += 1

    # ---- notifications ---------------------------------------------------------------------
    def _notify(self, change: store.Change) -> None:
        """`notify` when the thing's pending list changed, `notify-next` when its next
        execution did."""
        def shape(pending: list[Execution]) -> list[tuple[str, str]]:
            return [(e.job_id, e.status) for e in pending]

        def next_id(pending: list[Execution]) -> str | None:
            following = next_execution(pending)
            return following.job_id if following else None

        thing, now = change.execution.thing_name, time.time()
        if shape(change.before) != shape(change.after):
            self.notifier.publish(self._topics.notify(thing), notify_payload(change.after, now))
        if next_id(change.before) != next_id(change.after):
            self.notifier.publish(self._topics.notify_next(thing),
                                  notify_next_payload(change.after, now))

    def _publish_notices(self, thing: str, pending: list[Execution]) -> None:
        now = time.time()
        self.notifier.publish(self._topics.notify(thing), notify_payload(pending, now))
        self.notifier.publish(self._topics.notify_next(thing), notify_next_payload(pending, now))

    # ---- command events --------------------------------------------------------------------
    async def _report(self, execution: Execution) -> None:
        """Pass the execution's status on as a command event (its version is the sequence),
        then mark it reported; left unreported, the sweep tries again."""
        # Never skipped: two reports of one job may overlap, and the store keeps the newer.
        self._reporting[execution.job_id] += 1
        try:
            status, reason, output = command_event_fields(execution)
            delivered = await self._deliver(execution.job_id, [CommandEvent(
                command_id=execution.job_id, status=status, reason=reason, output=output,
                sequence=execution.version_number, at_epoch=execution.last_updated_at)])
            if delivered:
                await self._db(store.mark_reported, self._engine, execution.job_id,
                               execution.version_number)
        finally:
            self._reporting[execution.job_id] -= 1
            if not self._reporting[execution.job_id]:
                del self._reporting[execution.job_id]

    async def _deliver(self, command_id: str, events: list[CommandEvent]) -> bool:
        for attempt in range(1, self._retry_attempts + 1):
            try:
                await self._sink.deliver(command_id, events)
                return True
            except UnknownCommand:
                log.warning("command %s is unknown to the store; its events are dropped",
                            command_id)
                return True
            except Exception as err:
                if attempt == self._retry_attempts:
                    log.error("delivering events of command %s failed %d times (%s); the "
                              "sweep tries again", command_id, attempt, err)
                    return False
                delay = self._retry_base_s * 2 ** (attempt - 1)
                log.warning("delivering events of command %s failed (%s); retry in %.1f s",
                            command_id, err, delay)
                await asyncio.sleep(delay)
        return False

    async def _sweep_loop(self) -> None:
        """Events the store owes to runs (a crash between a change and its report, a sink
        that was down): now at start, then every sweep interval."""
        while True:
            try:
                for execution in await self._db(store.unreported_executions, self._engine):
                    if execution.job_id not in self._reporting:  # in flight here already
                        await self._report(execution)
            except Exception:
                log.exception("the MQTT gateway's report sweep failed")
            await asyncio.sleep(self._sweep_interval_s)

    # ---- helpers ---------------------------------------------------------------------------
    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_db(self._engine, fn, *args)

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
