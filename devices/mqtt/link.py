"""One MQTT connection that outlives the broker: it reconnects with backoff, subscribes again,
and publishes (QoS 1, in order) from a queue that keeps what a disconnect interrupted."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.mqtt.broker import BrokerAddress

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes], Awaitable[None]]
_PUBLISH_TIMEOUT_S = 10.0


class BrokerLink:
    def __init__(self, broker: BrokerAddress, client_id: str, *,
                 filters: tuple[str, ...] = (), on_message: OnMessage | None = None,
                 session_expiry_s: int = 0, may_connect: Callable[[], bool] = lambda: True,
                 max_backoff_s: float = 5.0) -> None:
        self._broker = broker
        self.client_id = client_id
        self._filters = filters
        self._on_message = on_message
        # Above 0: the broker keeps the session (subscriptions and QoS 1 messages) that long
        # after a disconnect, so what devices send while we reconnect waits for us.
        self._session_expiry_s = session_expiry_s
        self._may_connect = may_connect
        self._max_backoff_s = max_backoff_s
        self._queue: deque[tuple[str, bytes]] = deque()
        self._queued = asyncio.Event()
        self.ready = asyncio.Event()  # connected and subscribed
        self.connections = 0  # successful connects, for tests and logs

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        """Queue a QoS 1 publication; it goes out in order once connected."""
        self._queue.append((topic, json.dumps(body, separators=(",", ":")).encode()))
        self._queued.set()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """Connect, subscribe, serve; on any broker failure wait and do it again. Returns when
        `may_connect` says no more (or when cancelled)."""
        delay = 0.2
        while self._may_connect():
            try:
                async with self._client() as client:
                    for topic_filter in self._filters:
                        await client.subscribe(topic_filter, qos=1)
                    self.connections += 1
                    self.ready.set()
                    delay = 0.2
                    log.info("MQTT %s connected to %s (%d filter(s))", self.client_id,
                             self._broker, len(self._filters))
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT %s: broker %s failed (%s); reconnecting in %.1f s",
                            self.client_id, self._broker, exc, delay)
            finally:
                self.ready.clear()
            await asyncio.sleep(delay)
            delay = min(self._max_backoff_s, delay * 2)

    async def _serve(self, client: aiomqtt.Client) -> None:
        publisher = asyncio.create_task(self._drain(client), name=f"mqtt-out:{self.client_id}")
        try:
            async for message in client.messages:
                if self._on_message is not None:
                    payload = message.payload
                    await self._on_message(str(message.topic),
                                           payload if isinstance(payload, bytes) else b"")
                if not self._may_connect():
                    return  # no longer ours to serve (the responder lease moved)
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            topic, payload = self._queue[0]
            try:
                await client.publish(topic, payload, qos=1, timeout=_PUBLISH_TIMEOUT_S)
            except aiomqtt.MqttError as exc:
                # Kept at the head: sent again on this connection or the next one.
                log.debug("MQTT %s: publish to %s failed (%s)", self.client_id, topic, exc)
                await asyncio.sleep(0.5)
                continue
            self._queue.popleft()

    async def flush(self, timeout_s: float) -> None:
        """Wait (bounded) until everything queued has gone out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._queue and self.ready.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def _client(self) -> aiomqtt.Client:
        properties = None
        if self._session_expiry_s:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self._session_expiry_s
        return aiomqtt.Client(
            self._broker.host, self._broker.port, username=self._broker.username,
            password=self._broker.password, identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=not self._session_expiry_s,
            properties=properties, tls_context=self._broker.tls_context(), keepalive=15,
            timeout=10)
