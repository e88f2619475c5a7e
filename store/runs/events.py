"""Command events from gateways and the signals still owed to workflows (an outbox).

The store is the arbiter of a command's status: every reported event is kept, and only those
that move the status forward are applied (and passed on to the target-run workflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col

from domain.commands import CommandEvent
from domain.statuses import TERMINAL, RunKind, can_transition, is_terminal, parse_status
from store.db import transaction
from store.runs.commands import Command, UnknownCommand, as_command_id
from store.runs.commands import CommandEvent as CommandEventRow
from store.runs.tables import COMMAND_EVENT, StatusEvent, TargetRun
from store.types import utcnow

# A signal carries at most this many events, well inside Temporal's 2 MB payload limit.
MAX_EVENTS_PER_SIGNAL = 200
_COMMANDS: Table = Command.__table__  # type: ignore[attr-defined]
_EVENTS: Table = CommandEventRow.__table__  # type: ignore[attr-defined]
_TARGET_RUNS: Table = TargetRun.__table__  # type: ignore[attr-defined]
_STATUS_EVENTS: Table = StatusEvent.__table__  # type: ignore[attr-defined]


class CommandSignalOutbox(SQLModel, table=True):
    """Applied events not yet signalled to their workflow (an outbox).

    Recording and signalling cannot share a transaction; a row here survives a failed signal or
    a crash in between, so the next delivery for the command (or `pending_signals`) sends it.
    """

    __tablename__ = "command_signal_outbox"
    command_event_id: int = Field(
        sa_column=Column(BigInteger(), primary_key=True, autoincrement=False)
    )
    command_id: UUID = Field(index=True)
    target_run_id: UUID = Field(index=True)
    at_epoch: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


_OUTBOX: Table = CommandSignalOutbox.__table__  # type: ignore[attr-defined]


def command_log_entry(pipeline_run_id: UUID, target_run_id: UUID, command_id: UUID,
                      from_status: str, to_status: str, reason: str, output: dict[str, Any],
                      sequence: int | None, at: datetime) -> dict[str, Any]:
    """The run's log row (StatusEvent, kind command) of one applied command event."""
    return {"pipeline_run_id": pipeline_run_id, "kind": COMMAND_EVENT, "run_id": target_run_id,
            "from_status": from_status, "to_status": to_status, "reason": reason, "at": at,
            "detail": {"command_id": str(command_id), "sequence": sequence, "output": output}}


@dataclass
class SignalBatch:
    """Events owed to one target-run workflow, and the outbox rows to clear once sent."""

    target_run_id: str
    events: list[CommandEvent] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)


@dataclass
class RecordedEvents:
    target_run_id: str
    status: str  # the command's status after these events
    applied: list[CommandEvent]  # this call's events that changed the command
    signal: SignalBatch  # what to signal now: these plus any earlier unsent ones
    gateway: str = ""  # the gateway the command went through
    sent_at: datetime | None = None  # when it was dispatched (None: not yet)
    added: int = 0  # this call's events whose data was kept (those that applied included)


_CID = "command_id_"  # the bound id of the statements below (not a column name)
# Built once (statements and their cache keys cost more to build than to run, bench/fanout.py).
_TAKE_WRITE_LOCK = (update(_COMMANDS).where(_COMMANDS.c.id == bindparam(_CID))
                    .values(updated_at=_COMMANDS.c.updated_at))
_READ_FOR_UPDATE = (select(Command, _TARGET_RUNS.c.pipeline_run_id)
                    .outerjoin(_TARGET_RUNS, _TARGET_RUNS.c.id == col(Command.target_run_id))
                    .where(col(Command.id) == bindparam(_CID)).with_for_update(of=_COMMANDS))

_TID = "target_run_id_"
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)
_INSERT_OUTBOX = insert(_OUTBOX)
_INSERT_STATUS_EVENTS = insert(_STATUS_EVENTS)
# No .values(): the SET clause is the parameters given (compiled once per set of keys).
_UPDATE_COMMAND = update(_COMMANDS).where(_COMMANDS.c.id == bindparam(_CID))
_OPEN_TARGET = (_TARGET_RUNS.c.id == bindparam(_TID),
                _TARGET_RUNS.c.status.not_in(list(TERMINAL[RunKind.TARGET])))
_READ_OPEN_TARGET_OUTPUTS = (
    select(_TARGET_RUNS.c.error, _TARGET_RUNS.c.output_attachment_ids,
           _TARGET_RUNS.c.run_message_history).where(*_OPEN_TARGET).with_for_update())
_UPDATE_OPEN_TARGET = update(_TARGET_RUNS).where(*_OPEN_TARGET)


def _lock_command(session: Session, command_id: UUID) -> tuple[Command, UUID | None] | None:
    """Read the command (and its pipeline run's id) for writing, so concurrent deliveries
    apply one after the other.

    PostgreSQL: the row lock of FOR UPDATE. SQLite ignores FOR UPDATE, and pysqlite only
    begins a transaction at the first write, so a no-op write comes first to take the
    database's write lock before the read (otherwise two readers race to a lost update).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_TAKE_WRITE_LOCK, {_CID: command_id})
    # The target run's pipeline run comes in the same read: the run's log needs it.
    row = session.execute(_READ_FOR_UPDATE, {_CID: command_id}).first()
    return None if row is None else (row[0], row[1])


# (the command row, its target run's status or "" when not read) -> the events to record
ReportBuilder = Callable[[Command, str], Sequence[CommandEvent]]


def record_command_events(
    engine: Engine, command_id: UUID | str, events: Sequence[CommandEvent]
) -> RecordedEvents:
    """Keep every event, apply those that move the command forward, and queue them to signal.

    An event at the command's current, unfinished status that carries data (output, errors,
    attachments, messages) moves nothing but its data is kept: merged into the command's output
    and added to its target run (`_add_to_target_run`), and never signalled.

    Raises UnknownCommand for an unknown id and ValueError (naming the allowed values) for an
    unknown status, before anything is written.
    """
    with transaction(engine) as session:
        return record_command_events_in(session, command_id, events)


def record_command_events_in(session: Session, command_id: UUID | str,
                             events: Sequence[CommandEvent]) -> RecordedEvents:
    """`record_command_events` in the caller's transaction."""
    for event in events:
        parse_status(RunKind.COMMAND, event.status)
    return _record(session, command_id, lambda command, target_status: events)


def record_report(engine: Engine, command_id: UUID | str, build: ReportBuilder) -> RecordedEvents:
    """Record the events `build` makes from the command and its target run's status, read
    under the command's lock: a report judged against the state it will change. Whatever
    `build` raises (a refusal) leaves nothing written."""
    with transaction(engine) as session:
        return record_report_in(session, command_id, build)


def record_report_in(session: Session, command_id: UUID | str,
                     build: ReportBuilder) -> RecordedEvents:
    """`record_report` in the caller's transaction (which a refusal must roll back)."""
    return _record(session, command_id, build, read_target=True)


def _record(session: Session, command_id: UUID | str, build: ReportBuilder,
            read_target: bool = False) -> RecordedEvents:
    cid = as_command_id(command_id)
    now = utcnow()
    locked = _lock_command(session, cid)
    if locked is None:
        raise UnknownCommand(command_id)
    command, pipeline_run_id = locked
    target_status = ""
    if read_target:
        target_status = session.execute(
            select(_TARGET_RUNS.c.status).where(_TARGET_RUNS.c.id == command.target_run_id)
        ).scalar_one_or_none() or ""
    events = list(build(command, target_status))
    statuses = [parse_status(RunKind.COMMAND, event.status) for event in events]
    # Core statements, not ORM objects: every simulated device reports five events, and
    # the unit of work around them was a tenth of the worker's CPU (bench/fanout.py).
    status, reason, output = command.status, command.reason, dict(command.output or {})
    last_sequence = command.last_sequence
    rows: list[dict[str, Any]] = []
    applied: list[tuple[int, CommandEvent]] = []  # (index in rows, the message)
    logged: list[dict[str, Any]] = []  # the run's log entries of the kept events
    added: list[CommandEvent] = []  # events whose data is kept
    for event, new_status in zip(events, statuses, strict=True):
        fresh = event.sequence is None or event.sequence > last_sequence
        moves = fresh and can_transition(RunKind.COMMAND, status, new_status)
        adds = fresh and event.carries_data() and (moves or (
            new_status == status and not is_terminal(RunKind.COMMAND, status)))
        rows.append({"command_id": cid, "status": new_status, "reason": event.reason,
                     "output": dict(event.output or {}), "sequence": event.sequence,
                     "error": list(event.error),
                     "output_attachment_ids": list(event.output_attachment_ids),
                     "run_message_history": list(event.run_message_history),
                     "applied": moves or adds, "received_at": now})
        if not (moves or adds):
            continue
        if pipeline_run_id is not None:  # a data-only report is in the run's log too
            logged.append(command_log_entry(pipeline_run_id, command.target_run_id, cid,
                                            status, new_status, event.reason,
                                            dict(event.output or {}), event.sequence, now))
        output.update(event.output or {})
        if event.sequence is not None:
            last_sequence = event.sequence
        if adds:
            added.append(event)
        if not moves:
            continue
        status, reason = new_status, event.reason
        applied.append((len(rows) - 1, replace(
            event, command_id=str(cid), status=new_status, output=dict(event.output or {}),
            at_epoch=event.at_epoch or now.timestamp())))
    event_ids = session.execute(_INSERT_EVENTS, rows).scalars().all() if rows else []
    if applied or added:
        session.execute(_UPDATE_COMMAND, {
            _CID: cid, "status": status, "reason": reason, "output": output,
            "last_sequence": last_sequence, "updated_at": now})
    if applied:
        session.execute(_INSERT_OUTBOX, [
            {"command_event_id": event_ids[index], "command_id": cid,
             "target_run_id": command.target_run_id, "at_epoch": message.at_epoch}
            for index, message in applied])
    if logged:  # one bulk INSERT: the fan-out's hot path
        session.execute(_INSERT_STATUS_EVENTS, logged)
    if added:
        _add_to_target_run(session, command.target_run_id, added, output, now)
    pending = _pending_for_command(session, cid)
    signal = pending[0] if pending else SignalBatch(target_run_id=str(command.target_run_id))
    return RecordedEvents(target_run_id=str(command.target_run_id), status=status,
                          applied=[message for _, message in applied], signal=signal,
                          gateway=command.gateway, sent_at=command.sent_at,
                          added=len(added))


def _add_to_target_run(session: Session, target_run_id: UUID, events: list[CommandEvent],
                       output: dict[str, Any], at: datetime) -> None:
    """What the device reported, on its target run while it is open: its command's merged
    `output` as `output_data`; errors and messages appended, attachment ids appended once each.
    Written here, not by the run's workflow, so a report shows at once and costs the workflow
    nothing; these columns have no other writer (the row lock keeps two commands of one run in
    turn). Output alone (every gateway's final event) is one UPDATE, without a read."""
    values: dict[str, Any] = {"output_data": output, "updated_at": at}
    if any(e.error or e.output_attachment_ids or e.run_message_history for e in events):
        row = session.execute(_READ_OPEN_TARGET_OUTPUTS, {_TID: target_run_id}).first()
        if row is None:
            return  # a finished run's outputs no longer change (the command keeps the events)
        errors = list(row.error or [])
        attachments = list(row.output_attachment_ids or [])
        messages = list(row.run_message_history or [])
        for event in events:
            errors.extend(event.error)
            attachments.extend(a for a in event.output_attachment_ids if a not in attachments)
            messages.extend(event.run_message_history)
        values.update(error=errors, output_attachment_ids=attachments,
                      run_message_history=messages)
    session.execute(_UPDATE_OPEN_TARGET, {**values, _TID: target_run_id})


_OWED = (
    select(_OUTBOX.c.command_event_id, _OUTBOX.c.target_run_id, _OUTBOX.c.at_epoch,
           _EVENTS.c.command_id, _EVENTS.c.status, _EVENTS.c.reason, _EVENTS.c.output,
           _EVENTS.c.sequence)
    .join(_EVENTS, _EVENTS.c.id == _OUTBOX.c.command_event_id)
    .order_by(_OUTBOX.c.command_event_id)
)
_OWED_FOR_COMMAND = _OWED.where(_OUTBOX.c.command_id == bindparam(_CID))


def _pending(session: Session, where: list[Any], limit: int | None = None) -> list[SignalBatch]:
    """Outbox rows joined to their events, grouped per target run, oldest first."""
    stmt = _OWED.where(*where)
    if limit is not None:
        stmt = stmt.limit(limit)
    return _batches(session.connection().execute(stmt).all())


def _pending_for_command(session: Session, command_id: UUID) -> list[SignalBatch]:
    """`_pending` of one command's outbox rows (after each delivery: the hot path)."""
    return _batches(session.connection().execute(_OWED_FOR_COMMAND, {_CID: command_id}).all())


def _batches(rows: Sequence[Any]) -> list[SignalBatch]:
    batches: dict[UUID, SignalBatch] = {}
    for row in rows:
        batch = batches.setdefault(row.target_run_id,
                                   SignalBatch(target_run_id=str(row.target_run_id)))
        if len(batch.events) >= MAX_EVENTS_PER_SIGNAL:
            continue  # the rest stays in the outbox for the next round
        batch.events.append(CommandEvent(
            command_id=str(row.command_id), status=row.status, reason=row.reason,
            output=dict(row.output or {}), sequence=row.sequence, at_epoch=row.at_epoch,
        ))
        batch.outbox_ids.append(row.command_event_id)
    return list(batches.values())


def pending_signals(engine: Engine, limit: int = 1000) -> list[SignalBatch]:
    """Applied events still owed to their workflows (after a failed signal or a crash)."""
    with transaction(engine) as session:
        return _pending(session, [], limit=limit)


def mark_signalled(engine: Engine, outbox_ids: Iterable[int]) -> None:
    with transaction(engine) as session:
        mark_signalled_in(session, outbox_ids)


def mark_signalled_in(session: Session, outbox_ids: Iterable[int]) -> None:
    """The signal of these outbox rows was accepted: clear them (in the caller's transaction)."""
    ids = list(outbox_ids)
    if ids:
        session.execute(delete(_OUTBOX).where(_OUTBOX.c.command_event_id.in_(ids)))
