"""The Temporal dev server started exactly as `fleetpipe dev` starts it: it answers, keeps its
state in a WAL-mode SQLite file, has our search attributes, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from cli.dev_stack import TEMPORAL_DB, temporal_answers, temporal_binary, temporal_command
from cli.processes import Supervisor
from workflows.names import SEARCH_ATTRIBUTES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _custom_search_attributes(address: str) -> set[str]:
    client = await Client.connect(address)
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    return set(response.custom_attributes)


def test_dev_server_answers_with_wal_sqlite_and_search_attributes(tmp_path: Path) -> None:
    port, ui_port = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    argv = temporal_command(temporal_binary(), tmp_path, "127.0.0.1", port, ui_port)
    supervisor = Supervisor(stop_timeout=20)
    server = supervisor.start("temporal", argv, log_path=tmp_path / "temporal.log")
    try:
        deadline = time.monotonic() + 60
        while not temporal_answers(address, "default"):
            supervisor.check_alive()
            assert time.monotonic() < deadline, "the dev server did not answer within 60s"
            time.sleep(0.25)

        with sqlite3.connect(tmp_path / TEMPORAL_DB) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert set(SEARCH_ATTRIBUTES) <= asyncio.run(_custom_search_attributes(address))
    finally:
        warnings = supervisor.stop_all()
    assert warnings == []
    assert server.popen.returncode is not None
