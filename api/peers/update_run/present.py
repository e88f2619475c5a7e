"""A target run as the "update run" document shows it."""

from __future__ import annotations

from typing import Any

from api.peers.update_run.schemas import RunResponse
from domain.statuses import CommandStatus, RunKind, TargetRunStatus, is_terminal
from domain.update_run import update_run_status
from store.runs.update_run import UpdateRunView


def _message_history(view: UpdateRunView) -> list[dict[str, Any]]:
    """The command's status changes and the device's messages, in the order they came."""
    history: list[dict[str, Any]] = []
    status: str = CommandStatus.SCHEDULED
    for event in view.events:
        if not event.applied:
            continue
        if event.status != status:
            status = event.status
            history.append({"type": "command_event", "status": event.status,
                            "reason": event.reason,
                            "at": event.received_at.isoformat().replace("+00:00", "Z")})
        history.extend(dict(message) for message in event.run_message_history or [])
    return history


def _errors(view: UpdateRunView) -> list[str]:
    """What the device reported, and the reason the run ended with when it did not succeed."""
    target = view.target_run
    errors = list(target.error or [])
    ended_badly = (is_terminal(RunKind.TARGET, target.status)
                   and target.status != TargetRunStatus.SUCCESS)
    if ended_badly and target.status_reason and target.status_reason not in errors:
        errors.append(target.status_reason)
    return errors


def update_run(view: UpdateRunView) -> dict[str, Any]:
    target = view.target_run
    command_status = view.command.status if view.command is not None else None
    return RunResponse(
        workflow_id=view.pipeline_id, machine_id=target.target_id, id=target.id,
        user_id=None, organization_id=str(target.enterprise_id),
        status=update_run_status(target.status, command_status),
        error=_errors(view), output_data=dict(target.output_data or {}),
        input_attachment_ids=[],
        output_attachment_ids=list(target.output_attachment_ids or []),
        run_message_history=_message_history(view), input_values=view.operation_args,
        pool_ids=view.group_ids, sensitive_input_aliases={},
        session_id=target.stage_run_id, session_alias=view.stage_name,
        release_session_after=view.last_operation, created_at=target.created_at,
    ).model_dump(mode="json")
