"""A run's event stream as Server-Sent Events: replayed from its log (after the client's last
event id), then followed live on the process's shared tail (api.streams.hub), ending after the
run's terminal status change with an `end` event.

`run_event_response` serves it; a router for another API shape passes its own `render` to
write the same items in its own event format, under its own path.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.streams.hub import RunFeed, Subscription
from domain.statuses import RunKind, is_terminal
from store.runs import reads
from store.runs.feed import LogEntry, events_of_runs
from store.runs.tables import ACTION_EVENT, COMMAND_EVENT

REPLAY_PAGE = 1_000


@dataclass(frozen=True)
class StreamEnd:
    """The last item of a stream: the run ended (its final status) and nothing follows."""

    pipeline_run_id: UUID
    status: str
    last_event_id: int


StreamItem = LogEntry | StreamEnd
Renderer = Callable[[StreamItem], ServerSentEvent]


class BadLastEventId(ValueError):
    """A Last-Event-ID that is not a non-negative integer."""


def parse_last_event_id(*values: str | int | None) -> int:
    """The first given of the `Last-Event-ID` header and the `last_event_id` query parameter,
    as the id to resume after (0: from the start)."""
    for value in values:
        if value is None or value == "":
            continue
        try:
            parsed = int(value)
        except ValueError:
            raise BadLastEventId(f"Last-Event-ID must be a non-negative integer (an event's "
                                 f"id:), got {value!r}") from None
        if parsed < 0:
            raise BadLastEventId(f"Last-Event-ID must be a non-negative integer, got {parsed}")
        return parsed
    return 0


def ends_run(entry: LogEntry) -> bool:
    return entry.kind == RunKind.PIPELINE.value and is_terminal(RunKind.PIPELINE,
                                                                entry.to_status)


async def _replay(engine: Engine, run_id: UUID, after: int,
                  upto: int | None) -> AsyncIterator[list[LogEntry]]:
    while True:
        page = await asyncio.to_thread(events_of_runs, engine, [run_id], after, upto,
                                       REPLAY_PAGE)
        if page:
            yield page
        if len(page) < REPLAY_PAGE:
            return
        after = page[-1].id


def _run_status(engine: Engine, enterprise_id: UUID, run_id: UUID) -> str:
    """The run's status; NotFound (a 404) for an unknown run or another enterprise's."""
    with Session(engine) as session:
        return reads.get_pipeline_run(session, enterprise_id, run_id).status


class _Cursor:
    """Where a stream is: the last id sent, and the run's final status once its end was sent."""

    def __init__(self, after: int, final: str | None) -> None:
        self.last, self.final = after, final

    def take(self, entries: list[LogEntry | None]) -> list[LogEntry]:
        """The entries not sent yet, in order (None marks a queue that overflowed)."""
        fresh = []
        for entry in entries:
            if entry is not None and entry.id > self.last:
                self.last = entry.id
                if ends_run(entry):
                    self.final = entry.to_status
                fresh.append(entry)
        return fresh


def _drain(subscription: Subscription, first: LogEntry | None) -> list[LogEntry | None]:
    batch = [first]
    while not subscription.queue.empty():
        batch.append(subscription.queue.get_nowait())
    return batch


async def run_event_items(feed: RunFeed, engine: Engine, run_id: UUID, after: int,
                          status: str) -> AsyncIterator[list[StreamItem]]:
    """Every entry of the run's log after `after`, in order, each once, then StreamEnd once the
    run's terminal entry went out (`status`: the run's status when the client connected). In
    batches: whatever is at hand goes out together (a replayed page, a round of the tail)."""
    cursor = _Cursor(after, status if is_terminal(RunKind.PIPELINE, status) else None)
    if cursor.final is not None:  # ended already: its whole log is written, no need to follow
        async for page in _replay(engine, run_id, cursor.last, None):
            if fresh := cursor.take(list(page)):
                yield list(fresh)
        yield [StreamEnd(run_id, cursor.final, cursor.last)]
        return
    subscription = await feed.subscribe(run_id)
    try:
        while True:
            # From the store up to where the tail takes over, then from the tail.
            async for page in _replay(engine, run_id, cursor.last, subscription.start):
                if fresh := cursor.take(list(page)):
                    yield list(fresh)
            overflowed = False
            while cursor.final is None and not overflowed:
                batch = _drain(subscription, await subscription.queue.get())
                overflowed = None in batch  # fell behind: read on from the store, join again
                if fresh := cursor.take(batch):
                    yield list(fresh)
            if cursor.final is not None:
                # What came in the same round as the end (children closed with it) goes too.
                rest: list[StreamItem] = list(cursor.take(_drain(subscription, None)))
                yield [*rest, StreamEnd(run_id, cursor.final, cursor.last)]
                return
            feed.unsubscribe(subscription)
            subscription = await feed.subscribe(run_id)
    finally:
        feed.unsubscribe(subscription)


def event_data(entry: LogEntry) -> dict[str, Any]:
    """The native JSON of a log entry (the `data:` of its event)."""
    data: dict[str, Any] = {"pipeline_run_id": str(entry.pipeline_run_id),
                            "at": entry.at.isoformat()}
    if entry.kind == ACTION_EVENT:
        detail = entry.detail
        data.update(action=detail.get("action"), outcome=detail.get("outcome"),
                    message=detail.get("message", ""), action_id=detail.get("action_id"),
                    subject=detail.get("subject"), subject_id=detail.get("subject_id"),
                    key_id=detail.get("key_id"), actor=detail.get("actor"),
                    request=detail.get("request", {}))
        return data
    data.update(run_kind=entry.kind, run_id=str(entry.run_id), from_status=entry.from_status,
                to_status=entry.to_status, reason=entry.reason)
    if entry.kind == COMMAND_EVENT:
        data.update(run_kind=RunKind.TARGET.value, target_run_id=str(entry.run_id),
                    command_id=entry.detail.get("command_id"), command_status=entry.to_status,
                    output=entry.detail.get("output", {}),
                    sequence=entry.detail.get("sequence"))
    return data


def event_name(entry: LogEntry) -> str:
    return {COMMAND_EVENT: "command", ACTION_EVENT: "action"}.get(entry.kind, "status")


def native_event(item: StreamItem) -> ServerSentEvent:
    """fleetpipe's own format: `event:` status | command | action | end, `id:` the entry's
    number in the run's log, `data:` JSON."""
    if isinstance(item, StreamEnd):
        data = {"pipeline_run_id": str(item.pipeline_run_id), "status": item.status,
                "last_event_id": item.last_event_id}
        return ServerSentEvent(json.dumps(data), event="end", id=str(item.last_event_id))
    return ServerSentEvent(json.dumps(event_data(item)), event=event_name(item),
                           id=str(item.id))


class RenderedEntries:
    """Each entry rendered once, however many streams send it (a thousand subscribers of a run
    get the same bytes): the last `size` renderings, by renderer and entry id. One per store
    (ids are unique within a store only), kept with the store's feed."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._bytes: OrderedDict[tuple[Renderer, int], bytes] = OrderedDict()

    def get(self, render: Renderer, entry: LogEntry) -> bytes:
        key = (render, entry.id)
        found = self._bytes.get(key)
        if found is None:
            found = self._bytes[key] = render(entry).encode()
            if len(self._bytes) > self._size:
                self._bytes.popitem(last=False)
        return found


def run_feed(request: Request, engine: Engine) -> RunFeed:
    """The process's shared tail, made on first use."""
    state = request.app.state
    feed = getattr(state, "run_feed", None)
    if feed is None:
        settings = state.settings
        feed = RunFeed(engine, poll_seconds=settings.event_stream_poll_seconds,
                       gap_grace_seconds=settings.event_stream_gap_grace_seconds)
        state.run_feed = feed
        state.run_feed_rendered = RenderedEntries()
    return feed


async def run_event_response(request: Request, engine: Engine, enterprise_id: UUID,
                             run_id: UUID, last_event_id: int = 0, *,
                             render: Renderer = native_event) -> EventSourceResponse:
    """The run's event stream as a `text/event-stream` response. Raises store.tenancy.NotFound
    (before anything is sent) for an unknown run or another enterprise's."""
    status = await asyncio.to_thread(_run_status, engine, enterprise_id, run_id)
    feed = run_feed(request, engine)
    rendered: RenderedEntries = request.app.state.run_feed_rendered

    async def events() -> AsyncIterator[bytes]:
        async for batch in run_event_items(feed, engine, run_id, last_event_id, status):
            # One write for the batch: a thousand streams of a busy run, each a send per round.
            yield b"".join(render(item).encode() if isinstance(item, StreamEnd)
                           else rendered.get(render, item) for item in batch)

    return EventSourceResponse(
        events(), ping=request.app.state.settings.event_stream_keepalive_seconds)
