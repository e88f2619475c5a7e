"""The Temporal remote payload codec (`POST /codec/decode`, `/codec/encode`), so the Temporal
Web UI and CLI can show the sensitive inputs a run's history holds encrypted, to an operator
with an API key. Bodies are protobuf JSON Payloads, as the protocol has them (no envelope);
errors are envelopes. CORS for the Web UI's origins is api.codec_cors's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header
from fastapi.responses import JSONResponse

from api.deps import CallerDep, CodecDep
from api.envelope import COMMON_ERRORS, error_responses

router = APIRouter(tags=["Payload codec"], responses=error_responses(*COMMON_ERRORS, 503))

PayloadsBody = Annotated[dict[str, Any], Body(
    description='Payloads in protobuf JSON: {"payloads": [{"metadata": {"encoding": '
    '"<base64>"}, "data": "<base64>"}]}')]
Namespace = Annotated[str | None, Header(alias="X-Namespace",
                                         description="The Temporal namespace (optional).")]


@router.post("/codec/decode", name="codec_decode", summary="Decode payloads (Temporal codec)")
async def decode(_: CallerDep, codec: CodecDep, body: PayloadsBody,
                 x_namespace: Namespace = None) -> JSONResponse:
    """The payloads with fleetpipe's encrypted ones decrypted; others as they were."""
    return JSONResponse(await codec.decode(body, x_namespace))


@router.post("/codec/encode", name="codec_encode", summary="Encode payloads (Temporal codec)")
async def encode(_: CallerDep, codec: CodecDep, body: PayloadsBody,
                 x_namespace: Namespace = None) -> JSONResponse:
    """The payloads with those marked sensitive encrypted; others as they were."""
    return JSONResponse(await codec.encode(body, x_namespace))
