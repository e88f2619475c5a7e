"""A device's report on its target run ("update run"): a command event for the run's command,
recorded and signalled like a gateway's (the relay), never a write of the run's status.

The status rules (domain.update_run) are judged in the store under the command's lock,
against the state the event will change, so a report racing the device's own gateway (or a
second report) is judged on what is there; a refusal leaves nothing written.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session

from control.relay import CommandEventRelay
from domain.commands import CommandEvent
from domain.update_run import (
    MAX_REPORTED,
    DeviceReport,
    ReportRefused,
    is_finished,
    reported_command_status,
    update_run_status,
)
from store.definitions.tenants import Caller
from store.executor import run_db
from store.runs.commands import Command
from store.runs.events import RecordedEvents
from store.runs.update_run import UpdateRunView, read_update_run

log = logging.getLogger(__name__)


def read_view(engine: Engine, enterprise_id: UUID, target_run_id: UUID) -> UpdateRunView:
    with Session(engine, expire_on_commit=False) as session:
        return read_update_run(session, enterprise_id, target_run_id)


def _check_inputs(view: UpdateRunView, current: str, input_values: dict | None) -> None:
    """input_values may be given back as they are; a change is refused, saying why."""
    if input_values is None or input_values == view.operation_args:
        return
    command = view.command
    if command is not None and command.sent_at is not None:
        raise ReportRefused(current, "input_values may change only before the run's command "
                            f"is sent; command {command.id} was sent at "
                            f"{command.sent_at.isoformat()}")
    raise ReportRefused(current, "input_values cannot be changed on one run: a run's inputs "
                        "are set when its pipeline run is created (they are the same for every "
                        "device of its stage); send them back unchanged or leave them out")


def _refuse_without_command(view: UpdateRunView) -> None:
    target = view.target_run
    current = update_run_status(target.status)
    if is_finished(current):
        raise ReportRefused(current, f"the run is finished ({current}): a report can no "
                            "longer change it")
    raise ReportRefused(current, f"the run is {current} (target run {target.status}) and its "
                        "command has not been created yet: a report is taken once it has one")


async def report_on_target_run(engine: Engine, relay: Callable[[], Awaitable[CommandEventRelay]],
                               caller: Caller, target_run_id: UUID,
                               report: DeviceReport) -> RecordedEvents | None:
    """Record the report as an event of the run's command and pass it to the run's workflow.
    NotFound for another enterprise's run; ReportRefused (nothing written) for a report the
    run's state refuses, or one that would take a list past its bound. None when the report
    says nothing (nothing to record)."""
    view = await run_db(engine, read_view, engine, caller.enterprise_id, target_run_id)
    target = view.target_run
    command_status = view.command.status if view.command is not None else None
    _check_inputs(view, update_run_status(target.status, command_status), report.input_values)
    if report.is_empty():
        return None
    if view.command is None:
        _refuse_without_command(view)
    assert view.command is not None
    full = report.overflow({name: len(getattr(target, name) or []) for name in MAX_REPORTED})
    if full:
        raise ReportRefused(update_run_status(target.status, command_status), full)

    def build(command: Command, target_status: str) -> list[CommandEvent]:
        status = reported_command_status(report.status, target_status, command.status)
        return [report.event(str(command.id), status)]

    recorded = await (await relay()).record_report_and_signal(view.command.id, build)
    log.info("device report on target run %s: %s (command %s), by key %s", target_run_id,
             report.status or "data only", recorded.status, caller.key_id)
    return recorded
