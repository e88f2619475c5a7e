"""How a run row ends when its run is closed from outside its workflow (cancelled or terminated
in Temporal, a workflow that failed, or a cancel of a run whose workflow is gone)."""

from __future__ import annotations

from domain.statuses import RunKind, TargetRunStatus, is_terminal, transition_path

# What a close may pass through on its way: a row that ran is completed, never made to look
# as if it had been dispatched or processed.
_PASSABLE = frozenset({"running", "complete"})


def closing_status(kind: RunKind, current: str, wanted: str) -> str | None:
    """The terminal status a row at `current` ends with when its run closes `wanted`
    (cancelled or failure): `wanted` if the row can reach it passing only through running or
    complete, else the other of the two (a target run already dispatched can only fail; one
    that never ran is cancelled). None for a row that has ended already."""
    if is_terminal(kind, current):
        return None
    other = TargetRunStatus.FAILURE if wanted == TargetRunStatus.CANCELLED else (
        TargetRunStatus.CANCELLED)
    for status in (wanted, other):
        path = transition_path(kind, current, status)
        if path and set(path[:-1]) <= _PASSABLE:
            return str(status)
    return None
