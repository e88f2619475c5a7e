"""What the Esper gateway needs to know: the tenant, the key, and the bounds on its calls."""

from __future__ import annotations

from dataclasses import dataclass

from settings import Settings


class EsperNotConfigured(ValueError):
    """A setting the Esper gateway cannot start without is missing or out of range."""


@dataclass(frozen=True)
class EsperConfig:
    url: str  # the SDK's host, e.g. https://<tenant>-api.esper.cloud/api
    api_key: str
    enterprise_id: str
    max_requests_per_second: float = 10.0  # every call (create, status, list), per process
    poll_interval_s: float = 5.0  # first status poll of a command; doubles while unchanged
    poll_max_interval_s: float = 60.0
    request_timeout_s: int = 10  # one HTTP call (the SDK takes whole seconds)
    max_in_flight: int = 8  # concurrent HTTP calls
    # Another worker may adopt a command whose lease ran out; a lease is renewed every poll
    # round, so it only runs out when its worker is gone.
    lease_s: float = 30.0
    retry_base_s: float = 1.0  # backoff after a 429, 5xx or network error; doubles
    retry_max_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EsperConfig:
        """The configuration from FLEETPIPE_ESPER_*; refuses, naming the setting, when one
        the gateway needs is missing."""
        missing = [name for name, value in (
            ("FLEETPIPE_ESPER_URL", settings.esper_url),
            ("FLEETPIPE_ESPER_API_KEY", settings.esper_api_key),
            ("FLEETPIPE_ESPER_ENTERPRISE_ID", settings.esper_enterprise_id),
        ) if not value.strip()]
        if missing:
            raise EsperNotConfigured(
                f"FLEETPIPE_GATEWAY=esper needs {', '.join(missing)} (the tenant's API URL, "
                "e.g. https://<tenant>-api.esper.cloud/api, an API key from the Esper "
                "console's API Management page, and the enterprise id shown there)")
        config = cls(url=settings.esper_url.strip().rstrip("/"),
                     api_key=settings.esper_api_key.strip(),
                     enterprise_id=settings.esper_enterprise_id.strip(),
                     max_requests_per_second=settings.esper_max_requests_per_second,
                     poll_interval_s=settings.esper_poll_interval_s,
                     poll_max_interval_s=settings.esper_poll_max_interval_s)
        config.check()
        return config

    def check(self) -> None:
        if self.max_requests_per_second <= 0:
            raise EsperNotConfigured(
                "FLEETPIPE_ESPER_MAX_REQUESTS_PER_SECOND must be above 0 "
                f"(got {self.max_requests_per_second})")
        if not 0 < self.poll_interval_s <= self.poll_max_interval_s:
            raise EsperNotConfigured(
                "FLEETPIPE_ESPER_POLL_INTERVAL_S must be above 0 and at most "
                f"FLEETPIPE_ESPER_POLL_MAX_INTERVAL_S (got {self.poll_interval_s} and "
                f"{self.poll_max_interval_s})")
