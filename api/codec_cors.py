"""CORS for the payload codec endpoint only, and only for the Temporal Web UI's origins
(FLEETPIPE_CODEC_CORS_ORIGINS): the UI calls `/codec/decode` from its own origin, with the
Authorization and X-Namespace headers, so the browser asks first (a preflight OPTIONS). Every
other path keeps no CORS at all: no browser page may call the rest of the API."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CODEC_PREFIX = "/codec/"
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]


class CodecCorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=list(origins),
                                   allow_methods=["POST", "OPTIONS"],
                                   allow_headers=ALLOWED_HEADERS, allow_credentials=True,
                                   max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CODEC_PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
