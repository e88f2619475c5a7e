"""A device as fleets run it: the AWS IoT Device SDK v2's jobs client (`awsiot.iotjobs`) over
the SDK's MQTT connection (awscrt), plain TCP to the broker. The SDK calls back on its own
threads; each answer resolves an asyncio future found by the request's clientToken."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from awscrt import io, mqtt
from awsiot import iotjobs

QOS = mqtt.QoS.AT_LEAST_ONCE
Answer = Any  # an iotjobs response, or iotjobs.RejectedError


class JobsDevice:
    def __init__(self, thing: str, host: str, port: int) -> None:
        self.thing = thing
        self._host, self._port = host, port
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self.notices: asyncio.Queue[iotjobs.NextJobExecutionChangedEvent] = asyncio.Queue()
        self.changes: asyncio.Queue[iotjobs.JobExecutionsChangedEvent] = asyncio.Queue()
        self.answers: list[Answer] = []  # every answer received, in order
        self.resumed = 0  # reconnects the SDK made by itself
        self._connection: mqtt.Connection | None = None
        self.jobs: iotjobs.IotJobsClient | None = None

    # ---- connection ----------------------------------------------------------------------
    async def connect(self) -> None:
        await asyncio.to_thread(self._connect)

    def _connect(self) -> None:
        group = io.EventLoopGroup(1)
        bootstrap = io.ClientBootstrap(group, io.DefaultHostResolver(group))
        self._connection = mqtt.Connection(
            mqtt.Client(bootstrap), host_name=self._host, port=self._port,
            client_id=f"{self.thing}-{uuid.uuid4().hex[:6]}", clean_session=True,
            keep_alive_secs=30, reconnect_min_timeout_secs=1, reconnect_max_timeout_secs=2,
            on_connection_resumed=self._on_resumed)
        self._connection.connect().result(15)
        jobs = iotjobs.IotJobsClient(self._connection)
        thing = self.thing
        subscriptions: list[tuple[Callable[..., tuple[Future[Any], str]], Any]] = [
            (jobs.subscribe_to_next_job_execution_changed_events,
             iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_job_executions_changed_events,
             iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_get_pending_job_executions_accepted,
             iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_get_pending_job_executions_rejected,
             iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_start_next_pending_job_execution_accepted,
             iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_start_next_pending_job_execution_rejected,
             iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing)),
            (jobs.subscribe_to_describe_job_execution_accepted,
             iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")),
            (jobs.subscribe_to_describe_job_execution_rejected,
             iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")),
            (jobs.subscribe_to_update_job_execution_accepted,
             iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")),
            (jobs.subscribe_to_update_job_execution_rejected,
             iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")),
        ]
        for subscribe, request in subscriptions:
            callback = self._on_event if "changed" in subscribe.__name__ else self._on_answer
            subscribed, _ = subscribe(request=request, qos=QOS, callback=callback)
            subscribed.result(15)
        self.jobs = jobs

    async def disconnect(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.to_thread(lambda: connection.disconnect().result(15))

    # ---- SDK callbacks (its threads) -----------------------------------------------------
    def _on_resumed(self, connection: mqtt.Connection, return_code: Any,
                    session_present: bool, **kwargs: Any) -> None:
        # As the SDK's samples do: a clean session lost its subscriptions with the broker.
        self.resumed += 1
        if not session_present:
            connection.resubscribe_existing_topics()

    def _on_answer(self, answer: Answer) -> None:
        self._loop.call_soon_threadsafe(self._resolve, answer)

    def _resolve(self, answer: Answer) -> None:
        self.answers.append(answer)
        waiting = self._waiting.pop(answer.client_token or "", None)
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    def _on_event(self, event: Any) -> None:
        queue = (self.notices if isinstance(event, iotjobs.NextJobExecutionChangedEvent)
                 else self.changes)
        self._loop.call_soon_threadsafe(queue.put_nowait, event)

    # ---- requests ------------------------------------------------------------------------
    async def _ask(self, publish: Callable[..., Future[Any]], request: Any,
                   timeout: float = 30.0) -> Answer:
        token = uuid.uuid4().hex
        request.client_token = token
        answer: asyncio.Future[Answer] = self._loop.create_future()
        self._waiting[token] = answer
        await asyncio.to_thread(lambda: publish(request, QOS).result(15))
        return await asyncio.wait_for(answer, timeout)

    async def get_pending(self) -> Answer:
        assert self.jobs is not None
        return await self._ask(self.jobs.publish_get_pending_job_executions,
                               iotjobs.GetPendingJobExecutionsRequest(thing_name=self.thing))

    async def start_next(self, details: dict[str, str] | None = None) -> Answer:
        assert self.jobs is not None
        return await self._ask(self.jobs.publish_start_next_pending_job_execution,
                               iotjobs.StartNextPendingJobExecutionRequest(
                                   thing_name=self.thing, status_details=details))

    async def describe(self, job_id: str) -> Answer:
        assert self.jobs is not None
        return await self._ask(self.jobs.publish_describe_job_execution,
                               iotjobs.DescribeJobExecutionRequest(
                                   thing_name=self.thing, job_id=job_id,
                                   include_job_document=True))

    async def update(self, job_id: str, status: str, details: dict[str, str] | None = None,
                     expected_version: int | None = None, timeout: float = 30.0) -> Answer:
        assert self.jobs is not None
        return await self._ask(self.jobs.publish_update_job_execution,
                               iotjobs.UpdateJobExecutionRequest(
                                   thing_name=self.thing, job_id=job_id, status=status,
                                   status_details=details, expected_version=expected_version,
                                   include_job_execution_state=True,
                                   include_job_document=True), timeout)

    async def next_notice(self, timeout: float = 30.0) -> iotjobs.NextJobExecutionChangedEvent:
        return await asyncio.wait_for(self.notices.get(), timeout)

    # ---- an agent --------------------------------------------------------------------------
    async def run_jobs(self, finish: Callable[[iotjobs.JobExecutionData],
                                              tuple[str, dict[str, str]]]) -> list[str]:
        """The SDK sample's loop: start-next, report IN_PROGRESS, then `finish(execution)`'s
        (status, statusDetails); again after each notify-next that names an execution.
        Returns the job ids it finished (runs until cancelled)."""
        done: list[str] = []
        while True:
            started = await self.start_next()
            execution = getattr(started, "execution", None)
            if execution is None:
                await self.notices.get()  # then start-next again: it takes what is next
                continue
            progress = await self.update(execution.job_id, "IN_PROGRESS", {"step": "started"},
                                         expected_version=execution.version_number)
            version = progress.execution_state.version_number
            status, details = finish(execution)
            await self.update(execution.job_id, status, details, expected_version=version)
            done.append(execution.job_id)
