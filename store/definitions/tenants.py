"""Enterprises and their API keys. Keys are shown once at creation and stored only as hashes;
a revoked key keeps its row (with the time it was revoked) and is refused from then on."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, col, select

from store.db import transaction
from store.shapes import stamp
from store.types import utcnow

KEY_PREFIX = "fp_"


class Enterprise(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = stamp()


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the enterprise and the API key (its id and label) it came with.
    Actions record it (audit trail, run triggers); the key itself is never kept."""

    enterprise_id: UUID
    key_id: UUID
    key_name: str = ""


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str = ""
    token_hash: str = Field(unique=True, index=True)  # sha256 of the key; the key is never stored
    created_at: datetime = stamp()
    revoked_at: datetime | None = stamp(optional=True)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_enterprise(engine: Engine, name: str) -> Enterprise:
    """The enterprise with this name, created if missing."""
    with transaction(engine) as session:
        found = session.exec(select(Enterprise).where(Enterprise.name == name)).first()
        if found:
            return found
        enterprise = Enterprise(name=name)
        session.add(enterprise)
        return enterprise


def find_enterprise(engine: Engine, name: str) -> Enterprise | None:
    with transaction(engine) as session:
        return session.exec(select(Enterprise).where(Enterprise.name == name)).first()


def enterprise_name(engine: Engine, enterprise_id: UUID) -> str:
    """The enterprise's name ("" if it has no row: runs of tests made without one)."""
    with transaction(engine) as session:
        found = session.get(Enterprise, enterprise_id)
        return found.name if found else ""


def create_token(engine: Engine, enterprise_id: UUID, name: str = "") -> str:
    """A new API key for the enterprise; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        session.add(ApiToken(enterprise_id=enterprise_id, name=name, token_hash=hash_key(key)))
    return key


def enterprise_for_key(engine: Engine, key: str) -> UUID | None:
    """The enterprise a key belongs to, or None for an unknown or revoked key."""
    return enterprise_for_hash(engine, hash_key(key))


def enterprise_for_hash(engine: Engine, key_hash: str) -> UUID | None:
    caller = caller_for_hash(engine, key_hash)
    return caller.enterprise_id if caller else None


def caller_for_hash(engine: Engine, key_hash: str) -> Caller | None:
    """Who holds this key (None: unknown or revoked). Asked on every request (a revoked key is
    refused at once by every API process): one indexed row read on a pooled connection."""
    query = (core_select(col(ApiToken.enterprise_id), col(ApiToken.id), col(ApiToken.name))
             .where(col(ApiToken.token_hash) == key_hash, col(ApiToken.revoked_at).is_(None)))
    with engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    return Caller(enterprise_id=row[0], key_id=row[1], key_name=row[2]) if row else None


def list_tokens(engine: Engine, enterprise_id: UUID) -> list[ApiToken]:
    """The enterprise's keys, oldest first, revoked ones included (the key itself is not kept)."""
    with transaction(engine) as session:
        return list(session.exec(select(ApiToken).where(ApiToken.enterprise_id == enterprise_id)
                                 .order_by(col(ApiToken.created_at), col(ApiToken.id))).all())


class UnknownToken(LookupError):
    pass


def revoke_token(engine: Engine, token_id: UUID) -> tuple[ApiToken, bool]:
    """Refuse the key from now on; returns the token and whether this call revoked it (False:
    it already was, and keeps its first revocation time)."""
    with transaction(engine) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise UnknownToken(f"no API token with id {token_id}: `fleetpipe tokens list "
                               "--enterprise NAME` shows the ids")
        if token.revoked_at is not None:
            return token, False
        token.revoked_at = utcnow()
        session.add(token)
        return token, True
