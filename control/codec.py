"""The payload codec as a service, for the Temporal remote-codec protocol (`/codec/decode` and
`/codec/encode`): a Payloads message in protobuf's JSON form in, the same form out, through the
very codec the workers and clients use (workflows/codec.py)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from control.errors import CodecRefused
from workflows.codec import CodecUnavailable, KeyRing, SensitivePayloadCodec


class PayloadCodecService:
    def __init__(self, ring: KeyRing, namespace: str) -> None:
        self._codec = SensitivePayloadCodec(ring)
        self._namespace = namespace

    def _check(self, namespace: str | None) -> None:
        if not self._codec.ring.configured:
            raise CodecRefused(503, "no payload codec key is configured on this API: set "
                               "FLEETPIPE_CODEC_KEYS (the workers' keys) to decode payloads")
        if namespace and namespace != self._namespace:
            raise CodecRefused(400, f"this codec serves namespace {self._namespace!r}, not "
                               f"{namespace[:200]!r}")

    @staticmethod
    def _parse(body: Any) -> Payloads:
        try:
            return json_format.ParseDict(body, Payloads())
        except (json_format.ParseError, TypeError, ValueError, AttributeError):
            raise CodecRefused(400, 'the body is not a Payloads message: {"payloads": '
                               '[{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}'
                               ) from None

    async def decode(self, body: Any, namespace: str | None = None) -> dict[str, Any]:
        self._check(namespace)
        payloads = self._parse(body)
        try:
            decoded = await self._codec.decode(list(payloads.payloads))
        except CodecUnavailable as exc:
            raise CodecRefused(400, str(exc)) from None
        return json_format.MessageToDict(Payloads(payloads=decoded))

    async def encode(self, body: Any, namespace: str | None = None) -> dict[str, Any]:
        self._check(namespace)
        payloads = self._parse(body)
        encoded = await self._codec.encode(list(payloads.payloads))
        return json_format.MessageToDict(Payloads(payloads=encoded))
