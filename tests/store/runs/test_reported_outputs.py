"""What devices report beside the statuses (store.runs.events), on SQLite and PostgreSQL:
kept per event, accumulated on the target run while it is open, and a report judged under
the command's lock leaves nothing written when refused."""

from __future__ import annotations

from uuid import uuid5

import pytest
from sqlalchemy.engine import Engine

from domain.commands import CommandEvent
from domain.statuses import RunKind
from domain.update_run import ReportRefused, reported_command_status
from store.db import transaction
from store.runs import targets as stage_targets
from store.runs.commands import Command, command_events
from store.runs.events import pending_signals, record_command_events, record_report
from store.runs.tables import TargetRun
from tests.builders import INSTALL
from tests.store.runs.test_run_records import at, move, started_stage, targets


def _target_with_command(engine: Engine) -> tuple[TargetRun, str]:
    _, stage_run_id, _ = started_stage(engine, devices=1, operations=(INSTALL,))
    stage_targets.materialize_targets(engine, stage_run_id)
    [target] = targets(engine, stage_run_id)
    command_id = uuid5(target.id, "command:0")
    with transaction(engine) as session:
        session.add(Command(id=command_id, target_run_id=target.id,
                            enterprise_id=target.enterprise_id, device_id=target.target_id,
                            operation_type="INSTALL", status="queued"))
    return target, str(command_id)


def _target(engine: Engine, target: TargetRun) -> TargetRun:
    with transaction(engine) as session:
        row = session.get(TargetRun, target.id)
        assert row is not None
        session.expunge(row)
        return row


def ev(command_id: str, status: str, **data) -> CommandEvent:
    return CommandEvent(command_id=command_id, status=status, **data)


def test_reports_accumulate_on_the_target_run_while_it_is_open(engine: Engine) -> None:
    target, cid = _target_with_command(engine)
    fresh = _target(engine, target)
    assert (fresh.output_data, fresh.error, fresh.output_attachment_ids,
            fresh.run_message_history) == ({}, [], [], [])
    moved = record_command_events(engine, cid, [ev(
        cid, "inprogress", output={"progress": 10, "phase": "a"}, error=["warn 1"],
        output_attachment_ids=["x"], run_message_history=[{"n": 1}])])
    assert [e.status for e in moved.applied] == ["inprogress"] and moved.added == 1
    # the same status again: its data is kept, the status moves nothing and is not signalled
    same = record_command_events(engine, cid, [ev(
        cid, "inprogress", output={"progress": 90}, output_attachment_ids=["x", "y"],
        run_message_history=[{"n": 2}])])
    assert same.applied == [] and same.added == 1
    assert [len(b.events) for b in pending_signals(engine)] == [1]  # only the move
    row = _target(engine, target)
    assert row.output_data == {"progress": 90, "phase": "a"}
    assert row.error == ["warn 1"] and row.output_attachment_ids == ["x", "y"]
    assert row.run_message_history == [{"n": 1}, {"n": 2}]
    with transaction(engine) as session:
        events = command_events(session, uuid5(target.id, "command:0"))
        assert [(e.status, e.applied, e.run_message_history) for e in events] == [
            ("inprogress", True, [{"n": 1}]), ("inprogress", True, [{"n": 2}])]
        command = session.get(Command, events[0].command_id)
        assert command is not None and command.output == {"progress": 90, "phase": "a"}

    # Once the target run has ended its outputs stay as they were (the event is still kept).
    move(engine, RunKind.TARGET, target.id, "failure", at(5), "gone")
    late = record_command_events(engine, cid, [ev(cid, "failure", error=["late"])])
    assert late.status == "failure"
    assert _target(engine, target).error == ["warn 1"]


def test_a_refused_report_writes_nothing(engine: Engine) -> None:
    target, cid = _target_with_command(engine)
    record_command_events(engine, cid, [ev(cid, "success")])

    def build(command: Command, target_status: str) -> list[CommandEvent]:
        status = reported_command_status("running", target_status, command.status)
        return [ev(str(command.id), status, run_message_history=[{"too": "late"}])]

    with pytest.raises(ReportRefused) as caught:
        record_report(engine, cid, build)
    assert caught.value.current == "success"
    with transaction(engine) as session:
        assert [e.status for e in command_events(session, uuid5(target.id, "command:0"))] == [
            "success"]
    assert _target(engine, target).run_message_history == []


def test_a_report_sees_its_target_runs_status(engine: Engine) -> None:
    target, cid = _target_with_command(engine)
    seen: list[str] = []

    def build(command: Command, target_status: str) -> list[CommandEvent]:
        seen.append(target_status)
        return [ev(str(command.id), "inprogress")]

    recorded = record_report(engine, cid, build)
    assert seen == [target.status] and recorded.status == "inprogress"
