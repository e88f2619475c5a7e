"""One shared tail of the runs' logs per API process, fanned out to every stream.

A single poller reads what is new for all the runs someone follows, in two queries per round
whatever the number of subscribers (ids past the cursor, then the entries of the followed
runs), and puts each entry on the queues of that run's subscribers. With nobody following,
it stops: an idle API costs the database nothing.

Ids come from one sequence, but on PostgreSQL a transaction can commit after a later one, so
an id may appear after a higher one was read. The poller therefore only hands out entries up
to its *mark*: the highest id below which every id was seen. A hole in the ids holds the mark
until its row shows up or `gap_grace` seconds pass (a rolled-back transaction leaves a hole
that never fills); entries are handed out in id order, never one behind another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.engine import Engine

from store.runs.feed import LogEntry, events_of_runs, last_event_id, new_event_ids

log = logging.getLogger(__name__)

# One round reads at most this many new ids; a longer backlog takes further rounds at once.
ROUND_IDS = 5_000
# Runs per query of their entries (an IN list kept to a sane size).
RUNS_PER_QUERY = 500
# A subscriber this far behind is dropped from the live tail; it reads the rest from the store.
QUEUE_LIMIT = 10_000


@dataclass(eq=False)
class Subscription:
    """One stream's place on the tail: it reads entries up to `start` from the store itself,
    and gets every later entry of its run on `queue`."""

    run_id: UUID
    start: int
    # None on the queue: it overflowed (the stream fell too far behind); the stream re-reads
    # from the store where it was and joins the tail again.
    queue: asyncio.Queue[LogEntry | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False


class RunFeed:
    def __init__(self, engine: Engine, *, poll_seconds: float = 0.5,
                 gap_grace_seconds: float = 5.0) -> None:
        self._engine = engine
        self._poll = poll_seconds
        self._grace = gap_grace_seconds
        self._subscribers: dict[UUID, set[Subscription]] = {}
        self._mark: int | None = None
        self._holes: dict[int, float] = {}  # first missing id of a hole -> when first seen
        self._round = asyncio.Lock()  # a subscriber joins between rounds, never during one
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # how many rounds read the store (for tests and benchmarks)

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    async def subscribe(self, run_id: UUID) -> Subscription:
        async with self._round:
            if self._mark is None:
                self._mark = await asyncio.to_thread(last_event_id, self._engine)
            subscription = Subscription(run_id, self._mark)
            self._subscribers.setdefault(run_id, set()).add(subscription)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="run-feed")
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscribers.get(subscription.run_id)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscribers[subscription.run_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while self._subscribers:
            try:
                async with self._round:
                    caught_up = await self._one_round()
            except Exception:  # a database hiccup: streams wait, the next round retries
                log.exception("reading the run logs failed; retrying")
                caught_up = True
            if caught_up:
                await asyncio.sleep(self._poll)

    async def _one_round(self) -> bool:
        """Hand out what is new; False while a backlog remains (the next round comes now)."""
        assert self._mark is not None
        self.rounds += 1
        ids = await asyncio.to_thread(new_event_ids, self._engine, self._mark, ROUND_IDS)
        mark = self._advance(ids)
        followed = {run_id for i, run_id in ids if i <= mark and run_id in self._subscribers}
        if followed:
            runs = sorted(followed)
            entries: list[LogEntry] = []
            for start in range(0, len(runs), RUNS_PER_QUERY):
                entries += await asyncio.to_thread(
                    events_of_runs, self._engine, runs[start:start + RUNS_PER_QUERY],
                    self._mark, mark)
            entries.sort(key=lambda entry: entry.id)
            for entry in entries:
                for subscription in self._subscribers.get(entry.pipeline_run_id, ()):
                    self._deliver(subscription, entry)
        self._mark = mark
        # A full round read to its end is a backlog: go on at once (not while a hole holds).
        return len(ids) < ROUND_IDS or mark < ids[-1][0]

    def _advance(self, ids: list[tuple[int, UUID]]) -> int:
        """The new mark: past every id seen in order, and past holes older than the grace."""
        assert self._mark is not None
        mark, now = self._mark, time.monotonic()
        for entry_id, _ in ids:
            if entry_id > mark + 1:
                first_seen = self._holes.setdefault(mark + 1, now)
                if now - first_seen < self._grace:
                    break
            mark = entry_id
        self._holes = {hole: seen for hole, seen in self._holes.items() if hole > mark}
        return mark

    @staticmethod
    def _deliver(subscription: Subscription, entry: LogEntry) -> None:
        if subscription.overflowed:
            return
        if subscription.queue.qsize() >= QUEUE_LIMIT:
            subscription.overflowed = True
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            subscription.queue.put_nowait(None)
        else:
            subscription.queue.put_nowait(entry)
