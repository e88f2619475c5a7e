"""A fleet of simulated AWS IoT Jobs devices over a few MQTT connections, for benchmarks.

    .venv/bin/python -m bench.mqtt_fleet --prefix dev- --count 10000 --width 6 \
        --topic-root bench-1234/things --stats fleet.json

Each thing does what a Jobs agent does (the awsiotsdk device of docs/devices.md): on
`notify-next` with an execution it asks `start-next` (or, with `--mode get`, `{jobId}/get` and
then `{jobId}/update` IN_PROGRESS), waits `--latency-ms`, and reports `{jobId}/update`
SUCCEEDED with the version it was given as `expectedVersion`; every request carries a
clientToken. A request left unanswered for `--retry-after-s` is asked again as `start-next`
(which resumes a job in progress).

The things share `--connections` connections (each thing publishes on one of them, by hash).
Every connection subscribes with wildcards (`{root}/+/jobs/...`); with more than one connection
the subscriptions are MQTT 5 shared ones (`$share/<group>/...`), so the broker hands each
message to one connection, not to all. Mosquitto 2.0 does not deliver `$`-topics (the
default root `$aws/things`) to shared subscriptions: with such a root use one connection.

`--observe` adds one connection subscribed to `{root}/#` that counts every publication under
the root, the gateway's included: the broker's traffic for this fleet.

Counts (sent, received, jobs done, rejections by code, observed) go to `--stats` as JSON every
second and at exit (SIGTERM or SIGINT). It logs `fleet ready` once every subscription is
acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import signal
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devices.mqtt.broker import BrokerAddress  # noqa: E402
from devices.mqtt.topics import Topics, valid_thing_name  # noqa: E402

log = logging.getLogger("mqtt_fleet")
ANSWERS = ("notify-next", "start-next/accepted", "start-next/rejected", "+/get/accepted",
           "+/get/rejected", "+/update/accepted", "+/update/rejected")
SENDERS_PER_CONNECTION = 8


@dataclass
class Thing:
    """One device's state: the job it works on and the request it waits an answer for."""

    name: str
    link: int
    job_id: str | None = None
    waiting: str | None = None  # clientToken of the outstanding request
    asked_at: float = 0.0


@dataclass
class Counts:
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    received: collections.Counter[str] = field(default_factory=collections.Counter)
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    observed: collections.Counter[str] = field(default_factory=collections.Counter)
    started: int = 0
    succeeded: int = 0
    retries: int = 0
    stray: int = 0  # messages for a thing not in this fleet, or an answer nobody waits for

    def as_json(self, things: int, connections: int) -> dict[str, Any]:
        return {"things": things, "connections": connections, "started": self.started,
                "succeeded": self.succeeded, "retries": self.retries, "stray": self.stray,
                "sent_total": sum(self.sent.values()),
                "received_total": sum(self.received.values()),
                "observed_total": sum(self.observed.values()),
                "sent": dict(self.sent), "received": dict(self.received),
                "rejected": dict(self.rejected), "observed": dict(self.observed),
                "at": time.time()}


def kind_of(topic: str, root_depth: int) -> str:
    """A topic's kind without the thing and job: `start-next/accepted`, `update`, ..."""
    levels = topic.split("/")[root_depth:]
    if len(levels) < 3 or levels[1] != "jobs":
        return "other"
    rest = levels[2:]
    if rest[0] not in ("notify", "notify-next", "get", "start-next"):
        rest = rest[1:]  # {jobId}/get, {jobId}/update and their answers
    return "/".join(rest) or "other"


def refused_code(code: object) -> bool:
    """A SUBACK reason code of 0x80 or more refuses the subscription."""
    value = code.value if isinstance(code, ReasonCode) else code
    return isinstance(value, int) and value >= 0x80


class Fleet:
    def __init__(self, broker: BrokerAddress, topics: Topics, names: list[str], *,
                 connections: int, mode: str, latency_s: float, retry_after_s: float,
                 observe: bool) -> None:
        self.broker, self.topics = broker, topics
        self.root_depth = topics.root.count("/") + 1
        self.things = {name: Thing(name, zlib.crc32(name.encode()) % connections)
                       for name in names}
        self.connections, self.mode = connections, mode
        self.latency_s, self.retry_after_s, self.observe = latency_s, retry_after_s, observe
        self.counts = Counts()
        self.outboxes: list[asyncio.Queue[tuple[str, bytes]]] = [
            asyncio.Queue() for _ in range(connections)]
        self.subscribed = 0
        self.ready = asyncio.Event()
        self.run_id = uuid.uuid4().hex[:8]

    # ---- the connections ---------------------------------------------------------------
    def filters(self) -> list[str]:
        jobs = f"{self.topics.root}/+/jobs"
        plain = [f"{jobs}/{answer}" for answer in ANSWERS]
        if self.connections == 1:
            return plain
        return [f"$share/fleet-{self.run_id}/{f}" for f in plain]

    def client(self, client_id: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.broker.host, self.broker.port, username=self.broker.username,
            password=self.broker.password, identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5, tls_context=self.broker.tls_context(),
            keepalive=30, timeout=30)

    async def serve(self, index: int) -> None:
        async with self.client(f"fleet-{self.run_id}-{index}") as client:
            granted = await client.subscribe([(f, SubscribeOptions(qos=1))
                                              for f in self.filters()])
            refused = [f for f, code in zip(self.filters(), granted, strict=True)
                       if refused_code(code)]
            if refused:
                raise RuntimeError(f"the broker refused the subscriptions {refused}")
            self._subscribed()
            # A few publications in flight at once (each waits for its PUBACK); a thing has
            # one request out at a time, so its own order holds.
            senders = [asyncio.create_task(self._send(client, self.outboxes[index]))
                       for _ in range(SENDERS_PER_CONNECTION)]
            try:
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    self.on_message(str(message.topic), payload)
            finally:
                for sender in senders:
                    sender.cancel()

    async def watch(self) -> None:
        async with self.client(f"fleet-{self.run_id}-observer") as client:
            await client.subscribe(f"{self.topics.root}/#", qos=1)
            self._subscribed()
            async for message in client.messages:
                self.counts.observed[kind_of(str(message.topic), self.root_depth)] += 1

    def _subscribed(self) -> None:
        self.subscribed += 1
        if self.subscribed == self.connections + int(self.observe):
            self.ready.set()

    async def _send(self, client: aiomqtt.Client, outbox: asyncio.Queue[tuple[str, bytes]]
                    ) -> None:
        while True:
            topic, payload = await outbox.get()
            await client.publish(topic, payload, qos=1)

    # ---- a device's protocol -------------------------------------------------------------
    def request(self, thing: Thing, suffix: str, body: dict[str, Any]) -> None:
        token = uuid.uuid4().hex[:16]
        thing.waiting, thing.asked_at = token, time.monotonic()
        topic = f"{self.topics.root}/{thing.name}/jobs/{suffix}"
        self.counts.sent[kind_of(topic, self.root_depth)] += 1
        payload = json.dumps({**body, "clientToken": token}, separators=(",", ":")).encode()
        self.outboxes[thing.link].put_nowait((topic, payload))

    def start_next(self, thing: Thing) -> None:
        self.request(thing, "start-next", {})

    def on_message(self, topic: str, payload: bytes) -> None:
        kind = kind_of(topic, self.root_depth)
        self.counts.received[kind] += 1
        levels = topic.split("/")[self.root_depth:]
        thing = self.things.get(levels[0]) if levels else None
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            body = None
        if thing is None or not isinstance(body, dict):
            self.counts.stray += 1
            return
        if kind == "notify-next":
            execution = body.get("execution")
            if execution and thing.job_id is None and thing.waiting is None:
                self.take(thing, execution)
            return
        if body.get("clientToken") != thing.waiting:
            self.counts.stray += 1  # an answer to a request asked again since
            return
        thing.waiting = None
        if kind.endswith("/rejected"):
            self.on_rejected(thing, body)
        elif kind == "start-next/accepted":
            execution = body.get("execution")
            if execution:
                self.work(thing, execution["jobId"], execution["versionNumber"])
            else:
                thing.job_id = None
        elif kind == "get/accepted":
            execution = body.get("execution") or {}
            self.request(thing, f"{execution['jobId']}/update", {
                "status": "IN_PROGRESS", "expectedVersion": execution["versionNumber"],
                "includeJobExecutionState": True})
        elif kind == "update/accepted":
            state = body.get("executionState")
            if state and state["status"] == "IN_PROGRESS":  # --mode get: the job is ours
                assert thing.job_id is not None
                self.work(thing, thing.job_id, state["versionNumber"])
            else:
                self.counts.succeeded += 1
                thing.job_id = None

    def take(self, thing: Thing, execution: dict[str, Any]) -> None:
        thing.job_id = execution["jobId"]
        if self.mode == "start-next":
            self.start_next(thing)
        else:
            self.request(thing, f"{thing.job_id}/get", {"includeJobDocument": True})

    def work(self, thing: Thing, job_id: str, version: int) -> None:
        thing.job_id = job_id
        self.counts.started += 1
        update = {"status": "SUCCEEDED", "expectedVersion": version,
                  "statusDetails": {"result": "done"}}
        if self.latency_s > 0:
            asyncio.get_running_loop().call_later(
                self.latency_s, self.request, thing, f"{job_id}/update", update)
        else:
            self.request(thing, f"{job_id}/update", update)

    def on_rejected(self, thing: Thing, body: dict[str, Any]) -> None:
        self.counts.rejected[str(body.get("code"))] += 1
        state = body.get("executionState") or {}
        if state.get("status") in (None, "QUEUED", "IN_PROGRESS"):
            self.start_next(thing)  # a stale version or a lost job: ask for it again
        else:
            thing.job_id = None  # it ended (canceled): nothing to do

    async def retry_loop(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.retry_after_s / 4))
            due = time.monotonic() - self.retry_after_s
            for thing in self.things.values():
                if thing.waiting is not None and thing.asked_at < due:
                    self.counts.retries += 1
                    self.start_next(thing)


async def write_stats(fleet: Fleet, path: Path | None) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fleet.counts.as_json(len(fleet.things), fleet.connections)))
    os.replace(tmp, path)


async def run(args: argparse.Namespace, names: list[str]) -> None:
    topics = Topics(args.topic_root)
    fleet = Fleet(BrokerAddress.parse(args.broker), topics, names,
                  connections=args.connections, mode=args.mode,
                  latency_s=args.latency_ms / 1000, retry_after_s=args.retry_after_s,
                  observe=args.observe)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(fleet.serve(i))
                                      for i in range(args.connections)]
    if args.observe:
        tasks.append(asyncio.create_task(fleet.watch()))
    tasks.append(asyncio.create_task(fleet.retry_loop()))
    ready = asyncio.create_task(fleet.ready.wait())
    halt = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([ready, halt, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                task.result()  # a connection that failed: say why
        if fleet.ready.is_set():
            log.info("fleet ready: %d things on %d connection(s) under %s/ (mode %s)",
                     len(names), args.connections, topics.root, args.mode)
        while not stop.is_set():
            await write_stats(fleet, args.stats)
            for task in tasks:
                if task.done():
                    task.result()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        await write_stats(fleet, args.stats)
        for task in [*tasks, ready, halt]:
            task.cancel()
        await asyncio.gather(*tasks, ready, halt, return_exceptions=True)
        c = fleet.counts
        log.info("fleet stopped: %d started, %d succeeded, sent %d, received %d, observed %d, "
                 "rejected %s, retries %d", c.started, c.succeeded, sum(c.sent.values()),
                 sum(c.received.values()), sum(c.observed.values()), dict(c.rejected),
                 c.retries)


def thing_names(args: argparse.Namespace) -> list[str]:
    if args.things_file:
        names = [line.strip() for line in args.things_file.read_text().splitlines()
                 if line.strip()]
    else:
        names = [f"{args.prefix}{i:0{args.width}d}" for i in range(args.count)]
    bad = [n for n in names if not valid_thing_name(n)]
    if bad:
        raise SystemExit(f"mqtt_fleet: not a thing name (one topic level): {bad[:3]}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--topic-root", default="$aws/things",
                        help="FLEETPIPE_MQTT_TOPIC_ROOT of the worker")
    parser.add_argument("--things-file", type=Path, help="thing names, one a line")
    parser.add_argument("--prefix", default="dev-", help="thing names: PREFIX + a number")
    parser.add_argument("--count", type=int, default=0, help="how many numbered things")
    parser.add_argument("--width", type=int, default=6, help="digits of the number (zero-padded)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mode", choices=("start-next", "get"), default="start-next")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="how long a device works on a job before SUCCEEDED")
    parser.add_argument("--retry-after-s", type=float, default=60.0,
                        help="ask again (start-next) when a request is unanswered this long")
    parser.add_argument("--observe", action="store_true",
                        help="also count every publication under the root")
    parser.add_argument("--stats", type=Path, help="write the counts here (JSON)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.connections > 1 and args.topic_root.startswith("$"):
        parser.error(f"--topic-root {args.topic_root!r} starts with $: Mosquitto does not "
                     "deliver such topics to shared subscriptions; use --connections 1")
    names = thing_names(args)
    if not names:
        parser.error("no things: give --count N (with --prefix) or --things-file")
    asyncio.run(run(args, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
