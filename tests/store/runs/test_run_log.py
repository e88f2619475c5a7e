"""The run's numbered log on both databases: applied command events and closings from outside
the workflow land in it, the run's terminal entry comes last, and ids are never reused."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.commands import CommandEvent
from store.definitions.tenants import ensure_enterprise
from store.runs.closing import close_run
from store.runs.events import record_command_events
from store.runs.tables import StatusEvent
from tests.api.runs_fixture import seed_runs

AT = datetime(2026, 2, 1, tzinfo=UTC)


def _log(engine: Engine, pipeline_run_id) -> list[StatusEvent]:  # noqa: ANN001
    with Session(engine) as session:
        return list(session.exec(select(StatusEvent).where(
            StatusEvent.pipeline_run_id == pipeline_run_id).order_by(col(StatusEvent.id))).all())


def test_applied_command_events_are_in_the_run_log_and_duplicates_are_not(engine: Engine):
    seeded = seed_runs(engine, ensure_enterprise(engine, "acme").id)
    assert seeded.command is not None
    command, run = seeded.command, seeded.runs[0]
    before = len(_log(engine, run.id))
    recorded = record_command_events(engine, command.id, [  # the command is inprogress
        CommandEvent(command_id=str(command.id), status="queued", sequence=5),  # backwards
        CommandEvent(command_id=str(command.id), status="success", sequence=6,
                     output={"version": "1.2.3"}),
        CommandEvent(command_id=str(command.id), status="success", sequence=6),  # duplicate
    ])
    assert [e.status for e in recorded.applied] == ["success"]
    logged = _log(engine, run.id)[before:]
    assert [(e.kind, e.from_status, e.to_status) for e in logged] == [
        ("command", "inprogress", "success")]
    assert logged[0].run_id == command.target_run_id
    assert logged[0].detail == {"command_id": str(command.id), "sequence": 6,
                                "output": {"version": "1.2.3"}}


def test_a_run_closed_from_outside_ends_its_log_with_its_own_terminal_entry(engine: Engine):
    seeded = seed_runs(engine, ensure_enterprise(engine, "acme").id)
    waiting = seeded.runs[1]  # waiting, with nothing under it
    first = seeded.runs[0]
    close_run(engine, first.id, "cancelled", "terminated", AT)
    log = _log(engine, first.id)
    kinds = {e.kind for e in log}
    assert {"stage_run", "target_run", "command"} <= kinds  # children and the open command
    assert all(e.kind != "pipeline_run" for e in log)  # it had ended already: no new entry
    close_run(engine, waiting.id, "cancelled", "terminated", AT)
    assert [(e.kind, e.to_status) for e in _log(engine, waiting.id)][-1] == (
        "pipeline_run", "cancelled")


def test_ids_of_deleted_entries_are_never_handed_out_again(engine: Engine):
    table = StatusEvent.__table__  # type: ignore[attr-defined]
    row = {"pipeline_run_id": uuid4(), "kind": "pipeline_run", "run_id": uuid4(),
           "from_status": "pending", "to_status": "queued", "reason": "", "at": AT}
    with engine.begin() as connection:
        first = connection.execute(insert(table).values(**row).returning(table.c.id)
                                   ).scalar_one()
        connection.execute(delete(table).where(table.c.id == first))
    with engine.begin() as connection:
        second = connection.execute(insert(table).values(**row).returning(table.c.id)
                                    ).scalar_one()
    assert second > first
