"""The simulated fleet's own table: which commands it started on a device (at most once,
across restarts and processes). It is not a production table: the fleet creates it when it
starts (`create_tables`), on its own metadata, so the store never knows it."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.db import transaction
from store.runs.commands import Command, as_command_id
from store.types import UTCDateTime, utcnow

_SIM_METADATA = MetaData()

# The simulated fleet started this command on its device: at most once, across restarts.
SimDelivery = Table(
    "sim_delivery", _SIM_METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("command_id", Uuid(), nullable=False, unique=True),  # the key makes a claim atomic
    Column("device_id", Uuid(), nullable=False, index=True),
    Column("gateway", String(), nullable=False, default=""),
    Column("at", UTCDateTime(), nullable=False),
)


_COMMANDS = Command.__table__  # type: ignore[attr-defined]
# Sent now unless it was already (then its stamps stay), through this gateway unless another
# was named: one UPDATE (every SET reads the row as it was), built once.
_NOW = bindparam("now", type_=UTCDateTime())
_MARK_SENT = update(_COMMANDS).where(_COMMANDS.c.id == bindparam("cid")).values(
    sent_at=func.coalesce(_COMMANDS.c.sent_at, _NOW),
    updated_at=case((_COMMANDS.c.sent_at.is_(None), _NOW), else_=_COMMANDS.c.updated_at),
    gateway=case((_COMMANDS.c.gateway == "", bindparam("gateway_name")),
                 else_=_COMMANDS.c.gateway))


def create_tables(engine: Engine) -> None:
    """The simulator's table, if missing (the production schema never includes it)."""
    _SIM_METADATA.create_all(engine)


def claim_sim_delivery(
    engine: Engine, command_id: UUID | str, device_id: UUID | str, gateway_name: str
) -> bool:
    """Record that the simulated device starts this command; False if it already has."""
    with transaction(engine) as session:
        return claim_sim_delivery_in(session, command_id, device_id, gateway_name)


def claim_sim_delivery_in(
    session: Session, command_id: UUID | str, device_id: UUID | str, gateway_name: str
) -> bool:
    """`claim_sim_delivery` in the caller's transaction.

    The insert skips on the unique command id, so two processes racing get one True. The
    command row (when there is one) is marked sent through this gateway if nobody did yet.
    """
    cid, did = as_command_id(command_id), UUID(str(device_id))
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(SimDelivery)
        .values(command_id=cid, device_id=did, gateway=gateway_name, at=utcnow())
        .on_conflict_do_nothing(index_elements=["command_id"])
        .returning(SimDelivery.c.id)
    )
    claimed = session.execute(stmt).first() is not None
    session.execute(_MARK_SENT, {"cid": cid, "now": utcnow(), "gateway_name": gateway_name})
    return claimed


def sim_delivery_count(engine: Engine, command_id: UUID | str) -> int:
    """How many times the simulated fleet started this command (any process): 0 or 1."""
    with transaction(engine) as session:
        this = SimDelivery.c.command_id == as_command_id(command_id)
        rows = session.execute(select(SimDelivery.c.id).where(this)).all()
        return len(rows)
