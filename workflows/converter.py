"""How fleetpipe's payloads are encoded: pydantic's JSON for every client, worker and test, and
the payload codec over the payloads that carry a run's sensitive inputs.

Dataclasses, NamedTuples, UUIDs and datetimes travel as plain JSON (the "json/plain" encoding
the default converter also writes), so the store's results can be activity results as they
are and histories recorded with the default converter still decode (tests/workflows/
test_replay.py replays them).

A value that carries secrets (domain.inputs.carries_secrets: a message whose `sensitive`
field holds values) gets the SENSITIVE_MARK metadata on its payload; the codec encrypts
exactly those (workflows/codec.py) and passes every other payload through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter

from domain.inputs import carries_secrets
from workflows.codec import SENSITIVE_MARK, KeyRing, SensitivePayloadCodec


class MarkingPayloadConverter(PydanticPayloadConverter):
    """Pydantic's converter, marking the payloads of values that carry secrets."""

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if carries_secrets(value):
                payload.metadata[SENSITIVE_MARK] = b"1"
        return payloads


def data_converter(ring: KeyRing) -> DataConverter:
    """The converter of every client and worker: without keys it still marks, and its codec
    refuses to encode a marked payload (a secret is never sent in clear)."""
    return dataclasses.replace(pydantic_data_converter,
                               payload_converter_class=MarkingPayloadConverter,
                               payload_codec=SensitivePayloadCodec(ring))


# Without keys: what replays and tests that carry no secret use.
DATA_CONVERTER = data_converter(KeyRing())
