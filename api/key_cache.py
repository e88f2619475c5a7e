"""API keys already checked, kept in memory for a minute.

Every request authenticates; without this each one paid a database query and a thread hop
before its real work (bench/api_poll.py). Only keys found valid are kept, so a new key works at
once; a key deleted from the store keeps working here for at most `ttl_seconds`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID


class KeyCache:
    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[UUID, float]] = OrderedDict()

    def get(self, key_hash: str) -> UUID | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        enterprise_id, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key_hash]
            return None
        return enterprise_id

    def put(self, key_hash: str, enterprise_id: UUID) -> None:
        self._entries[key_hash] = (enterprise_id, time.monotonic() + self._ttl)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
