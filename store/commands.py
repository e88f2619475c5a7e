"""Command events from gateways, the signals still owed to workflows, and the sim delivery log.

The store is the arbiter of a command's status: every reported event is kept, and only those
that move the status forward are applied (and passed on to the target-run workflow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Column, Float, Integer, Table, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col

from domain.commands import CommandEvent
from domain.statuses import TERMINAL, RunKind, can_transition, parse_status
from store.definitions import Device
from store.runs import Command
from store.runs import CommandEvent as CommandEventRow
from store.types import UTCDateTime, utcnow

# A signal carries at most this many events, well inside Temporal's 2 MB payload limit.
MAX_EVENTS_PER_SIGNAL = 200
_COMMANDS: Table = Command.__table__  # type: ignore[attr-defined]
_EVENTS: Table = CommandEventRow.__table__  # type: ignore[attr-defined]


class UnknownCommand(LookupError):
    """No command has this id (the API answers 404)."""

    def __init__(self, command_id: object) -> None:
        super().__init__(f"unknown command {command_id}")
        self.command_id = str(command_id)


class SimDelivery(SQLModel, table=True):
    """The simulated fleet started this command on its device: at most once, across restarts."""

    __tablename__ = "sim_delivery"
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                         autoincrement=True),
    )
    command_id: UUID = Field(unique=True)  # the unique key is what makes a claim atomic
    device_id: UUID = Field(index=True)
    gateway: str = ""
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


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


def _session(engine: Engine) -> Session:
    # Not store.engine.session_scope: store.engine imports this module to register its tables.
    return Session(engine, expire_on_commit=False)


def _as_uuid(command_id: UUID | str) -> UUID:
    if isinstance(command_id, UUID):
        return command_id
    try:
        return UUID(str(command_id))
    except ValueError:
        raise UnknownCommand(command_id) from None


def _lock_command(session: Session, command_id: UUID) -> Command | None:
    """Read the command for writing, so concurrent deliveries apply one after the other.

    PostgreSQL: the row lock of FOR UPDATE. SQLite ignores FOR UPDATE, and pysqlite only
    begins a transaction at the first write, so a no-op write comes first to take the
    database's write lock before the read (otherwise two readers race to a lost update).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Command).where(col(Command.id) == command_id)
            .values(updated_at=col(Command.updated_at))
        )
    stmt = select(Command).where(col(Command.id) == command_id).with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def record_command_events(
    engine: Engine, command_id: UUID | str, events: Sequence[CommandEvent]
) -> RecordedEvents:
    """Keep every event, apply those that move the command forward, and queue them to signal.

    Raises UnknownCommand for an unknown id and ValueError (naming the allowed values) for an
    unknown status, before anything is written.
    """
    cid = _as_uuid(command_id)
    statuses = [parse_status(RunKind.COMMAND, event.status) for event in events]
    now = utcnow()
    with _session(engine) as session, session.begin():
        command = _lock_command(session, cid)
        if command is None:
            raise UnknownCommand(command_id)
        # Core statements, not ORM objects: every simulated device reports five events, and
        # the unit of work around them was a tenth of the worker's CPU (bench/fanout.py).
        status, reason, output = command.status, command.reason, dict(command.output or {})
        last_sequence = command.last_sequence
        rows: list[dict[str, Any]] = []
        applied: list[tuple[int, CommandEvent]] = []  # (index in rows, the message)
        for event, new_status in zip(events, statuses, strict=True):
            ok = (event.sequence is None or event.sequence > last_sequence) and can_transition(
                RunKind.COMMAND, status, new_status)
            rows.append({"command_id": cid, "status": new_status, "reason": event.reason,
                         "output": dict(event.output or {}), "sequence": event.sequence,
                         "applied": ok, "received_at": now})
            if not ok:
                continue
            status, reason = new_status, event.reason
            output.update(event.output or {})
            if event.sequence is not None:
                last_sequence = event.sequence
            applied.append((len(rows) - 1, replace(
                event, command_id=str(cid), status=new_status, output=dict(event.output or {}),
                at_epoch=event.at_epoch or now.timestamp())))
        event_ids = session.execute(
            insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True), rows
        ).scalars().all() if rows else []
        if applied:
            session.execute(update(_COMMANDS).where(_COMMANDS.c.id == cid).values(
                status=status, reason=reason, output=output, last_sequence=last_sequence,
                updated_at=now))
            session.execute(insert(_OUTBOX), [
                {"command_event_id": event_ids[index], "command_id": cid,
                 "target_run_id": command.target_run_id, "at_epoch": message.at_epoch}
                for index, message in applied])
        pending = _pending(session, [_OUTBOX.c.command_id == cid])
        signal = pending[0] if pending else SignalBatch(target_run_id=str(command.target_run_id))
        return RecordedEvents(target_run_id=str(command.target_run_id), status=status,
                              applied=[message for _, message in applied], signal=signal)


def _pending(session: Session, where: list[Any], limit: int | None = None) -> list[SignalBatch]:
    """Outbox rows joined to their events, grouped per target run, oldest first."""
    stmt = (
        select(_OUTBOX.c.command_event_id, _OUTBOX.c.target_run_id, _OUTBOX.c.at_epoch,
               _EVENTS.c.command_id, _EVENTS.c.status, _EVENTS.c.reason, _EVENTS.c.output,
               _EVENTS.c.sequence)
        .join(_EVENTS, _EVENTS.c.id == _OUTBOX.c.command_event_id)
        .where(*where)
        .order_by(_OUTBOX.c.command_event_id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    batches: dict[UUID, SignalBatch] = {}
    for row in session.connection().execute(stmt).all():
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
    with _session(engine) as session, session.begin():
        return _pending(session, [], limit=limit)


def mark_signalled(engine: Engine, outbox_ids: Iterable[int]) -> None:
    ids = list(outbox_ids)
    if not ids:
        return
    with _session(engine) as session, session.begin():
        session.execute(
            delete(CommandSignalOutbox).where(col(CommandSignalOutbox.command_event_id).in_(ids))
        )


def _open_query(where: list[Any]) -> Any:
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
    with _session(engine) as session, session.begin():
        rows = session.execute(_open_query([col(Command.gateway) == gateway_name])).all()
        return [_open_command(command, attributes) for command, attributes in rows]


def load_open_command(engine: Engine, command_id: UUID | str) -> OpenCommand | None:
    """One sent, unfinished command (any gateway); None if unknown, unsent or ended."""
    try:
        cid = _as_uuid(command_id)
    except UnknownCommand:
        return None
    with _session(engine) as session, session.begin():
        row = session.execute(_open_query([col(Command.id) == cid])).first()
        return _open_command(row[0], row[1]) if row else None


def claim_sim_delivery(
    engine: Engine, command_id: UUID | str, device_id: UUID | str, gateway_name: str
) -> bool:
    """Record that the simulated device starts this command; False if it already has.

    The insert skips on the unique command id, so two processes racing get one True. The
    command row (when there is one) is marked sent through this gateway if nobody did yet.
    """
    cid, did = _as_uuid(command_id), UUID(str(device_id))
    with _session(engine) as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(SimDelivery)
            .values(command_id=cid, device_id=did, gateway=gateway_name, at=utcnow())
            .on_conflict_do_nothing(index_elements=["command_id"])
            .returning(col(SimDelivery.id))
        )
        claimed = session.execute(stmt).first() is not None
        now = utcnow()
        this = col(Command.id) == cid
        session.execute(update(Command).where(this, col(Command.sent_at).is_(None))
                        .values(sent_at=now, updated_at=now))
        session.execute(update(Command).where(this, col(Command.gateway) == "")
                        .values(gateway=gateway_name))
        return claimed


def sim_delivery_count(engine: Engine, command_id: UUID | str) -> int:
    """How many times the simulated fleet started this command (any process): 0 or 1."""
    with _session(engine) as session, session.begin():
        rows = session.execute(
            select(col(SimDelivery.id)).where(col(SimDelivery.command_id) == _as_uuid(command_id))
        ).all()
        return len(rows)

