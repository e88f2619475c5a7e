"""The operator actions' rules, written once: which status values each resource's PUT takes as an
action, and in which states each action is open.

The run-control service pre-checks a request with them before it reaches a run (from the rows
it reads); the workflows' update validators decide with them against their live state.
"""

from __future__ import annotations

from domain.statuses import (
    CommandStatus,
    PipelineRunStatus,
    RunKind,
    StageRunStatus,
    TargetRunStatus,
    is_terminal,
    parse_status,
)

_P = PipelineRunStatus
_S = StageRunStatus
_T = TargetRunStatus

# resource -> the status values its PUT takes, each an action.
ACTIONS: dict[RunKind, tuple[str, ...]] = {
    # cancel; pause (waiting); resume a pause or pass the manual gate the run waits at (running)
    RunKind.PIPELINE: (_P.CANCELLED.value, _P.WAITING.value, _P.RUNNING.value),
    # promote the stage run its pipeline run waits at (queued); cancel it and so its run
    RunKind.STAGE: (_S.QUEUED.value, _S.CANCELLED.value),
    RunKind.TARGET: (_T.CANCELLED.value,),
    RunKind.COMMAND: (CommandStatus.CANCELLED.value,),
}

# A target run can be cancelled only before its command is dispatched; after that its command
# is cancelled instead.
CANCELLABLE_TARGET_RUN: tuple[str, ...] = (_T.PENDING.value, _T.QUEUED.value,
                                           _T.PROCESSING.value)


class NotAnAction(ValueError):
    """A status value a resource's PUT does not take: unknown, or not an action there."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


def parse_action(kind: RunKind, value: str) -> str:
    """The action a status value names (any case), or NotAnAction naming the allowed values."""
    allowed = ACTIONS[kind]
    noun = kind.value.replace("_", " ")
    try:
        status = parse_status(kind, value)
    except ValueError:
        raise NotAnAction(f"unknown {noun} status {value!r}; allowed: {', '.join(allowed)}",
                          allowed) from None
    if status not in allowed:
        raise NotAnAction(f"{status!r} cannot be set on a {noun}; allowed: {', '.join(allowed)}",
                          allowed)
    return status


def pipeline_run_actions(status: str, *, stopping: bool, paused: bool,
                         at_gate: bool) -> list[str]:
    """The actions a pipeline run takes now: none once it is over or stopping; otherwise cancel,
    pause while running or waiting unpaused, and running to resume a pause or pass a gate."""
    if is_terminal(RunKind.PIPELINE, status) or stopping:
        return []
    actions = [_P.CANCELLED.value]
    if status in (_P.RUNNING, _P.WAITING) and not paused:
        actions.append(_P.WAITING.value)
    if paused or at_gate:
        actions.append(_P.RUNNING.value)
    return actions


def stage_run_promotable(stage_run_id: str, *, waiting_for: str | None, stopping: bool) -> bool:
    """Only the stage run its pipeline run waits at is promoted, and not once the run stops."""
    return waiting_for == stage_run_id and not stopping


def stage_run_cancellable(stage_status: str, *, pipeline_status: str, stopping: bool) -> bool:
    return not (is_terminal(RunKind.PIPELINE, pipeline_status) or stopping
                or is_terminal(RunKind.STAGE, stage_status))


def stage_run_takes_targets(status: str, *, stopping: bool = False) -> bool:
    """Devices are added, cancelled or sent again only while the stage run is running (not
    processing: it makes its own target runs first) and not stopping."""
    return status == _S.RUNNING and not stopping


def target_run_cancellable(status: str) -> bool:
    return status in CANCELLABLE_TARGET_RUN


def command_cancellable(status: str) -> bool:
    return not is_terminal(RunKind.COMMAND, status)
