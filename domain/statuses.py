"""The four status sets of the reference documents and every allowed transition.

Transitions only move forward along each entity's path; a terminal status never changes.
`transition_path` gives the intermediate statuses a jump passes through, so a run recorded
"dispatched" straight from "pending" still leaves a record of queued and processing.
"""

from __future__ import annotations

from enum import StrEnum


class PipelineRunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETE = "complete"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    INVALID = "invalid"
    TIMEOUT = "timeout"


class StageRunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    RUNNING = "running"
    COMPLETE = "complete"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    INVALID = "invalid"
    TIMEOUT = "timeout"


class TargetRunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    COMPLETE = "complete"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    INVALID = "invalid"
    TIMEOUT = "timeout"


class CommandStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    INITIATED = "initiated"
    ACKNOWLEDGED = "acknowledged"
    INPROGRESS = "inprogress"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


class RunKind(StrEnum):
    PIPELINE = "pipeline_run"
    STAGE = "stage_run"
    TARGET = "target_run"
    COMMAND = "command"


_P = PipelineRunStatus
_S = StageRunStatus
_T = TargetRunStatus
_C = CommandStatus

TERMINAL: dict[RunKind, frozenset[str]] = {
    RunKind.PIPELINE: frozenset({_P.SUCCESS, _P.FAILURE, _P.CANCELLED, _P.INVALID, _P.TIMEOUT}),
    RunKind.STAGE: frozenset({_S.SUCCESS, _S.FAILURE, _S.CANCELLED, _S.INVALID, _S.TIMEOUT}),
    RunKind.TARGET: frozenset({_T.SUCCESS, _T.FAILURE, _T.CANCELLED, _T.INVALID, _T.TIMEOUT}),
    RunKind.COMMAND: frozenset({_C.SUCCESS, _C.FAILURE, _C.TIMEOUT, _C.CANCELLED}),
}

STATUSES: dict[RunKind, tuple[str, ...]] = {
    RunKind.PIPELINE: tuple(PipelineRunStatus),
    RunKind.STAGE: tuple(StageRunStatus),
    RunKind.TARGET: tuple(TargetRunStatus),
    RunKind.COMMAND: tuple(CommandStatus),
}

# Allowed moves, one entity at a time. Early-exit moves (cancelled, invalid, timeout) are open
# from every non-terminal status where the reference documents allow them.
_ALLOWED: dict[RunKind, dict[str, frozenset[str]]] = {
    RunKind.PIPELINE: {
        _P.PENDING: frozenset({_P.QUEUED, _P.CANCELLED, _P.TIMEOUT}),
        _P.QUEUED: frozenset({_P.PROCESSING, _P.CANCELLED, _P.TIMEOUT}),
        _P.PROCESSING: frozenset({_P.RUNNING, _P.INVALID, _P.CANCELLED, _P.TIMEOUT}),
        _P.RUNNING: frozenset({_P.WAITING, _P.COMPLETE, _P.CANCELLED, _P.TIMEOUT}),
        _P.WAITING: frozenset({_P.RUNNING, _P.CANCELLED, _P.TIMEOUT}),
        _P.COMPLETE: frozenset({_P.SUCCESS, _P.FAILURE}),
    },
    RunKind.STAGE: {
        _S.PENDING: frozenset({_S.QUEUED, _S.CANCELLED, _S.TIMEOUT}),
        _S.QUEUED: frozenset({_S.PROCESSING, _S.CANCELLED, _S.TIMEOUT}),
        _S.PROCESSING: frozenset({_S.RUNNING, _S.INVALID, _S.CANCELLED, _S.TIMEOUT}),
        _S.RUNNING: frozenset({_S.COMPLETE, _S.CANCELLED, _S.TIMEOUT}),
        _S.COMPLETE: frozenset({_S.SUCCESS, _S.FAILURE}),
    },
    RunKind.TARGET: {
        _T.PENDING: frozenset({_T.QUEUED, _T.CANCELLED, _T.TIMEOUT, _T.INVALID, _T.COMPLETE}),
        _T.QUEUED: frozenset({_T.PROCESSING, _T.CANCELLED, _T.TIMEOUT, _T.INVALID}),
        _T.PROCESSING: frozenset({_T.DISPATCHED, _T.CANCELLED, _T.TIMEOUT, _T.INVALID}),
        _T.DISPATCHED: frozenset({_T.RUNNING, _T.COMPLETE, _T.TIMEOUT}),
        _T.RUNNING: frozenset({_T.COMPLETE, _T.TIMEOUT}),
        _T.COMPLETE: frozenset({_T.SUCCESS, _T.FAILURE}),
    },
    RunKind.COMMAND: {
        _C.SCHEDULED: frozenset({_C.QUEUED, _C.INITIATED, _C.ACKNOWLEDGED, _C.INPROGRESS,
                                 _C.SUCCESS, _C.FAILURE, _C.TIMEOUT, _C.CANCELLED}),
        _C.QUEUED: frozenset({_C.INITIATED, _C.ACKNOWLEDGED, _C.INPROGRESS,
                              _C.SUCCESS, _C.FAILURE, _C.TIMEOUT, _C.CANCELLED}),
        _C.INITIATED: frozenset({_C.ACKNOWLEDGED, _C.INPROGRESS,
                                 _C.SUCCESS, _C.FAILURE, _C.TIMEOUT, _C.CANCELLED}),
        _C.ACKNOWLEDGED: frozenset({_C.INPROGRESS, _C.SUCCESS, _C.FAILURE, _C.TIMEOUT,
                                    _C.CANCELLED}),
        _C.INPROGRESS: frozenset({_C.SUCCESS, _C.FAILURE, _C.TIMEOUT, _C.CANCELLED}),
    },
}


def parse_status(kind: RunKind, value: str) -> str:
    """Normalise a status given in any case; ValueError naming the allowed values otherwise."""
    lowered = value.strip().lower()
    if lowered not in STATUSES[kind]:
        allowed = ", ".join(STATUSES[kind])
        raise ValueError(f"unknown {kind.value} status {value!r}; allowed: {allowed}")
    return lowered


def is_terminal(kind: RunKind, status: str) -> bool:
    return status in TERMINAL[kind]


def allowed_next(kind: RunKind, status: str) -> frozenset[str]:
    return _ALLOWED[kind].get(status, frozenset())


def can_transition(kind: RunKind, current: str, new: str) -> bool:
    return new in allowed_next(kind, current)


def transition_path(kind: RunKind, current: str, target: str) -> list[str]:
    """Statuses to record, in order, to move from `current` to `target`; [] if not allowed.

    The shortest walk through allowed moves, so a jump (pending -> dispatched) still records
    the statuses it passes through (queued, processing) and nothing ever moves backwards.
    """
    if current == target or is_terminal(kind, current):
        return []
    came_from: dict[str, str] = {current: current}
    frontier = [current]
    while frontier:
        following: list[str] = []
        for status in frontier:
            for step in sorted(allowed_next(kind, status), key=STATUSES[kind].index):
                if step in came_from:
                    continue
                came_from[step] = status
                if step == target:
                    walk = [step]
                    while came_from[walk[-1]] != current:
                        walk.append(came_from[walk[-1]])
                    return walk[::-1]
                following.append(step)
        frontier = following
    return []
