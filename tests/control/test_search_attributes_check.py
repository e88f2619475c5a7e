"""The worker's start-up check: fleetpipe's search attributes are registered on the namespace
(real dev server), else it refuses naming what is missing and how to register it."""

from __future__ import annotations

import pytest

from control.connection import SearchAttributesMissing, require_search_attributes
from workflows import names


async def test_a_namespace_with_every_attribute_passes(temporal_client):
    await require_search_attributes(temporal_client, "default")


async def test_a_missing_attribute_is_named_with_how_to_register_it(
        temporal_client, monkeypatch):
    monkeypatch.setitem(names.SEARCH_ATTRIBUTES, "FleetpipeNeverRegistered", "Keyword")
    with pytest.raises(SearchAttributesMissing) as refused:
        await require_search_attributes(temporal_client, "default")
    message = str(refused.value)
    assert "FleetpipeNeverRegistered=Keyword" in message
    assert "FleetpipeKind" not in message  # registered by the fixture
    assert "FLEETPIPE_SEARCH_ATTRIBUTES=false" in message
