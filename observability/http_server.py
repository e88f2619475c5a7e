"""A minimal HTTP/1.1 server on the worker's event loop for its metrics and health paths
(GET and HEAD only, one response per connection). The worker has no web framework, and
uvicorn would take over the process's signal handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD = 16_384


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[], Awaitable[Response]]


def _encode(response: Response, head_only: bool) -> bytes:
    reason = HTTPStatus(response.status).phrase
    head = (f"HTTP/1.1 {response.status} {reason}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head if head_only else head + response.body


class HttpEndpoints:
    """Serves `routes` (path -> handler) on host:port until `close()`."""

    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self._routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if len(head) > _MAX_REQUEST_HEAD:
                raise ValueError("request head too large")
            method, target, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            writer.write(_encode(await self._answer(method, path), method == "HEAD"))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError, ConnectionError):
            pass  # a client that sent no valid request gets no answer
        except Exception:
            log.exception("metrics endpoint failed")
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n")
        handler = self._routes.get(path.rstrip("/") or "/")
        if handler is None:
            return Response(404, f"no such path; try {', '.join(self._routes)}\n".encode())
        return await handler()
