"""The "update run" view of a target run: its five statuses, and what a device's report may do.

A device (or its agent) reports on its target run with one of five statuses. The report
becomes a command event for the run's command; these rules decide, from the command's and the
target run's status at that moment, which command status it is, or why it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.commands import CommandEvent
from domain.statuses import CommandStatus, RunKind, TargetRunStatus, is_terminal


class UpdateRunStatus(StrEnum):
    SCHEDULING = "scheduling"
    RUNNING = "running"
    SUCCESS = "success"
    CANCELLED = "cancelled"
    ERROR = "error"


_U = UpdateRunStatus
_T = TargetRunStatus
_C = CommandStatus

_FOR_TARGET: dict[str, UpdateRunStatus] = {
    _T.PENDING: _U.SCHEDULING, _T.QUEUED: _U.SCHEDULING, _T.PROCESSING: _U.SCHEDULING,
    _T.DISPATCHED: _U.SCHEDULING,
    # complete is the instant between the device's end and the run's verdict
    _T.RUNNING: _U.RUNNING, _T.COMPLETE: _U.RUNNING,
    _T.SUCCESS: _U.SUCCESS, _T.CANCELLED: _U.CANCELLED,
    _T.FAILURE: _U.ERROR, _T.TIMEOUT: _U.ERROR, _T.INVALID: _U.ERROR,
}
_FOR_COMMAND: dict[str, UpdateRunStatus] = {
    _C.SCHEDULED: _U.SCHEDULING, _C.QUEUED: _U.SCHEDULING,
    _C.INITIATED: _U.RUNNING, _C.ACKNOWLEDGED: _U.RUNNING, _C.INPROGRESS: _U.RUNNING,
    _C.SUCCESS: _U.SUCCESS,
    # a cancelled command ends its target run `failure`, which this view calls error
    _C.FAILURE: _U.ERROR, _C.TIMEOUT: _U.ERROR, _C.CANCELLED: _U.ERROR,
}
# The command status each reported status becomes (scheduling: none, it only adds data).
REPORTED_COMMAND_STATUS: dict[str, str] = {
    _U.RUNNING: _C.INPROGRESS, _U.SUCCESS: _C.SUCCESS, _U.ERROR: _C.FAILURE,
    _U.CANCELLED: _C.CANCELLED,
}
_ORDER = [_U.SCHEDULING, _U.RUNNING]  # then one of the three ends
# How much one run holds of what devices report (each report rewrites its run's lists).
MAX_REPORTED: dict[str, int] = {"error": 1_000, "output_attachment_ids": 1_000,
                                "run_message_history": 10_000}


class ReportRefused(Exception):
    """A report the run's state refuses (a conflict): `current` is the run's status in this
    view, named in the message."""

    def __init__(self, current: str, message: str) -> None:
        super().__init__(message)
        self.current = current
        self.message = message


def update_run_status(target_status: str, command_status: str | None = None) -> UpdateRunStatus:
    """The run's status in this view. The target run's own status, unless its command is
    already further along: the store records a device's report at once, its workflow a moment
    later, and a device reading back its own report must not see it undone."""
    mine = _FOR_TARGET[target_status]
    if is_terminal(RunKind.TARGET, target_status) or not command_status:
        return mine
    theirs = _FOR_COMMAND[command_status]
    if theirs not in _ORDER or (mine in _ORDER and _ORDER.index(theirs) > _ORDER.index(mine)):
        return theirs
    return mine


def is_finished(status: str) -> bool:
    return status not in _ORDER


def reported_command_status(reported: str | None, target_status: str,
                            command_status: str) -> str:
    """The command status a report with this status (None: data only) records, or
    ReportRefused when it would change a finished run or move the run backwards."""
    current = update_run_status(target_status, command_status)
    if is_terminal(RunKind.TARGET, target_status) or is_terminal(RunKind.COMMAND,
                                                                 command_status):
        raise ReportRefused(current, f"the run is finished ({current}): a report can no "
                            "longer change it")
    if reported is None:
        return command_status
    if reported == _U.SCHEDULING:
        if current != _U.SCHEDULING:
            raise ReportRefused(current, f"the run is {current}: status scheduling would move "
                                "it backwards")
        return command_status
    new = REPORTED_COMMAND_STATUS[reported]
    # inprogress reported again while in progress adds data and moves nothing
    return command_status if new == command_status else new


@dataclass(frozen=True)
class DeviceReport:
    """A device's report on its run (PATCH /v1/runs/{id}): every field optional."""

    status: str | None = None  # an UpdateRunStatus
    error: list[str] = field(default_factory=list)
    output_data: dict[str, Any] = field(default_factory=dict)
    output_attachment_ids: list[str] = field(default_factory=list)
    run_message_history: list[dict[str, Any]] = field(default_factory=list)
    input_values: dict[str, Any] | None = None

    def is_empty(self) -> bool:
        return self.status is None and not (self.error or self.output_data
                                            or self.output_attachment_ids
                                            or self.run_message_history)

    def overflow(self, held: dict[str, int]) -> str | None:
        """Which list this report would take past MAX_REPORTED, given what the run `held`."""
        for name, limit in MAX_REPORTED.items():
            if held.get(name, 0) + len(getattr(self, name)) > limit:
                return (f"{name}: the run holds {held.get(name, 0)} entries and this report "
                        f"adds {len(getattr(self, name))}; a run holds at most {limit}")
        return None

    def event(self, command_id: str, command_status: str) -> CommandEvent:
        """The command event this report is, at the command status the rules gave."""
        # the reason a failed run ends with: what the device said went wrong
        reason = "; ".join(self.error)
        if not reason and command_status in (_C.FAILURE, _C.CANCELLED):
            reason = f"the device reported {self.status}"
        return CommandEvent(
            command_id=command_id, status=command_status, reason=reason,
            output=dict(self.output_data),
            error=list(self.error), output_attachment_ids=list(self.output_attachment_ids),
            run_message_history=[dict(m) for m in self.run_message_history])
