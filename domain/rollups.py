"""Roll-ups and mappings between the levels of a run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

from domain.statuses import CommandStatus, PipelineRunStatus, StageRunStatus, TargetRunStatus

_C = CommandStatus
_T = TargetRunStatus

# What a command status means for its target run (reference: target run statuses).
_TARGET_FOR_COMMAND: dict[str, str] = {
    _C.SCHEDULED: _T.PROCESSING,
    _C.QUEUED: _T.DISPATCHED,
    _C.INITIATED: _T.RUNNING,
    _C.ACKNOWLEDGED: _T.RUNNING,
    _C.INPROGRESS: _T.RUNNING,
    _C.SUCCESS: _T.SUCCESS,
    _C.FAILURE: _T.FAILURE,
    _C.TIMEOUT: _T.FAILURE,
    _C.CANCELLED: _T.FAILURE,
}


def target_status_for_command(command_status: str) -> str:
    """The target-run status a command status puts its target run in."""
    return _TARGET_FOR_COMMAND[command_status]


def unsuccessful_breakdown(counts: Mapping[str, int]) -> str:
    """How many target runs ended in each status but success, in lifecycle order:
    `1 failure, 2 timeout` (empty when none)."""
    return ", ".join(f"{counts[status]} {status}" for status in _T
                     if status != _T.SUCCESS and counts.get(status, 0))


def reaches_percentage(part: int, total: int, percentage: float) -> bool:
    """part/total >= percentage%, exactly: 161 of 500 reaches 32.2 (floats would say no)."""
    return part * 100 >= Fraction(str(percentage)) * total


def stage_outcome(
    counts: Mapping[str, int], success_threshold_percentage: float = 100.0
) -> StageRunStatus:
    """A completed stage run's final status from its target runs' per-status counts.

    Success iff the share of successful target runs reaches the threshold (default: all of them).
    An empty stage never reaches here: it is invalid before it runs.
    """
    total = sum(counts.values())
    if total == 0:
        return StageRunStatus.INVALID
    succeeded = counts.get(_T.SUCCESS, 0)
    if reaches_percentage(succeeded, total, success_threshold_percentage):
        return StageRunStatus.SUCCESS
    return StageRunStatus.FAILURE


def pipeline_outcome(stage_statuses: Iterable[str]) -> PipelineRunStatus:
    """A completed pipeline run's final status: success iff every stage run succeeded."""
    statuses = list(stage_statuses)
    if not statuses:
        return PipelineRunStatus.INVALID
    if all(status == StageRunStatus.SUCCESS for status in statuses):
        return PipelineRunStatus.SUCCESS
    return PipelineRunStatus.FAILURE
