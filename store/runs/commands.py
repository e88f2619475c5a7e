"""Commands: the one a target run's attempt sends to its device (created once, marked sent
once), what the API shows of it, and the sent, unfinished ones a gateway carries on with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, bindparam, insert, text, update
from sqlalchemy import select as core_select  # sqlmodel's select takes at most 4 columns
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from domain.ids import command_id as derive_command_id
from domain.records import StatusChange
from domain.statuses import (
    STATUSES,
    TERMINAL,
    CommandStatus,
    RunKind,
    TargetRunStatus,
    is_terminal,
)
from store.db import transaction
from store.definitions.devices import Device
from store.runs.statuses import apply_status
from store.runs.tables import StageRunOperation, TargetRun, serial
from store.shapes import Public, one_of, stamp
from store.tenancy import owned
from store.types import JSONType, UTCDateTime, utcnow


class UnknownCommand(LookupError):
    """No command has this id (the API answers 404)."""

    def __init__(self, command_id: object) -> None:
        super().__init__(f"unknown command {command_id}")
        self.command_id = str(command_id)


def as_command_id(command_id: UUID | str) -> UUID:
    if isinstance(command_id, UUID):
        return command_id
    try:
        return UUID(str(command_id))
    except ValueError:
        raise UnknownCommand(command_id) from None


# ---- the family --------------------------------------------------------------------------------


class CommandBase(SQLModel):
    target_run_id: UUID = Field(index=True)
    device_id: UUID = Field(index=True)
    operation_type: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    gateway: str = ""
    status: str = Field(default="scheduled", index=True)


class CommandOutcome(SQLModel):
    reason: str = ""
    output: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))


class CommandTimes(SQLModel):
    sent_at: datetime | None = stamp(optional=True)
    cancel_requested_at: datetime | None = stamp(optional=True)


class CommandStamps(SQLModel):
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class Command(CommandStamps, CommandTimes, CommandOutcome, CommandBase, table=True):
    id: UUID = Field(primary_key=True)  # the idempotency key at the gateway
    enterprise_id: UUID
    last_sequence: int = -1


class CommandEventBase(SQLModel):
    status: str
    reason: str = ""
    output: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    sequence: int | None = None
    # What the device reported beside the status (empty for most gateway events).
    error: list[str] = Field(default_factory=list, sa_column=Column(
        JSONType, server_default=text("'[]'")))
    output_attachment_ids: list[str] = Field(default_factory=list, sa_column=Column(
        JSONType, server_default=text("'[]'")))
    run_message_history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        JSONType, server_default=text("'[]'")))
    applied: bool = Field(
        default=True,
        description="False: a duplicate or out-of-order event, or one after the command "
        "ended (changed nothing).")
    received_at: datetime = stamp()


class CommandEvent(CommandEventBase, table=True):
    """Every event a gateway reported for a command, kept in arrival order (its message history)."""

    __tablename__ = "command_event"
    id: int | None = Field(default=None, sa_column=serial())
    command_id: UUID = Field(index=True)


class CommandEventPublic(CommandEventBase, Public):
    status: str = one_of(STATUSES[RunKind.COMMAND])


class _Keys(SQLModel):
    id: UUID


class _RequestStatus(SQLModel):
    request_status: str = one_of(STATUSES[RunKind.COMMAND],
                                 "Same as status (the Esper field name).")


class _Events(SQLModel):
    events: list[CommandEventPublic] = Field(
        default_factory=list, description="Every event the gateway reported, in arrival order.")


class _Reported(SQLModel):
    """What the device reported beside the statuses, over the events that applied."""

    error: list[str] = Field(default_factory=list,
                             description="Errors the device reported, in order.")
    output_attachment_ids: list[str] = Field(
        default_factory=list, description="Ids of the files the device produced, each once.")
    run_message_history: list[dict[str, Any]] = Field(
        default_factory=list, description="Messages the device reported, in order.")


class CommandPublic(CommandStamps, _Events, CommandTimes, _Reported, CommandOutcome,
                    _RequestStatus, CommandBase, _Keys, Public):
    status: str = one_of(STATUSES[RunKind.COMMAND])


# ---- the API's reads ---------------------------------------------------------------------------


def get_command(session: Session, enterprise_id: UUID, command_id: UUID) -> Command:
    return owned(session, Command, command_id, enterprise_id, "command")


def command_events(session: Session, command_id: UUID, limit: int = 1000) -> list[CommandEvent]:
    """A command's message history, in arrival order."""
    return list(
        session.exec(
            select(CommandEvent)
            .where(CommandEvent.command_id == command_id)
            .order_by(col(CommandEvent.id))
            .limit(limit)
        ).all()
    )


# ---- sending (the target workflow's dispatch) --------------------------------------------------


@dataclass
class CommandPlan:
    command_id: str
    device_id: str
    operation_type: str
    args: dict[str, Any]
    device_attributes: dict[str, str]
    already_sent: bool
    target_status: str
    # An ended target run's command and its last status, if it had one: a workflow whose task
    # was lost after it recorded the end learns here what it ended with.
    command_status: str | None = None
    stage_run_id: str = ""  # for the logs of whoever sends it
    pipeline_run_id: str = ""


_COMMANDS: Any = Command.__table__  # type: ignore[attr-defined]
_TARGET_RUNS: Any = TargetRun.__table__  # type: ignore[attr-defined]
_OPERATIONS: Any = StageRunOperation.__table__  # type: ignore[attr-defined]
_DEVICES: Any = Device.__table__  # type: ignore[attr-defined]
_TID, _CID = "target_run_id_", "command_id_"  # bound ids (not column names)
# Built once: building a statement and its cache key cost more than running it (issue 14).
_T, _OP = _TARGET_RUNS.c, _OPERATIONS.c
_READ_TARGET = (
    core_select(_T.status, _T.command_id, _T.command_status, _T.target_id, _T.enterprise_id,
                _T.stage_run_id, _T.pipeline_run_id, _OP.operation_type, _OP.args,
                _DEVICES.c.attributes)
    .select_from(_TARGET_RUNS)
    .outerjoin(_OPERATIONS, _OP.id == _T.stage_run_operation_id)
    .outerjoin(_DEVICES, _DEVICES.c.id == _T.target_id)
    .where(_T.id == bindparam(_TID)))
_READ_COMMAND = core_select(_COMMANDS.c.status, _COMMANDS.c.sent_at).where(
    _COMMANDS.c.id == bindparam(_CID))
_INSERT_COMMAND = insert(_COMMANDS)
_AT = bindparam("at", type_=UTCDateTime())
_MARK_SENT = (update(_COMMANDS)
              .where(_COMMANDS.c.id == bindparam(_CID), _COMMANDS.c.sent_at.is_(None))
              .values(sent_at=_AT, updated_at=_AT))


def prepare_command(session: Session, target_run_id: UUID, attempt: int, gateway: str,
                    at: datetime) -> CommandPlan:
    """The command of this attempt, created once (its id derives from the target run and the
    attempt), with the target run moved to processing and pointed at it.

    Core statements, not ORM objects: once per target on the fan-out's hot path, and four
    `session.get`s and a flush were most of its cost (docs/benchmarks.md, issue 14).
    """
    target = session.execute(_READ_TARGET, {_TID: target_run_id}).first()
    if target is None:
        raise LookupError(f"target run {target_run_id} not found")
    if is_terminal(RunKind.TARGET, target.status):
        # Ended: before it started (an operator cancelled it; no command), or by this very
        # workflow in a task lost with its worker (it has the command it ended with).
        return CommandPlan(str(target.command_id or ""), str(target.target_id), "", {}, {},
                           False, target.status, command_status=target.command_status)
    assert target.operation_type is not None, "a target run's operation is never deleted"
    command_id = derive_command_id(target_run_id, attempt)
    command = session.execute(_READ_COMMAND, {_CID: command_id}).first()
    command_status, sent_at = (command.status, command.sent_at) if command else (
        CommandStatus.SCHEDULED.value, None)
    if command is None:
        now = utcnow()
        session.execute(_INSERT_COMMAND, dict(
            id=command_id, target_run_id=target_run_id, enterprise_id=target.enterprise_id,
            device_id=target.target_id, operation_type=target.operation_type,
            args=target.args or {}, gateway=gateway, status=command_status, reason="",
            output={}, last_sequence=-1, created_at=now, updated_at=now))
    status = apply_status(session, StatusChange(
        RunKind.TARGET, str(target_run_id), TargetRunStatus.PROCESSING, at,
        fields={"command_id": command_id, "command_status": command_status,
                "attempt": attempt},
    ))
    return CommandPlan(
        command_id=str(command_id), device_id=str(target.target_id),
        operation_type=target.operation_type, args=dict(target.args or {}),
        device_attributes=dict(target.attributes or {}),
        already_sent=sent_at is not None, target_status=status,
        stage_run_id=str(target.stage_run_id), pipeline_run_id=str(target.pipeline_run_id),
    )


def mark_dispatched(session: Session, target_run_id: UUID, command_id: UUID,
                    at: datetime) -> str:
    """The gateway queued the command: mark it sent and its target run dispatched.
    Returns the target run's status afterwards."""
    session.execute(_MARK_SENT, {_CID: command_id, "at": at})
    return apply_status(session, StatusChange(
        RunKind.TARGET, str(target_run_id), TargetRunStatus.DISPATCHED, at,
        fields={"command_status": CommandStatus.QUEUED.value}))


def mark_command_cancel_requested(engine: Engine, command_id: UUID, at: datetime) -> None:
    with transaction(engine) as session:
        command = session.get(Command, command_id)
        if command is not None and command.cancel_requested_at is None:
            command.cancel_requested_at = at
            session.add(command)


# ---- open commands (what a gateway resumes) ----------------------------------------------------


@dataclass
class OpenCommand:
    """A sent command that has not ended, with what a gateway needs to carry on with it."""

    command_id: str
    target_run_id: str
    enterprise_id: str
    device_id: str
    operation_type: str
    args: dict[str, Any]
    status: str
    last_sequence: int
    sent_at: datetime | None
    device_attributes: dict[str, str]


def _open_query(where: Sequence[Any]) -> Any:
    # Outer join: a command whose device was deleted still resumes, with no attributes.
    return (
        select(Command, col(Device.attributes))
        .outerjoin(Device, col(Device.id) == col(Command.device_id))
        .where(col(Command.sent_at).is_not(None),
               col(Command.status).not_in(list(TERMINAL[RunKind.COMMAND])), *where)
        .order_by(col(Command.sent_at), col(Command.id))
    )


def _open_command(command: Command, attributes: dict[str, str] | None) -> OpenCommand:
    return OpenCommand(
        command_id=str(command.id), target_run_id=str(command.target_run_id),
        enterprise_id=str(command.enterprise_id), device_id=str(command.device_id),
        operation_type=command.operation_type, args=dict(command.args or {}),
        status=command.status, last_sequence=command.last_sequence, sent_at=command.sent_at,
        device_attributes=dict(attributes or {}),
    )


def open_commands(engine: Engine, gateway_name: str) -> list[OpenCommand]:
    """Commands sent through this gateway that have not ended: what to resume after a restart."""
    with transaction(engine) as session:
        rows = session.execute(_open_query([col(Command.gateway) == gateway_name])).all()
        return [_open_command(command, attributes) for command, attributes in rows]


def load_open_command(engine: Engine, command_id: UUID | str) -> OpenCommand | None:
    """One sent, unfinished command (any gateway); None if unknown, unsent or ended."""
    try:
        cid = as_command_id(command_id)
    except UnknownCommand:
        return None
    with transaction(engine) as session:
        row = session.execute(_open_query([col(Command.id) == cid])).first()
        return _open_command(row[0], row[1]) if row else None


def command_still_open(engine: Engine, command_id: UUID | str) -> bool:
    """Whether anyone still waits for this command's events: it has not ended, nor has its
    target run (whose workflow follows it). False for an unknown command (its run deleted)."""
    try:
        cid = as_command_id(command_id)
    except UnknownCommand:
        return False
    with transaction(engine) as session:
        row = session.execute(
            select(col(Command.status), col(TargetRun.status))
            .outerjoin(TargetRun, col(TargetRun.id) == col(Command.target_run_id))
            .where(col(Command.id) == cid)).first()
    if row is None:
        return False
    command_status, target_status = row
    return not is_terminal(RunKind.COMMAND, command_status) and not (
        target_status is not None and is_terminal(RunKind.TARGET, target_status))
