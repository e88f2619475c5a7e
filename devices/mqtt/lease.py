"""The responder lease: with several workers, one at a time answers device requests (it holds
the lease, renewing it; a worker that stops renewing loses it once it expires)."""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from devices.mqtt.tables import ResponderLease
from store.db import transaction

_L = ResponderLease.c


def claim_lease(engine: Engine, name: str, holder: str, ttl_s: float, now: float) -> bool:
    """Take or renew the lease; True while `holder` holds it until now + ttl_s."""
    with transaction(engine) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(ResponderLease).values(name=name, holder=holder, expires_at=0.0)
                        .on_conflict_do_nothing(index_elements=["name"]))
        result = session.execute(
            update(ResponderLease)
            .where(_L.name == name, or_(_L.holder == holder, _L.expires_at < now))
            .values(holder=holder, expires_at=now + ttl_s))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release_lease(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up now (a clean stop), so another worker takes over at its next try."""
    with transaction(engine) as session:
        session.execute(update(ResponderLease)
                        .where(_L.name == name, _L.holder == holder).values(expires_at=0.0))
