"""The Temporal client, created once: given at startup, or connected on first use (so whatever
needs no run, such as the API's definitions endpoints, works while Temporal is still starting)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from control.errors import RunsUnavailable
from settings import Settings
from workflows import names
from workflows.converter import data_converter


class TemporalConnection:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await Client.connect(
                        self._settings.temporal_address,
                        namespace=self._settings.temporal_namespace,
                        data_converter=data_converter(self._settings.codec_keyring()),
                    )
                except Exception as exc:  # the SDK raises plain RuntimeError on connect
                    raise RunsUnavailable(
                        f"Temporal is not reachable at {self._settings.temporal_address}: "
                        "runs cannot be started or changed right now") from exc
        return self._client

    async def check(self) -> None:
        """Raises unless Temporal is reachable and answers its health check (readiness)."""
        await check_temporal(await self.get())


async def check_temporal(client: Client, timeout_s: float = 2.0) -> None:
    if not await client.service_client.check_health(timeout=timedelta(seconds=timeout_s)):
        raise RunsUnavailable("Temporal answered its health check as not serving")


class SearchAttributesMissing(Exception):
    """The namespace lacks some of fleetpipe's search attributes while the setting says to set
    them: every run would fail to start (or its stages would), so the worker refuses at once."""


async def require_search_attributes(client: Client, namespace: str) -> None:
    """Raises SearchAttributesMissing naming the attributes the namespace has not registered."""
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    registered = set(response.custom_attributes) | set(response.system_attributes)
    missing = [f"{name}={kind}" for name, kind in names.SEARCH_ATTRIBUTES.items()
               if name not in registered]
    if missing:
        raise SearchAttributesMissing(
            f"namespace {namespace!r} lacks the search attributes {', '.join(missing)}: register "
            "them (`temporal operator search-attribute create --namespace NS --name NAME --type "
            "TYPE`, as docker-compose's temporal-setup job does), or set "
            "FLEETPIPE_SEARCH_ATTRIBUTES=false to run without them")
