"""Sending a finished target run again, in the store (SQLite and PostgreSQL): a retry row for
the same device x operation, the old row superseded but otherwise untouched, roll-ups that count
only current rows, and the refusals (domain.retries)."""

from __future__ import annotations

from uuid import UUID, uuid5

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain import records
from domain.ids import target_run_id
from domain.retries import EARLIER_OPERATION_FAILED, failure_kind
from domain.statuses import RunKind
from store.db import transaction
from store.runs import reads, retries
from store.runs import targets as stage_targets
from store.runs.commands import Command, CommandEvent
from store.runs.tables import TargetRun
from tests.builders import INSTALL, REBOOT
from tests.store.runs.test_run_records import at, move, row, started_stage, targets


def _stage(engine: Engine, devices: int = 2, operations=(INSTALL,)):
    """A materialized stage run: (stage run id, its target rows by device then operation)."""
    _, stage_run_id, _ = started_stage(engine, devices=devices, operations=operations)
    stage_targets.materialize_targets(engine, stage_run_id)
    return stage_run_id, targets(engine, stage_run_id)


def _fail_with_command(engine: Engine, target: TargetRun, command_status: str = "failure",
                       status: str = "failure") -> UUID:
    """End a target run the way its workflow does after its command failed."""
    command_id = uuid5(target.id, "command:0")
    with transaction(engine) as session:
        session.add(Command(id=command_id, target_run_id=target.id,
                            enterprise_id=target.enterprise_id, device_id=target.target_id,
                            operation_type="INSTALL", status=command_status))
        session.add(CommandEvent(command_id=command_id, status="queued", sequence=1))
        session.add(CommandEvent(command_id=command_id, status=command_status, sequence=2))
    move(engine, RunKind.TARGET, target.id, status, at(1), "simulated device failure",
         command_id=command_id, command_status=command_status, attempt=0)
    return command_id


def test_generation_zero_is_the_id_of_today_and_each_retry_has_its_own():
    stage, device, op = UUID(int=1), UUID(int=2), UUID(int=3)
    assert target_run_id(stage, device, op) == uuid5(stage, f"target:{device}:{op}")
    assert target_run_id(stage, device, op, 0) == target_run_id(stage, device, op)
    ids = {target_run_id(stage, device, op, n) for n in range(4)}
    assert len(ids) == 4
    assert target_run_id(stage, str(device), str(op), 2) == target_run_id(stage, device, op, 2)


def test_a_retry_is_a_new_pending_row_and_the_old_one_keeps_its_end_and_command(engine):
    stage_run_id, rows = _stage(engine)
    old = rows[0]
    command_id = _fail_with_command(engine, old)
    before = row(engine, TargetRun, old.id)

    retried = retries.retry_target_run(engine, stage_run_id, old.id)

    new_id = target_run_id(stage_run_id, old.target_id, old.stage_run_operation_id, 1)
    assert retried == records.RetriedTarget(
        target_run_id=str(new_id), device_id=str(old.target_id), operation_order=0,
        generation=1, retry_of=str(old.id), replaced_status="failure",
        replaced_command_status="failure", device_name=old.device_name)
    new = row(engine, TargetRun, new_id)
    assert (new.status, new.retry_of, new.superseded_by, new.generation) == (
        "pending", old.id, None, 1)
    assert (new.command_id, new.command_status, new.attempt, new.started_at) == (
        None, None, 0, None)
    assert (new.target_id, new.device_seq, new.stage_run_operation_id, new.operation_order,
            new.device_name, new.device_alias, new.pipeline_run_id, new.enterprise_id) == (
        old.target_id, old.device_seq, old.stage_run_operation_id, old.operation_order,
        old.device_name, old.device_alias, old.pipeline_run_id, old.enterprise_id)
    after = row(engine, TargetRun, old.id)
    assert after.superseded_by == new_id and after.retry_of is None
    for name in ("status", "status_reason", "command_id", "command_status", "command_meta",
                 "attempt", "started_at", "ended_at", "generation"):
        assert getattr(after, name) == getattr(before, name), name
    with transaction(engine) as session:
        command = session.get(Command, command_id)
        assert command is not None and command.target_run_id == old.id
        assert command.status == "failure"
        assert len(session.exec(select(CommandEvent).where(
            CommandEvent.command_id == command_id)).all()) == 2
    assert len(targets(engine, stage_run_id)) == len(rows) + 1


def test_retrying_is_idempotent_and_a_retry_can_be_retried(engine):
    stage_run_id, rows = _stage(engine)
    old = rows[0]
    _fail_with_command(engine, old, command_status="timeout")
    first = retries.retry_target_run(engine, stage_run_id, old.id)
    again = retries.retry_target_run(engine, stage_run_id, old.id)  # a retried activity
    assert again == first
    assert len(targets(engine, stage_run_id)) == len(rows) + 1

    second_row = row(engine, TargetRun, UUID(first.target_run_id))
    move(engine, RunKind.TARGET, second_row.id, "cancelled", at(2), "cancelled by user")
    second = retries.retry_target_run(engine, stage_run_id, second_row.id)
    assert (second.generation, second.retry_of, second.replaced_status) == (
        2, first.target_run_id, "cancelled")
    assert second.target_run_id == str(
        target_run_id(stage_run_id, old.target_id, old.stage_run_operation_id, 2))
    assert len(targets(engine, stage_run_id)) == len(rows) + 2


@pytest.mark.parametrize("status", ["success", "pending", "dispatched", "running", "invalid"])
def test_only_failure_timeout_or_cancelled_can_be_sent_again(engine, status):
    stage_run_id, rows = _stage(engine)
    move(engine, RunKind.TARGET, rows[0].id, status, at(1))
    with pytest.raises(retries.RetryRefused) as refused:
        retries.retry_target_run(engine, stage_run_id, rows[0].id)
    assert f"is {status}" in str(refused.value)
    assert "failure, timeout, cancelled" in str(refused.value)
    assert refused.value.allowed == ["failure", "timeout", "cancelled"]
    assert len(targets(engine, stage_run_id)) == len(rows)
    assert row(engine, TargetRun, rows[0].id).superseded_by is None


@pytest.mark.parametrize("status", ["failure", "timeout", "cancelled"])
def test_each_retryable_status_can_be_sent_again(engine, status):
    stage_run_id, rows = _stage(engine)
    move(engine, RunKind.TARGET, rows[0].id, status, at(1))
    retried = retries.retry_target_run(engine, stage_run_id, rows[0].id)
    assert retried.replaced_status == status
    assert row(engine, TargetRun, UUID(retried.target_run_id)).status == "pending"


def test_a_superseded_target_run_is_refused_naming_its_successor(engine):
    stage_run_id, rows = _stage(engine)
    move(engine, RunKind.TARGET, rows[0].id, "failure", at(1))
    first = retries.retry_target_run(engine, stage_run_id, rows[0].id)
    # its successor ended and was sent again too: the first row is two steps back now
    move(engine, RunKind.TARGET, UUID(first.target_run_id), "failure", at(2))
    retries.retry_target_run(engine, stage_run_id, UUID(first.target_run_id))
    with transaction(engine) as session:
        # the idempotent path only answers for the row this very call would make
        stored = session.get(TargetRun, rows[0].id)
        assert stored is not None
        refusal = retries.retry_refusal(session, stored)
    assert refusal is not None and first.target_run_id in str(refusal)
    assert "already sent again" in str(refusal)


def test_an_unknown_or_foreign_target_run_is_not_found(engine):
    stage_run_id, rows = _stage(engine)
    other_stage, other_rows = _stage(engine)
    move(engine, RunKind.TARGET, other_rows[0].id, "failure", at(1))
    with pytest.raises(LookupError):
        retries.retry_target_run(engine, stage_run_id, other_rows[0].id)
    with pytest.raises(LookupError):
        retries.retry_target_run(engine, stage_run_id, UUID(int=7))
    assert row(engine, TargetRun, other_rows[0].id).superseded_by is None


def test_counts_leave_superseded_rows_out(engine):
    stage_run_id, rows = _stage(engine, devices=3)
    _fail_with_command(engine, rows[0])
    move(engine, RunKind.TARGET, rows[1].id, "success", at(1))
    move(engine, RunKind.TARGET, rows[2].id, "failure", at(1))
    assert stage_targets.target_counts(engine, stage_run_id) == {"failure": 2, "success": 1}

    retried = retries.retry_target_run(engine, stage_run_id, rows[0].id)
    assert stage_targets.target_counts(engine, stage_run_id) == {
        "failure": 1, "success": 1, "pending": 1}
    move(engine, RunKind.TARGET, UUID(retried.target_run_id), "success", at(3))
    assert stage_targets.target_counts(engine, stage_run_id) == {"failure": 1, "success": 2}
    with transaction(engine) as session:
        shown = reads.target_run_counts(session, [stage_run_id])[stage_run_id]
    assert (shown["success"], shown["failure"], shown["pending"]) == (2, 1, 0)
    assert sum(shown.values()) == 3  # one per device x operation, though four rows exist
    assert len(targets(engine, stage_run_id)) == 4


def test_retry_rows_are_not_paged_as_new_devices(engine):
    stage_run_id, rows = _stage(engine, devices=3)
    # the last device was cancelled before the stage reached it, then sent again
    stage_targets.close_pending_targets(engine, stage_run_id, "cancelled", "by user", at(1),
                             target_run_ids=[str(rows[2].id)])
    retries.retry_target_run(engine, stage_run_id, rows[2].id)
    page = stage_targets.next_target_page(engine, stage_run_id, -1, 10)
    assert page == [(0, str(rows[0].target_id)), (1, str(rows[1].target_id))]


# ---- a device's later operations ---------------------------------------------------------------
def _cascade(engine: Engine, stage_run_id: UUID, first: TargetRun, later: TargetRun) -> None:
    """The first operation failed; the stage ended the later one without running it."""
    _fail_with_command(engine, first)
    stage_targets.close_pending_targets(engine, stage_run_id, "failure",
                                        EARLIER_OPERATION_FAILED, at(2),
                                        target_run_ids=[str(later.id)])


def test_a_later_operation_ended_by_an_earlier_failure_is_not_sent_by_hand(engine):
    stage_run_id, rows = _stage(engine, devices=1, operations=(INSTALL, REBOOT))
    install, reboot = rows
    _cascade(engine, stage_run_id, install, reboot)
    with pytest.raises(retries.RetryRefused) as refused:
        retries.retry_target_run(engine, stage_run_id, reboot.id)
    assert f"operation 1 on its device has not succeeded (target run {install.id} is failure)" \
        in str(refused.value)
    assert "Send that one again" in str(refused.value)

    # the earlier one is sent again and is under way: the later one waits for it
    retried = retries.retry_target_run(engine, stage_run_id, install.id)
    move(engine, RunKind.TARGET, UUID(retried.target_run_id), "running", at(3))
    with pytest.raises(retries.RetryRefused) as refused:
        retries.retry_target_run(engine, stage_run_id, reboot.id)
    assert "is running); this one runs again by itself" in str(refused.value)

    # it succeeded: the later one runs again by itself, not by hand
    move(engine, RunKind.TARGET, UUID(retried.target_run_id), "success", at(4))
    with pytest.raises(retries.RetryRefused) as refused:
        retries.retry_target_run(engine, stage_run_id, reboot.id)
    assert "runs again by itself" in str(refused.value)
    assert row(engine, TargetRun, reboot.id).superseded_by is None


def test_a_later_operation_that_failed_itself_can_be_sent_again(engine):
    stage_run_id, rows = _stage(engine, devices=1, operations=(INSTALL, REBOOT))
    install, reboot = rows
    move(engine, RunKind.TARGET, install.id, "success", at(1))
    _fail_with_command(engine, reboot)
    retried = retries.retry_target_run(engine, stage_run_id, reboot.id)
    assert (retried.operation_order, retried.generation) == (1, 1)


def test_a_later_operation_cancelled_by_hand_waits_for_the_earlier_ones(engine):
    stage_run_id, rows = _stage(engine, devices=1, operations=(INSTALL, REBOOT))
    install, reboot = rows
    move(engine, RunKind.TARGET, install.id, "running", at(1))
    move(engine, RunKind.TARGET, reboot.id, "cancelled", at(1), "cancelled by user")
    with pytest.raises(retries.RetryRefused) as refused:
        retries.retry_target_run(engine, stage_run_id, reboot.id)
    assert "send it again once that one succeeded" in str(refused.value)


def test_resume_retries_a_cascaded_row_and_leaves_a_pending_one_as_it_is(engine):
    stage_run_id, rows = _stage(engine, devices=2, operations=(INSTALL, REBOOT))
    install_a, reboot_a, install_b, reboot_b = rows
    _cascade(engine, stage_run_id, install_a, reboot_a)
    retried = retries.retry_target_run(engine, stage_run_id, install_a.id)
    move(engine, RunKind.TARGET, UUID(retried.target_run_id), "success", at(3))
    move(engine, RunKind.TARGET, install_b.id, "success", at(3))

    resumed = retries.resume_target_runs(engine, stage_run_id, [str(reboot_a.id), str(reboot_b.id)])
    reboot_a_retry = target_run_id(stage_run_id, reboot_a.target_id,
                                   reboot_a.stage_run_operation_id, 1)
    assert resumed == [
        records.RetriedTarget(str(reboot_a_retry), str(reboot_a.target_id), 1, 1, str(reboot_a.id),
                         "failure", None, device_name=reboot_a.device_name),
        records.RetriedTarget(str(reboot_b.id), str(reboot_b.target_id), 1, 0,
                              device_name=reboot_b.device_name),
    ]
    assert row(engine, TargetRun, reboot_a_retry).status == "pending"
    assert row(engine, TargetRun, reboot_a.id).status == "failure"
    # a retried activity answers the same and makes nothing new
    assert retries.resume_target_runs(engine, stage_run_id,
                                 [str(reboot_a.id), str(reboot_b.id)]) == resumed
    with transaction(engine) as session:
        assert len(session.exec(select(TargetRun).where(
            TargetRun.stage_run_id == stage_run_id,
            col(TargetRun.retry_of).is_not(None))).all()) == 2
    assert stage_targets.target_counts(engine, stage_run_id) == {"success": 2, "pending": 2}


def test_failure_kind_matches_what_the_stage_counted():
    assert failure_kind("failure", "failure") == "FAILED"
    assert failure_kind("failure", "cancelled") == "FAILED"
    assert failure_kind("failure", "timeout") == "TIMED_OUT"
    assert failure_kind("timeout", "timeout") == "TIMED_OUT"
    assert failure_kind("cancelled", None) == ""
    assert failure_kind("failure", None) == ""  # ended by an earlier operation's failure
    assert failure_kind("success", "success") == ""
