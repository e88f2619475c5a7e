"""The in-memory cache of checked API keys."""

from __future__ import annotations

import time
import uuid

from api.key_cache import KeyCache


def test_a_kept_key_answers_until_its_time_is_up(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = KeyCache(ttl_seconds=60)
    enterprise = uuid.uuid4()
    cache.put("h1", enterprise)
    now[0] += 59.9
    assert cache.get("h1") == enterprise
    now[0] += 0.2
    assert cache.get("h1") is None
    assert cache.get("never-put") is None


def test_the_oldest_keys_make_room():
    cache = KeyCache(max_entries=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put("a", first)
    cache.put("b", second)
    assert cache.get("a") == first
    cache.put("c", third)
    assert cache.get("a") is None  # put order, not use order: "a" was put first
    assert (cache.get("b"), cache.get("c")) == (second, third)
