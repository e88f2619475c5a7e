"""Command events and the outbox (store.runs.events) on SQLite and PostgreSQL: events are kept,
only forward moves apply."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from domain.commands import CommandEvent
from store.db import transaction
from store.runs.commands import CommandEvent as CommandEventRow
from store.runs.commands import UnknownCommand, load_open_command, open_commands
from store.runs.events import mark_signalled, pending_signals, record_command_events
from tests.builders import Rows


def ev(command_id: str, status: str, sequence: int | None = None, **kw: Any) -> CommandEvent:
    return CommandEvent(command_id=command_id, status=status, sequence=sequence, **kw)


def stored(engine: Engine, command_id: str) -> list[tuple[str, int | None, bool]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(CommandEventRow)
            .where(col(CommandEventRow.command_id) == uuid.UUID(command_id))
            .order_by(col(CommandEventRow.id))
        ).scalars()
        return [(r.status, r.sequence, r.applied) for r in rows]


def test_forward_events_apply_and_update_the_command(rows: Rows) -> None:
    cid = rows.command().command_id
    recorded = record_command_events(rows.engine, cid, [
        ev(cid, "queued", 0), ev(cid, "initiated", 1),
        ev(cid, "failure", 2, reason="disk full", output={"error": "ENOSPC"}),
    ])
    assert [e.status for e in recorded.applied] == ["queued", "initiated", "failure"]
    assert recorded.status == "failure"
    assert all(e.at_epoch > 0 for e in recorded.applied)  # stamped when the gateway gave none
    row = rows.row(cid)
    assert (row.status, row.reason, row.output, row.last_sequence) == (
        "failure", "disk full", {"error": "ENOSPC"}, 2)
    assert stored(rows.engine, cid) == [("queued", 0, True), ("initiated", 1, True),
                                        ("failure", 2, True)]


def test_statuses_are_accepted_in_any_case(rows: Rows) -> None:
    cid = rows.command().command_id
    recorded = record_command_events(rows.engine, cid, [ev(cid, "QUEUED", 0)])
    assert [e.status for e in recorded.applied] == ["queued"]


def test_duplicates_are_kept_but_not_applied(rows: Rows) -> None:
    cid = rows.command().command_id
    record_command_events(rows.engine, cid, [ev(cid, "queued", 0), ev(cid, "initiated", 1)])
    again = record_command_events(rows.engine, cid, [ev(cid, "initiated", 1),
                                                     ev(cid, "acknowledged", 2)])
    assert [e.status for e in again.applied] == ["acknowledged"]
    assert stored(rows.engine, cid) == [("queued", 0, True), ("initiated", 1, True),
                                        ("initiated", 1, False), ("acknowledged", 2, True)]
    assert rows.row(cid).last_sequence == 2


def test_out_of_order_events_never_move_the_status_backwards(rows: Rows) -> None:
    cid = rows.command().command_id
    record_command_events(rows.engine, cid, [ev(cid, "inprogress", 3)])
    late = record_command_events(rows.engine, cid, [ev(cid, "queued", 0),
                                                    ev(cid, "acknowledged", 2)])
    assert late.applied == [] and late.status == "inprogress"
    # Without sequence numbers the transition rules alone keep it forward.
    unnumbered = record_command_events(rows.engine, cid, [ev(cid, "initiated")])
    assert unnumbered.applied == [] and rows.row(cid).status == "inprogress"
    assert [applied for *_, applied in stored(rows.engine, cid)] == [True, False, False, False]


def test_a_terminal_status_never_changes(rows: Rows) -> None:
    cid = rows.command().command_id
    record_command_events(rows.engine, cid, [ev(cid, "success", 4, output={"ok": True})])
    after = record_command_events(rows.engine, cid, [
        ev(cid, "failure", 5, reason="late"), ev(cid, "cancelled", 6), ev(cid, "inprogress"),
    ])
    assert after.applied == []
    row = rows.row(cid)
    assert (row.status, row.reason, row.last_sequence) == ("success", "", 4)
    assert len(stored(rows.engine, cid)) == 4  # every event is still kept


def test_an_unknown_command_is_a_clear_error(rows: Rows) -> None:
    for bad in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(UnknownCommand) as caught:
            record_command_events(rows.engine, bad, [ev(bad, "queued", 0)])
        assert caught.value.command_id == bad


def test_an_unknown_status_writes_nothing(rows: Rows) -> None:
    cid = rows.command().command_id
    with pytest.raises(ValueError, match="allowed: scheduled, queued"):
        record_command_events(rows.engine, cid, [ev(cid, "queued", 0), ev(cid, "exploded", 1)])
    assert stored(rows.engine, cid) == [] and rows.row(cid).status == "scheduled"


def test_racing_deliveries_apply_each_event_once(rows: Rows) -> None:
    cid = rows.command().command_id
    batch = [ev(cid, "queued", 0), ev(cid, "initiated", 1), ev(cid, "inprogress", 2)]
    applied: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def deliver() -> None:
        start.wait()
        try:
            applied.extend(e.status for e in record_command_events(rows.engine, cid, batch).applied)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(applied) == sorted(["queued", "initiated", "inprogress"])
    assert len(stored(rows.engine, cid)) == 18


def test_applied_events_are_owed_to_the_workflow_until_marked_signalled(rows: Rows) -> None:
    tr = uuid.uuid4()
    cid = rows.command(target_run_id=tr).command_id
    first = record_command_events(rows.engine, cid, [ev(cid, "queued", 0)])
    assert first.signal.target_run_id == str(tr)
    assert [e.status for e in first.signal.events] == ["queued"]
    # Not marked (the signal failed): the next delivery carries it again, even a duplicate one.
    again = record_command_events(rows.engine, cid, [ev(cid, "queued", 0)])
    assert again.applied == [] and [e.status for e in again.signal.events] == ["queued"]
    assert [[e.status for e in b.events] for b in pending_signals(rows.engine)] == [["queued"]]
    mark_signalled(rows.engine, again.signal.outbox_ids)
    assert pending_signals(rows.engine) == []
    nothing = record_command_events(rows.engine, cid, [ev(cid, "queued", 0)])
    assert nothing.signal.events == []


def test_open_commands_are_the_sent_unfinished_ones_of_a_gateway(rows: Rows) -> None:
    device = rows.device(sim_behavior="offline")
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    open_one = rows.command(device, gateway="simulated", sent_at=sent, status="queued",
                            last_sequence=0).command_id
    rows.command(device, gateway="simulated")  # not sent yet
    rows.command(device, gateway="simulated", sent_at=sent, status="success")
    rows.command(device, gateway="mdm", sent_at=sent, status="queued")
    found = open_commands(rows.engine, "simulated")
    assert [c.command_id for c in found] == [open_one]
    assert found[0].device_attributes == {"sim_behavior": "offline"}
    assert (found[0].status, found[0].last_sequence, found[0].sent_at) == ("queued", 0, sent)
    assert load_open_command(rows.engine, open_one) == found[0]
    assert load_open_command(rows.engine, str(uuid.uuid4())) is None
