"""How fleetpipe's payloads are encoded: pydantic's JSON for every client, worker and test.

Dataclasses, NamedTuples, UUIDs and datetimes travel as plain JSON (the "json/plain" encoding
the default converter also writes), so the store's results can be activity results as they
are and histories recorded with the default converter still decode (tests/workflows/
test_replay.py replays them).
"""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter
