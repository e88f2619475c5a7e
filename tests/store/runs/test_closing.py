"""Closing a run from outside its workflow, on both databases: every open row ends, forward
only, and closing again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from store.db import transaction
from store.definitions.tenants import ensure_enterprise
from store.runs.closing import close_run, open_parts, runs_left_open
from store.runs.commands import Command, command_events
from store.runs.tables import PipelineRun, StageRun, TargetRun
from tests.api.runs_fixture import seed_runs

AT = datetime(2026, 2, 1, tzinfo=UTC)


def _statuses(engine: Engine, model, ids) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        return [session.get_one(model, i).status for i in ids]


def test_closing_a_run_ends_its_open_stage_runs_target_runs_and_commands(engine: Engine):
    seeded = seed_runs(engine, ensure_enterprise(engine, "acme").id)
    first = seeded.runs[0]  # success, but its "fleet" stage run and some targets are open
    assert str(first.id) in runs_left_open(engine, created_before=AT)
    parts = open_parts(engine, first.id)
    assert seeded.command is not None and parts.command_ids == [str(seeded.command.id)]
    assert parts.target_run_ids == [str(seeded.target_runs[2].id)]  # started and open
    closed = close_run(engine, first.id, "cancelled", "its workflow was terminated", AT)
    assert closed.pipeline_status == "success"  # an ended run keeps its status
    assert (closed.stage_runs, closed.target_runs, closed.commands) == (1, 2, 1)
    assert _statuses(engine, StageRun, [s.id for s in seeded.stage_runs]) == [
        "success", "cancelled"]
    # running (dispatched) can only fail; pending is cancelled; ended ones stay as they were
    assert _statuses(engine, TargetRun, [t.id for t in seeded.target_runs]) == [
        "success", "failure", "failure", "success", "cancelled", "cancelled"]
    with transaction(engine) as session:
        running = session.get_one(TargetRun, seeded.target_runs[2].id)
        command = session.get_one(Command, seeded.command.id)
        assert running.command_status == "cancelled"
        assert running.status_reason == "its workflow was terminated"
        assert command.status == "cancelled" and command.cancel_requested_at is not None
        assert command_events(session, command.id)[-1].reason == "its workflow was terminated"
    again = close_run(engine, first.id, "failure", "again", AT)
    assert (again.stage_runs, again.target_runs, again.commands) == (0, 0, 0)
    assert str(first.id) not in runs_left_open(engine, created_before=AT)


def test_a_failed_run_ends_failure_and_what_never_ran_is_cancelled(engine: Engine):
    seeded = seed_runs(engine, ensure_enterprise(engine, "acme").id)
    waiting, pending = seeded.runs[1], seeded.runs[2]
    assert close_run(engine, waiting.id, "failure", "boom", AT).pipeline_status == "failure"
    assert close_run(engine, pending.id, "failure", "boom", AT).pipeline_status == "cancelled"
    assert _statuses(engine, PipelineRun, [waiting.id, pending.id]) == ["failure", "cancelled"]
    # Only the first run is left: ended itself, but with a stage run and target runs open.
    assert runs_left_open(engine, created_before=AT) == [str(seeded.runs[0].id)]
