"""Group commit: the units of work that callers submit while the store thread is busy are
committed together, in one SQLite transaction, instead of one transaction each.

SQLite takes one writer at a time and the store has one thread for it (store/executor.py), so
units wait their turn anyway; the ones waiting share the next transaction, which saves each its
own begin/commit and its own hand-off to the store thread and back (per target: the dispatch's
two writes, the simulated device's claim, the relay's record and clear, the final statuses;
docs/benchmarks.md, issue 14). Each caller still returns only once its unit is committed, so
every guarantee of a unit's own transaction holds. A unit that raises fails alone: the group is
rolled back and each of its units runs again in a transaction of its own.

PostgreSQL takes concurrent writers: there, each unit keeps a transaction of its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import transaction
from store.executor import run_db

T = TypeVar("T")
Unit = Callable[[Session], Any]
# A bound on one transaction's work: what one group of in-flight targets brings at once.
MAX_GROUP = 100


async def run_unit(engine: Engine, unit: Callable[[Session], T]) -> T:
    """Run `unit(session)` in a committed transaction on the store thread; with SQLite, in
    the same transaction as the other units waiting for the store thread."""
    if engine.dialect.name != "sqlite":
        ok, value = (await run_db(engine, _commit_each, engine, [unit]))[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value
    loop = asyncio.get_running_loop()
    groups = _groups.setdefault(loop, {})
    group = groups.get(id(engine))
    if group is None:
        group = groups[id(engine)] = _Group(engine, loop)
    return await group.submit(unit)  # type: ignore[no-any-return]


class _Group:
    """The units of one engine waiting for the store thread, and the task that commits them."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self._waiting: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None

    def submit(self, unit: Unit) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._waiting.append((unit, future))
        if self._committing is None or self._committing.done():
            self._committing = self.loop.create_task(self._commit_waiting())
        return future

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                outcomes = await run_db(self.engine, _commit_together, self.engine,
                                        [unit for unit, _ in batch])
            except BaseException as err:  # cancelled at shutdown: nobody waits for ever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err if isinstance(err, Exception)
                                             else RuntimeError("store group commit stopped"))
                raise
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled; the unit is committed anyway
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)


# Per event loop (tests run several), per engine.
_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Group]] = (
    weakref.WeakKeyDictionary())


def _commit_together(engine: Engine, units: list[Unit]) -> list[tuple[bool, Any]]:
    """Every unit in one transaction; if one raises, each in its own (so it fails alone)."""
    if len(units) == 1:
        return _commit_each(engine, units)
    try:
        with transaction(engine) as session:
            results = []
            for unit in units:
                results.append(unit(session))
                # The next unit reads rows, not objects another unit loaded or changed.
                session.flush()
                session.expunge_all()
        return [(True, result) for result in results]
    except Exception:
        return _commit_each(engine, units)


def _commit_each(engine: Engine, units: list[Unit]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for unit in units:
        try:
            with transaction(engine) as session:
                outcomes.append((True, unit(session)))
        except Exception as err:
            outcomes.append((False, err))
    return outcomes
