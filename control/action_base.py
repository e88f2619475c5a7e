"""What every action of RunControl shares: the outcome it answers with, its refusals, the
store reads it makes off the event loop, and the audit record around it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session

from control.audit import RecordedAction, action_entry, audited
from control.connection import TemporalConnection
from control.errors import ActionRefused, Missing
from domain.actions import (
    NotAnAction,
    parse_action,
)
from domain.statuses import PipelineRunStatus, RunKind, StageRunStatus
from settings import Settings
from store.definitions.tenants import Caller
from store.runs import commands, reads
from store.runs.commands import Command
from store.runs.commands import CommandEvent as CommandEventRow

T = TypeVar("T")
# How a run was started (docs/decisions.md): through the REST API by an API key.
API_TRIGGER = "api"
API_KEY_SOURCE = "api_key"

ACCEPTED_MESSAGE = ("Accepted: the run has the request and is applying it; read it again "
                    "to see the result")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What an action leaves: the row(s) to show; whether the run answered (False: it has the
    request and is still applying it); the message to give with them (None: a plain OK)."""

    content: T
    answered: bool = True
    message: str | None = None


@dataclass(frozen=True)
class CommandState:
    """A device command with every event it reported, in arrival order."""

    command: Command
    events: list[CommandEventRow]


def current_command(session: Session, enterprise_id: UUID, stage_run_id: UUID,
                    target_run_id: UUID) -> CommandState:
    """A target run's current command and its events; Missing while it has none yet."""
    target_run = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
    if target_run.command_id is None:
        raise Missing(f"target run {target_run_id} has no command yet (it is "
                      f"{target_run.status})")
    command = commands.get_command(session, enterprise_id, target_run.command_id)
    return CommandState(command, commands.command_events(session, command.id))


class WorkflowGone(Exception):
    """The run's workflow is closed or not found."""


CANCELLED_WITHOUT_WORKFLOW = "cancelled by user (its workflow had already ended)"


def refused(current: str, noun: str, action: str) -> ActionRefused:
    return ActionRefused("status", f"cannot {action}: the {noun} is {current}")


def requested_action(kind: RunKind, value: str, field: str = "status") -> str:
    try:
        return parse_action(kind, value)
    except NotAnAction as bad:
        raise ActionRefused(field, str(bad), list(bad.allowed)) from None


def still_applying(content: T) -> Outcome[T]:
    return Outcome(content, answered=False, message=ACCEPTED_MESSAGE)


# What each status an operator PUTs does, by the name the audit trail records.
PIPELINE_ACTIONS: dict[str, str] = {
    PipelineRunStatus.CANCELLED: "cancel", PipelineRunStatus.WAITING: "pause",
    PipelineRunStatus.RUNNING: "resume"}
STAGE_ACTIONS: dict[str, str] = {
    StageRunStatus.QUEUED: "promote", StageRunStatus.CANCELLED: "cancel_stage"}



class ActionBase:
    """The engine, the Temporal connection and the settings every action uses."""

    def __init__(self, engine: Engine, temporal: TemporalConnection, settings: Settings) -> None:
        self._engine = engine
        self._temporal = temporal
        self._settings = settings

    def _reader(self, work: Callable[[Session], T]) -> Callable[[], T]:
        def call() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return call

    async def _read(self, work: Callable[[Session], T]) -> T:
        """Store work in a worker thread with its own session: the event loop never waits."""
        return await asyncio.to_thread(self._reader(work))

    def _audit(self, caller: Caller | None, action: str, pipeline_run_id: UUID | None,
               request: dict[str, Any] | None = None, *, enterprise_id: UUID | None = None,
               subject: str = "pipeline_run", subject_id: UUID | None = None,
               ) -> AbstractAsyncContextManager[RecordedAction]:
        """`async with self._audit(caller, "pause", run_id, body):` around carrying an action
        to its run: recorded (who, when, the request) before, its outcome after."""
        return audited(self._engine, action_entry(
            caller, action, pipeline_run_id, request, enterprise_id=enterprise_id,
            subject=subject, subject_id=subject_id))

