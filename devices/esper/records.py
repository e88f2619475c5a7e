"""The Esper gateway's own table: one row per fleetpipe command it was given, written before
anything is sent to Esper (the intent), then the Esper request it became.

It is how a command is never created twice at Esper: a create is counted here before it is
attempted, so whoever picks the command up next (this process after an error, another worker
after a crash) knows an attempt may have reached Esper and looks it up before creating again.
A lease says which worker drives a command; a worker that dies stops renewing it, and another
adopts the command when it runs out. Like the simulator's table, it lives on its own metadata
and is created when the gateway starts: the production schema does not know it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel import col

from domain.statuses import TERMINAL, RunKind
from store.db import transaction
from store.runs.commands import Command, as_command_id
from store.runs.tables import TargetRun
from store.types import JSONType, UTCDateTime, utcnow

_ESPER_METADATA = MetaData()

EsperCommand = Table(
    "esper_command", _ESPER_METADATA,
    Column("command_id", Uuid(), primary_key=True),  # fleetpipe's command id
    Column("device_id", Uuid(), nullable=False, index=True),
    Column("esper_device_id", String(), nullable=False),
    Column("operation", String(), nullable=False),
    Column("command_args", JSONType, nullable=False),
    Column("intent_at", UTCDateTime(), nullable=False),
    # Create calls begun for it: above 0 and no request id means one may have reached Esper.
    Column("attempts", Integer(), nullable=False, default=0),
    Column("request_id", String(), nullable=True, unique=True),  # Esper's command request
    Column("ended", Boolean(), nullable=False, default=False),
    Column("owner", String(), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
)
_T = EsperCommand.c


@dataclass(frozen=True)
class EsperRecord:
    command_id: str
    device_id: str
    esper_device_id: str
    operation: str
    command_args: dict[str, Any]
    intent_at: datetime
    attempts: int
    request_id: str | None
    status: str  # the command's status in the store when the record was read


def create_tables(engine: Engine) -> None:
    """The gateway's table, if missing (the production schema never includes it)."""
    _ESPER_METADATA.create_all(engine)


def record_intent(engine: Engine, *, command_id: str, device_id: str, esper_device_id: str,
                  operation: str, command_args: dict[str, Any], owner: str, lease_s: float,
                  attempts: int = 0) -> EsperRecord | None:
    """Write the intent if it is new and lease it to `owner`; None if another live worker
    holds it (it carries on with it). `attempts=1` for a command that may have been sent
    before this table knew it, so it is looked up before any create."""
    cid = as_command_id(command_id)
    with transaction(engine) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(EsperCommand).values(
            command_id=cid, device_id=UUID(str(device_id)), esper_device_id=esper_device_id,
            operation=operation, command_args=command_args, intent_at=utcnow(),
            attempts=attempts, ended=False,
        ).on_conflict_do_nothing(index_elements=["command_id"]))
        return _claim(session, cid, owner, lease_s)


def adopt(engine: Engine, owner: str, lease_s: float, limit: int = 500) -> list[EsperRecord]:
    """Lease to `owner` the unended commands nobody holds (never leased, or their worker
    stopped renewing), skipping those the store already ended."""
    now = utcnow()
    with transaction(engine) as session:
        ids = session.execute(
            select(_T.command_id)
            .join(Command, col(Command.id) == _T.command_id)
            .outerjoin(TargetRun, col(TargetRun.id) == col(Command.target_run_id))
            .where(_T.ended.is_(False),
                   col(Command.status).not_in(list(TERMINAL[RunKind.COMMAND])),
                   or_(col(TargetRun.status).is_(None),
                       col(TargetRun.status).not_in(list(TERMINAL[RunKind.TARGET]))),
                   or_(_T.owner.is_(None), _T.lease_until < now))
            .order_by(_T.intent_at).limit(limit)
        ).scalars().all()
        claimed = [_claim(session, cid, owner, lease_s) for cid in ids]
        return [record for record in claimed if record is not None]


def renew(engine: Engine, command_ids: Iterable[str], owner: str, lease_s: float) -> set[str]:
    """Extend `owner`'s leases; returns the ids it still holds (the others were adopted)."""
    ids = [as_command_id(c) for c in command_ids]
    if not ids:
        return set()
    with transaction(engine) as session:
        mine = and_(_T.command_id.in_(ids), _T.owner == owner)
        session.execute(update(EsperCommand).where(mine)
                        .values(lease_until=utcnow() + timedelta(seconds=lease_s)))
        held = session.execute(select(_T.command_id).where(mine)).scalars().all()
        return {str(c) for c in held}


def release(engine: Engine, command_ids: Iterable[str], owner: str) -> None:
    """Give up `owner`'s leases (a graceful stop), so another worker adopts them at once."""
    ids = [as_command_id(c) for c in command_ids]
    if ids:
        with transaction(engine) as session:
            session.execute(update(EsperCommand)
                            .where(_T.command_id.in_(ids), _T.owner == owner)
                            .values(owner=None, lease_until=None))


def begin_attempt(engine: Engine, command_id: str, owner: str) -> bool:
    """Count a create attempt before it is made; False if `owner` no longer holds the command
    or it already has its request (then nothing may be created)."""
    with transaction(engine) as session:
        result = session.execute(
            update(EsperCommand)
            .where(_T.command_id == as_command_id(command_id), _T.owner == owner,
                   _T.request_id.is_(None), _T.ended.is_(False))
            .values(attempts=_T.attempts + 1))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def bind_request(engine: Engine, command_id: str, request_id: str) -> None:
    """The Esper request this command became (once: a command keeps its first request)."""
    with transaction(engine) as session:
        session.execute(update(EsperCommand)
                        .where(_T.command_id == as_command_id(command_id),
                               _T.request_id.is_(None))
                        .values(request_id=request_id))


def mark_ended(engine: Engine, command_id: str) -> None:
    """The command reached an end: nobody drives it any more."""
    with transaction(engine) as session:
        session.execute(update(EsperCommand)
                        .where(_T.command_id == as_command_id(command_id))
                        .values(ended=True, owner=None, lease_until=None))


def bound_request_ids(engine: Engine, request_ids: Iterable[str]) -> set[str]:
    """Which of these Esper requests already belong to a fleetpipe command."""
    ids = list(request_ids)
    if not ids:
        return set()
    with transaction(engine) as session:
        found = session.execute(select(_T.request_id).where(_T.request_id.in_(ids)))
        return {r for r in found.scalars().all() if r}


def ended_in_store(engine: Engine, command_ids: Iterable[str]) -> set[str]:
    """Which of these commands nobody waits for any more: ended, or their target run ended
    (it timed out; Esper offers no cancel, and an offline device would be polled forever)."""
    ids = [as_command_id(c) for c in command_ids]
    if not ids:
        return set()
    with transaction(engine) as session:
        found = session.execute(
            select(col(Command.id))
            .outerjoin(TargetRun, col(TargetRun.id) == col(Command.target_run_id))
            .where(col(Command.id).in_(ids),
                   or_(col(Command.status).in_(TERMINAL[RunKind.COMMAND]),
                       col(TargetRun.status).in_(TERMINAL[RunKind.TARGET]))))
        return {str(c) for c in found.scalars().all()}


def esper_request_of(engine: Engine, command_id: str) -> str | None:
    """The Esper request a command became, if it became one (for tests and operators)."""
    with transaction(engine) as session:
        return session.execute(select(_T.request_id).where(
            _T.command_id == as_command_id(command_id))).scalar_one_or_none()


def _claim(session: Session, cid: UUID, owner: str, lease_s: float) -> EsperRecord | None:
    now = utcnow()
    claimed = session.execute(
        update(EsperCommand)
        .where(_T.command_id == cid, _T.ended.is_(False),
               or_(_T.owner.is_(None), _T.owner == owner, _T.lease_until < now))
        .values(owner=owner, lease_until=now + timedelta(seconds=lease_s)))
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    row = session.execute(
        select(EsperCommand, col(Command.status))
        .outerjoin(Command, col(Command.id) == _T.command_id)
        .where(_T.command_id == cid)).one()
    return EsperRecord(
        command_id=str(row.command_id), device_id=str(row.device_id),
        esper_device_id=row.esper_device_id, operation=row.operation,
        command_args=dict(row.command_args or {}), intent_at=row.intent_at,
        attempts=row.attempts, request_id=row.request_id, status=row.status or "scheduled")
