"""The store's schema under alembic: `upgrade` takes any store we know to head (an empty
database, one made by `create_all` before migrations existed, one at an older revision);
`require_head` is what the worker and the API call at start-up; `is_at_head` is for readiness
checks. The migrations themselves are in versions/; env.py says what they cover."""

from store.migrations.revisions import (
    FIRST_REVISION,
    EmptyStore,
    NotAdoptable,
    StoreNotAtHead,
    UnknownRevision,
    current_revision,
    head_revision,
    is_at_head,
    require_head,
    upgrade,
)

__all__ = [
    "FIRST_REVISION",
    "EmptyStore",
    "NotAdoptable",
    "StoreNotAtHead",
    "UnknownRevision",
    "current_revision",
    "head_revision",
    "is_at_head",
    "require_head",
    "upgrade",
]
