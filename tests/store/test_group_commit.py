"""store.group_commit on SQLite and PostgreSQL: units submitted together all commit (on SQLite
in order), each caller gets its own result, and a unit that raises fails alone."""

from __future__ import annotations

import asyncio
import time
import uuid

from domain.commands import CommandEvent
from store.group_commit import run_unit
from store.runs.commands import UnknownCommand
from store.runs.events import RecordedEvents, record_command_events_in
from store.types import utcnow
from tests.builders import Rows


def _recording(command_id: str, status: str, sequence: int):  # noqa: ANN202 (a unit)
    event = CommandEvent(command_id=command_id, status=status, sequence=sequence,
                         at_epoch=time.time())
    return lambda session: record_command_events_in(session, command_id, [event])


async def test_units_submitted_together_all_commit_and_each_caller_gets_its_result(
        rows: Rows) -> None:
    commands = [rows.command(sent_at=utcnow()) for _ in range(30)]
    recorded: list[RecordedEvents] = await asyncio.gather(*(
        run_unit(rows.engine, _recording(command.command_id, "queued", 0))
        for command in commands))
    assert [r.target_run_id for r in recorded] == [c.target_run_id for c in commands]
    assert {rows.row(command.command_id).status for command in commands} == {"queued"}


async def test_a_later_unit_sees_what_an_earlier_one_of_its_group_wrote(
        sqlite_rows: Rows) -> None:
    """SQLite: in submission order (PostgreSQL runs them concurrently, as before)."""
    rows = sqlite_rows
    command = rows.command(sent_at=utcnow())
    walk = ["queued", "initiated", "acknowledged", "inprogress", "success"]
    recorded = await asyncio.gather(*(
        run_unit(rows.engine, _recording(command.command_id, status, sequence))
        for sequence, status in enumerate(walk)))
    assert [r.status for r in recorded] == walk  # each applied on top of the one before
    assert rows.row(command.command_id).status == "success"


async def test_a_unit_that_raises_fails_alone(rows: Rows) -> None:
    good = [rows.command(sent_at=utcnow()) for _ in range(5)]
    unknown = str(uuid.uuid4())
    outcomes = await asyncio.gather(
        *(run_unit(rows.engine, _recording(command.command_id, "queued", 0))
          for command in good[:2]),
        run_unit(rows.engine, _recording(unknown, "queued", 0)),
        *(run_unit(rows.engine, _recording(command.command_id, "queued", 0))
          for command in good[2:]),
        return_exceptions=True)
    assert isinstance(outcomes[2], UnknownCommand)
    assert all(isinstance(o, RecordedEvents) for i, o in enumerate(outcomes) if i != 2)
    assert {rows.row(command.command_id).status for command in good} == {"queued"}


async def test_units_from_another_event_loop_commit_too(sqlite_rows: Rows) -> None:
    """A worker restarted in the same process (tests do it) runs its units on its own loop."""
    command = sqlite_rows.command(sent_at=utcnow())

    def in_a_new_loop() -> RecordedEvents:
        return asyncio.run(run_unit(sqlite_rows.engine,
                                    _recording(command.command_id, "queued", 0)))

    assert (await asyncio.to_thread(in_a_new_loop)).status == "queued"
