"""Ids derived from other ids, so every process computes the same one without asking the store.

Workflow ids follow the row ids, so the API can message any run directly.
"""

from __future__ import annotations

from uuid import UUID, uuid5


def target_run_id(
    stage_run_id: UUID, device_id: UUID | str, stage_run_operation_id: UUID | str,
    generation: int = 0,
) -> UUID:
    """Ids given as strings must be in UUID's canonical form: they are formatted into the name.

    `generation` counts the times this device x operation was sent again in its stage run
    (domain.retries): 0 is the first target run, n > 0 the n-th retry row."""
    name = f"target:{device_id}:{stage_run_operation_id}"
    return uuid5(stage_run_id, name if generation == 0 else f"{name}:retry:{generation}")


def command_id(target_run_id: UUID, attempt: int) -> UUID:
    """The command of a target run's n-th attempt; the gateway's idempotency key."""
    return uuid5(target_run_id, f"command:{attempt}")


def pipeline_run_workflow_id(pipeline_run_id: UUID | str) -> str:
    return f"pipeline-run-{pipeline_run_id}"


def stage_run_workflow_id(stage_run_id: UUID | str) -> str:
    return f"stage-run-{stage_run_id}"


def target_run_workflow_id(target_run_id: UUID | str) -> str:
    return f"target-run-{target_run_id}"
