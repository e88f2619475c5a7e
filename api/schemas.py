"""The request bodies of the run actions and of device events: what only the API takes.
The definitions' and runs' shapes (`XCreate`, `XUpdate`, `XPublic`) live beside their tables in
store.definitions and store.runs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.actions import ACTIONS
from domain.bounds import JsonObject, Position
from domain.concurrency import MAX_KEY_LENGTH, check_concurrency_key
from domain.retry_modes import ALL_MODES
from domain.statuses import STATUSES, RunKind
from store.shapes import one_of

# ---- run actions -----------------------------------------------------------------------------


class PipelineRunCreate(BaseModel):
    """The body of POST .../runs: an empty object, or the run's options."""

    model_config = ConfigDict(extra="ignore")

    concurrency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY_LENGTH,
        description="Runs of the enterprise with the same key run one at a time: this run "
        "starts only when no other active run has the key, and waits `queued` until then, "
        "in creation order. 1 to 128 characters, no control characters, no leading or "
        "trailing whitespace.")

    @field_validator("concurrency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else check_concurrency_key(value)

    input_values: dict[str, Any] | None = Field(
        default=None, description="Plain inputs, name -> any JSON value. An operation's args "
        "refer to one as `{{ inputs.NAME }}`: a string that is exactly that becomes the "
        "value; inside a longer string, its text. Kept on the run and shown.")
    sensitive_input_values: dict[str, str] | None = Field(
        default=None, repr=False, description="Sensitive inputs, name -> string, referred to "
        "the same way. Never stored, logged or shown: the run keeps only their aliases, and "
        "they travel to the device encrypted (needs FLEETPIPE_CODEC_KEYS).")


class PipelineRunAction(BaseModel):
    status: str = one_of(ACTIONS[RunKind.PIPELINE],
                         "The action, as a status value in any case: cancelled, waiting "
                         "(pause) or running (resume, or pass the manual gate).")


class RetryRequest(BaseModel):
    """The body of POST .../runs/{id}/retry."""

    mode: str | None = one_of(ALL_MODES, "from_failed (default): send again only the target "
                              "runs that did not succeed, and run the stages not reached; "
                              "from_step: run from the stage whose key is step_key; full: "
                              "run everything again.", optional=True)
    step_key: str | None = Field(default=None, max_length=255, description="With from_step: "
                                 "the key of the stage to start from (its stage id; the steps "
                                 "view lists the keys).")


class StageRunAction(BaseModel):
    status: str = one_of(ACTIONS[RunKind.STAGE],
                         "The action, as a status value in any case: queued (promote) or "
                         "cancelled.")


class TargetRunUpdate(BaseModel):
    status: str | None = one_of(ACTIONS[RunKind.TARGET], "cancelled (any case)", optional=True)
    device_name: str | None = Field(
        default=None, max_length=255,
        description="Kept from the device at the time of the run; only the "
        "current value is accepted.")


class TargetRunAdd(BaseModel):
    target_id: UUID = Field(description="The device to add.")
    device_name: str | None = Field(default=None, max_length=255,
                                    description="Default: the device's name.")
    device_alias: str | None = Field(default=None, max_length=255,
                                     description="Default: the device's alias.")


class CommandRequest(BaseModel):
    """The body of POST .../command (AndroidCommandRequest): the stage's operation is sent;
    fields given here are ignored."""

    model_config = ConfigDict(extra="allow")


class CommandUpdate(BaseModel):
    request_status: str = one_of(ACTIONS[RunKind.COMMAND], "cancelled (any case)")


class DeviceEventIn(BaseModel):
    status: str = one_of(STATUSES[RunKind.COMMAND], "A command status (any case).")
    reason: str = Field(default="", max_length=10_000)
    output: JsonObject = Field(default_factory=dict,
                               description="What the device reported: a JSON object.")
    sequence: Position | None = Field(
        default=None, description="The gateway's counter; an event older than the last applied "
        "one changes nothing.")
    error: list[str] = Field(default_factory=list,
                             description="Errors to append to the target run's `error`.")
    output_attachment_ids: list[str] = Field(
        default_factory=list, description="Ids of files the device produced, appended once.")
    run_message_history: list[JsonObject] = Field(
        default_factory=list, description="Messages to append to the target run's history.")


class DeviceEventResult(BaseModel):
    command_id: UUID
    status: str = one_of(STATUSES[RunKind.COMMAND], "The command's status after these events.")
    applied: int = Field(description="How many of the events changed something.")
    received: int
