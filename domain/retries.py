"""Sending a finished target run again (POST .../command): the rules, as data.

A terminal status never changes, so "again" is a new target run for the same
device x operation in the same stage run (a retry row, `retry_of` the old one); the old row keeps
its status and its command history and points at its successor (`superseded_by`). Roll-ups
count only current rows (not superseded).
"""

from __future__ import annotations

from domain.rollout import failure_type_of
from domain.statuses import CommandStatus, TargetRunStatus

_T = TargetRunStatus
_C = CommandStatus

# What a target run may have ended as to be sent again (success is final; invalid never ran).
RETRYABLE: tuple[str, ...] = (_T.FAILURE.value, _T.TIMEOUT.value, _T.CANCELLED.value)

# The reason a device's later operations end with when an earlier one did not succeed. Such a
# target run is not sent again by hand: it runs again by itself once the earlier operation,
# sent again, succeeds.
EARLIER_OPERATION_FAILED = "an earlier operation on this device did not succeed"


def failure_kind(status: str, command_status: str | None) -> str:
    """The rollout failure type (FAILED / TIMED_OUT, domain.rollout) a finished target run was
    counted under by its stage run, or "" for one counted under none (a success, or a target
    run that ended without its command ending: cancelled before dispatch, or never started)."""
    if status not in (_T.FAILURE, _T.TIMEOUT):
        return ""
    if command_status in (_C.TIMEOUT, _C.FAILURE, _C.CANCELLED):
        return failure_type_of(command_status)
    return ""
