"""Enterprises and their API keys. Keys are shown once at creation and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import select

from store.definitions import ApiToken, Enterprise
from store.engine import session_scope

KEY_PREFIX = "fp_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_enterprise(engine: Engine, name: str) -> Enterprise:
    """The enterprise with this name, created if missing."""
    with session_scope(engine) as session:
        found = session.exec(select(Enterprise).where(Enterprise.name == name)).first()
        if found:
            return found
        enterprise = Enterprise(name=name)
        session.add(enterprise)
        return enterprise


def create_token(engine: Engine, enterprise_id: UUID, name: str = "") -> str:
    """A new API key for the enterprise; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        session.add(ApiToken(enterprise_id=enterprise_id, name=name, token_hash=hash_key(key)))
    return key


def enterprise_for_key(engine: Engine, key: str) -> UUID | None:
    """The enterprise a key belongs to, or None for an unknown key."""
    return enterprise_for_hash(engine, hash_key(key))


def enterprise_for_hash(engine: Engine, key_hash: str) -> UUID | None:
    with session_scope(engine) as session:
        token = session.exec(select(ApiToken).where(ApiToken.token_hash == key_hash)).first()
        return token.enterprise_id if token else None
