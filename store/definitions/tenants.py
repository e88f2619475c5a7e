"""Enterprises and their API keys. Keys are shown once at creation and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, select

from store.db import transaction
from store.shapes import stamp

KEY_PREFIX = "fp_"


class Enterprise(SQLModel, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(unique=True, index=True)
    created_at: datetime = stamp()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    name: str = ""
    token_hash: str = Field(unique=True, index=True)  # sha256 of the key; the key is never stored
    created_at: datetime = stamp()


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


def create_token(engine: Engine, enterprise_id: UUID, name: str = "") -> str:
    """A new API key for the enterprise; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        session.add(ApiToken(enterprise_id=enterprise_id, name=name, token_hash=hash_key(key)))
    return key


def enterprise_for_key(engine: Engine, key: str) -> UUID | None:
    """The enterprise a key belongs to, or None for an unknown key."""
    return enterprise_for_hash(engine, hash_key(key))


def enterprise_for_hash(engine: Engine, key_hash: str) -> UUID | None:
    with transaction(engine) as session:
        token = session.exec(select(ApiToken).where(ApiToken.token_hash == key_hash)).first()
        return token.enterprise_id if token else None
