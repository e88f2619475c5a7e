"""The shapes of the "update run" document: the PATCH body and the Run it answers with."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from domain.bounds import JsonObject
from domain.update_run import UpdateRunStatus


class RunUpdate(BaseModel):
    """Schema for updating a run: a device's report on its run. Every field is optional."""

    status: UpdateRunStatus | None = Field(
        default=None, description="running, success, error or cancelled (scheduling only "
        "while the run is still scheduling). A status that would move the run backwards, or "
        "any report on a finished run, is a 409 naming the current status.")
    error: list[str] | None = Field(default=None, description="Errors, appended to the run's.")
    output_data: JsonObject | None = Field(
        default=None, description="Merged into the run's output_data.")
    output_attachment_ids: list[str] | None = Field(
        default=None, description="Appended to the run's (each id once).")
    run_message_history: list[JsonObject] | None = Field(
        default=None, description="Appended to the run's message history, in order.")
    input_values: JsonObject | None = Field(
        default=None, description="Accepted only unchanged: a run's inputs are set when its "
        "pipeline run is created; a change is a 409 saying why.")


class RunResponse(BaseModel):
    """Run response schema: a fleetpipe target run (one operation on one device)."""

    workflow_id: UUID = Field(description="The pipeline.")
    machine_id: UUID | None = Field(description="The device.")
    id: UUID = Field(description="The target run.")
    user_id: UUID | None = Field(default=None, description="Always null.")
    organization_id: str | None = Field(default=None, description="The enterprise.")
    status: UpdateRunStatus
    error: list[str] | None = None
    output_data: dict[str, Any] | None = None
    input_attachment_ids: list[str] | None = None
    output_attachment_ids: list[str] | None = None
    run_message_history: list[dict[str, Any]] | None = Field(
        default=None, description="The command's status changes (`type: command_event`) and "
        "the device's messages, in order.")
    input_values: dict[str, Any] | None = Field(
        default=None, description="The operation's args, as the run sends them.")
    pool_ids: list[UUID] | None = Field(default=None, description="The device's groups.")
    sensitive_input_aliases: dict[str, Any] | None = None
    session_id: UUID | None = Field(default=None, description="The stage run.")
    session_alias: str | None = Field(default=None, description="The stage's name.")
    release_session_after: bool | None = Field(
        default=None, description="Whether this is the device's last operation in its stage "
        "run.")
    created_at: datetime
