"""Esper's Commands V2 API through Esper's own SDK (`esperclient`), made fit for async code:
each call waits its turn under one request-rate bound, runs on a few threads of its own, and
ends in a result or one of three errors the gateway acts on (auth, rejected, unavailable)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import esperclient
import urllib3
from esperclient.rest import ApiException

from devices.esper.config import EsperConfig

T = TypeVar("T")

_LIST_PATH = "/v0/enterprise/{enterprise_id}/command/"
_MAX_PAGES = 50  # a device's requests of one command type: 50 pages is far beyond any real one


class EsperError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EsperAuthError(EsperError):
    """401/403: the key is wrong, revoked or lacks the permission. Retrying cannot help."""


class EsperRejected(EsperError):
    """Another 4xx: Esper refused this call (bad arguments, unknown device or request)."""


class EsperUnavailable(EsperError):
    """429, 5xx, a timeout or no connection: try again later. `retry_after_s` when Esper
    said how long to wait."""

    def __init__(self, message: str, status: int = 0, retry_after_s: float | None = None):
        super().__init__(message, status)
        self.retry_after_s = retry_after_s


class Pacer:
    """Spaces the starts of calls at least 1/rate seconds apart: in any window of T seconds
    at most T x rate + 1 calls start, whatever the number of devices."""

    def __init__(self, rate_per_second: float) -> None:
        self._interval = 1.0 / rate_per_second
        self._next = 0.0
        self._lock = asyncio.Lock()  # FIFO: callers go in the order they asked

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
            if start > now:
                await asyncio.sleep(start - now)

    def hold(self, seconds: float) -> None:
        """No call starts for `seconds` (Esper said slow down)."""
        self._next = max(self._next, time.monotonic() + seconds)


class EsperApi:
    """The three Commands V2 calls the gateway makes, each an `await`."""

    def __init__(self, config: EsperConfig) -> None:
        self._config = config
        configuration = esperclient.Configuration()
        configuration.host = config.url
        configuration.api_key["Authorization"] = config.api_key
        configuration.api_key_prefix["Authorization"] = "Bearer"
        configuration.connection_pool_maxsize = config.max_in_flight
        self._client = esperclient.ApiClient(configuration)
        # fleetpipe retries itself, counted and paced; urllib3 retrying a request unseen could
        # repeat a create whose answer was lost.
        self._client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        self._commands = esperclient.CommandsV2Api(self._client)
        self._pacer = Pacer(config.max_requests_per_second)
        self._threads = ThreadPoolExecutor(max_workers=config.max_in_flight,
                                           thread_name_prefix="esper")
        self.calls: Counter[str] = Counter()  # calls made, by kind (create, status, list)

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    async def create(self, esper_device_id: str, operation: str,
                     command_args: dict[str, Any]) -> Any:
        """create_command for one device; returns the SDK's V0CommandRequest."""
        request = esperclient.V0CommandRequest(
            command_type="DEVICE", devices=[esper_device_id], device_type="all",
            command=operation,
            command_args=esperclient.V0CommandArgs(**command_args) if command_args else None)
        return await self._call("create", self._commands.create_command,
                                self._config.enterprise_id, request)

    async def status(self, request_id: str, esper_device_id: str) -> list[Any]:
        """get_command_request_status for one device of a request: its V0CommandStatus list."""
        page = await self._call("status", self._commands.get_command_request_status,
                                self._config.enterprise_id, request_id,
                                device=esper_device_id)
        return list(page.results or [])

    async def requests_for(self, esper_device_id: str, operation: str) -> list[Any]:
        """list_command_request for one device and command, every page: V0CommandRequests."""
        page = await self._call("list", self._commands.list_command_request,
                                self._config.enterprise_id, command_type="DEVICE",
                                devices=esper_device_id, command=operation)
        found = list(page.results or [])
        pages = 1
        while page.next and pages < _MAX_PAGES:
            query = parse_qsl(urlsplit(page.next).query)
            page = await self._call("list", self._next_page, query)
            found.extend(page.results or [])
            pages += 1
        return found

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._client.rest_client.pool_manager.clear()

    # ---- internals -----------------------------------------------------------------------
    def _next_page(self, query: list[tuple[str, str]], **kwargs: Any) -> Any:
        # The SDK has no paging arguments: follow Esper's `next` link on its own transport.
        return self._client.call_api(
            _LIST_PATH, "GET", {"enterprise_id": self._config.enterprise_id}, query,
            {"Accept": "application/json"}, response_type="InlineResponse2009",
            auth_settings=["apiKey"], _return_http_data_only=True, **kwargs)

    async def _call(self, kind: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        await self._pacer.wait()
        self.calls[kind] += 1
        kwargs["_request_timeout"] = self._config.request_timeout_s
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))
        except ApiException as err:
            raise _translate(err) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise EsperUnavailable(f"Esper at {self._config.url} did not answer: "
                                   f"{type(err).__name__}: {err}") from None
        except ValueError as err:  # the SDK's models refuse an answer they do not know
            raise EsperUnavailable(f"Esper answered something the SDK refuses: {err}") from None


def _translate(err: ApiException) -> EsperError:
    status = int(err.status or 0)
    body = err.body.decode() if isinstance(err.body, bytes) else str(err.body or "")
    detail = f"HTTP {status} {err.reason or ''}".strip() + (f": {body[:300]}" if body else "")
    if status in (401, 403):
        return EsperAuthError(detail, status)
    if status == 429 or status >= 500 or status == 0:
        return EsperUnavailable(detail, status, _retry_after(err))
    return EsperRejected(detail, status)


def _retry_after(err: ApiException) -> float | None:
    value = (err.headers or {}).get("Retry-After") if err.headers else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
