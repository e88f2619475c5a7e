"""The rules behind the run views (the steps view, the automation-run view): how a status
counts, how long a run took, what a failure says. Pure: the API presents what these decide."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from domain.statuses import RunKind, is_terminal

# A stage run's status in the run-level counts of the steps view.
_COMPLETED = {"success"}
_FAILED = {"failure", "timeout", "invalid", "cancelled"}
_PENDING = {"pending", "queued"}


def step_bucket(status: str) -> str:
    """completed (success), failed (failure, timeout, invalid, cancelled), pending (pending,
    queued) or running (processing, running, complete)."""
    if status in _COMPLETED:
        return "completed"
    if status in _FAILED:
        return "failed"
    if status in _PENDING:
        return "pending"
    return "running"


def duration_seconds(started_at: datetime | None, ended_at: datetime | None,
                     now: datetime) -> float | None:
    """None until started; counting while running; fixed once ended."""
    if started_at is None:
        return None
    return round(((ended_at or now) - started_at).total_seconds(), 3)


def decision_id(stage_run_id: UUID, *, trigger: str, promoted_by: str,
                started: bool) -> str | None:
    """The gate decision that released a stage run: derived from its id (one decision per
    stage run, so the id is stable), or None for a stage that had no gate to pass (automatic)
    or has not been released yet."""
    if not started or (trigger != "manual" and not promoted_by):
        return None
    return str(uuid5(stage_run_id, "gate-decision"))


def stage_error(kind: RunKind, status: str, reason: str,
                counts: Mapping[str, int]) -> dict[str, Any] | None:
    """None unless the run ended other than success; else its status, reason and the counts of
    its target runs that did not succeed."""
    if not is_terminal(kind, status) or status == "success":
        return None
    return {"status": status, "reason": reason,
            "counts": {key: value for key, value in counts.items()
                       if key != "success" and value}}


def pipeline_version_id(pipeline_id: UUID, number: int) -> UUID:
    """The id of version `number` of a pipeline: derived, so it needs no table and every run
    of that version shows the same one."""
    return uuid5(pipeline_id, f"version:{number}")
