"""The threads that run store calls for async code (activities, the gateway, the relay).

One thread per SQLite database: SQLite takes one writer at a time, and with many threads each
transaction held the write lock while its thread waited for the GIL, so a dozen threads made
every write slower than one thread doing them in turn (measured: bench/ and docs/benchmarks.md).
PostgreSQL takes concurrent writers, so it gets a small pool.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

T = TypeVar("T")

POSTGRES_THREADS = 8
_executors: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def executor_for(engine: Engine) -> ThreadPoolExecutor:
    with _lock:
        found = _executors.get(id(engine))
        if found is None:
            threads = 1 if engine.dialect.name == "sqlite" else POSTGRES_THREADS
            found = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
            _executors[id(engine)] = found
        return found


async def run_db(engine: Engine, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store call on the engine's store threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor_for(engine),
                                      functools.partial(fn, *args, **kwargs))
