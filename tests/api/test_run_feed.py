"""The shared tail of the run logs (api.streams.hub) on real SQLite and PostgreSQL: every
subscriber of a run gets each new entry once, in id order; a row committed after a higher one
(PostgreSQL) is not overtaken; and the number of queries does not grow with the subscribers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from api.streams import hub
from api.streams.hub import RunFeed, Subscription
from api.streams.run_events import StreamEnd, run_event_items
from store.runs.feed import LogEntry
from store.runs.tables import StatusEvent

_LOG = StatusEvent.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 12, 1, tzinfo=UTC)
GUARD = 30.0


def _row(run_id: UUID, to_status: str) -> dict:
    return {"pipeline_run_id": run_id, "kind": "pipeline_run", "run_id": run_id,
            "from_status": "", "to_status": to_status, "reason": "", "at": AT}


def write(engine: Engine, run_id: UUID, *statuses: str) -> None:
    with engine.begin() as connection:
        connection.execute(insert(_LOG), [_row(run_id, s) for s in statuses])


async def take(subscription: Subscription, count: int) -> list[LogEntry]:
    got: list[LogEntry] = []
    async with asyncio.timeout(GUARD):
        while len(got) < count:
            item = await subscription.queue.get()
            assert item is not None
            got.append(item)
    return got


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_every_subscriber_gets_each_new_entry_of_its_run_once_in_order(
        engine: Engine) -> None:
    feed = RunFeed(engine, poll_seconds=0.02, gap_grace_seconds=5)
    run, other = uuid4(), uuid4()
    write(engine, run, "queued")  # before anyone follows: a replay's business, not the tail's
    first, second = await feed.subscribe(run), await feed.subscribe(run)
    elsewhere = await feed.subscribe(other)
    try:
        write(engine, run, "processing", "running")
        write(engine, other, "queued")
        write(engine, run, "complete")
        for subscription in (first, second):
            got = await take(subscription, 3)
            assert [e.to_status for e in got] == ["processing", "running", "complete"]
            assert [e.id for e in got] == sorted(e.id for e in got)
            assert all(e.id > subscription.start for e in got)
        assert [e.to_status for e in await take(elsewhere, 1)] == ["queued"]
        await asyncio.sleep(0.1)
        assert first.queue.empty() and second.queue.empty()  # nothing twice
    finally:
        for subscription in (first, second, elsewhere):
            feed.unsubscribe(subscription)
        await feed.close()


async def test_queries_do_not_grow_with_subscribers(engine: Engine) -> None:
    """Idle rounds cost one narrow query each, with 1 subscriber or 300."""
    feed = RunFeed(engine, poll_seconds=0.02, gap_grace_seconds=5)
    run = uuid4()
    subscriptions = [await feed.subscribe(run) for _ in range(300)]
    try:
        await asyncio.sleep(0.1)
        with counted(engine) as statements:
            rounds = feed.rounds
            await asyncio.sleep(0.5)
            rounds = feed.rounds - rounds
        assert rounds > 0
        assert len(statements) <= rounds + 1  # one per round (a round may straddle the edge)
        write(engine, run, "queued")
        got = await asyncio.gather(*(take(s, 1) for s in subscriptions))
        assert {entries[0].to_status for entries in got} == {"queued"}
    finally:
        for subscription in subscriptions:
            feed.unsubscribe(subscription)
        await feed.close()


async def test_an_idle_feed_stops_reading(sqlite_engine: Engine) -> None:
    feed = RunFeed(sqlite_engine, poll_seconds=0.02)
    subscription = await feed.subscribe(uuid4())
    feed.unsubscribe(subscription)
    await asyncio.sleep(0.2)
    with counted(sqlite_engine) as statements:
        await asyncio.sleep(0.3)
    assert statements == []
    await feed.close()


async def test_a_row_committed_after_a_higher_one_is_not_overtaken(
        postgres_engine: Engine) -> None:
    """PostgreSQL hands out ids at insert and commits in any order: the tail holds at the hole
    until the lower row commits, then hands out both in id order."""
    feed = RunFeed(postgres_engine, poll_seconds=0.02, gap_grace_seconds=30)
    run = uuid4()
    subscription = await feed.subscribe(run)
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with postgres_engine.begin() as connection:
            connection.execute(insert(_LOG), [_row(run, "slow")])
            inserted.set()
            release.wait(GUARD)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert await asyncio.to_thread(inserted.wait, GUARD)
        write(postgres_engine, run, "fast")  # a higher id, committed first
        await asyncio.sleep(0.3)  # several rounds
        assert subscription.queue.empty()
        release.set()
        got = await take(subscription, 2)
        assert [e.to_status for e in got] == ["slow", "fast"]
    finally:
        release.set()
        await asyncio.to_thread(writer.join)
        feed.unsubscribe(subscription)
        await feed.close()


async def test_a_hole_that_never_fills_is_passed_after_the_grace(
        postgres_engine: Engine) -> None:
    feed = RunFeed(postgres_engine, poll_seconds=0.02, gap_grace_seconds=0.3)
    run = uuid4()
    subscription = await feed.subscribe(run)
    try:
        with pytest.raises(RuntimeError), postgres_engine.begin() as connection:
            connection.execute(insert(_LOG), [_row(run, "rolled back")])
            raise RuntimeError("roll back")
        write(postgres_engine, run, "kept")
        got = await take(subscription, 1)
        assert [e.to_status for e in got] == ["kept"]
    finally:
        feed.unsubscribe(subscription)
        await feed.close()


async def test_a_stream_that_falls_behind_reads_on_from_the_store_and_misses_nothing(
        sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "QUEUE_LIMIT", 3)
    feed = RunFeed(sqlite_engine, poll_seconds=0.02)
    run = uuid4()
    write(sqlite_engine, run, "queued", "processing")
    items = run_event_items(feed, sqlite_engine, run, 0, "running")
    got: list = []
    async with asyncio.timeout(GUARD):
        got += await anext(items)  # the replay
        write(sqlite_engine, run, *[f"step-{i}" for i in range(10)])  # more than the queue holds
        await asyncio.sleep(0.3)
        write(sqlite_engine, run, "success")
        async for batch in items:
            got += batch
    *entries, end = got
    assert isinstance(end, StreamEnd) and end.status == "success"
    with sqlite_engine.connect() as connection:
        ids = list(connection.execute(_LOG.select().with_only_columns(_LOG.c.id).where(
            _LOG.c.pipeline_run_id == run).order_by(_LOG.c.id)).scalars())
    assert [e.id for e in entries] == ids
    await feed.close()
