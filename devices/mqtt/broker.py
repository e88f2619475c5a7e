"""Where the broker is: FLEETPIPE_MQTT_URL parsed once, refused with a clear reason."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerAddressError(ValueError):
    """FLEETPIPE_MQTT_URL cannot be used; the message says why and what it should look like."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        shape = "mqtt://[user:password@]host[:port] or mqtts://... for TLS"
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise BrokerAddressError(
                f"FLEETPIPE_MQTT_URL {url!r}: {exc}; expected {shape}") from None
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise BrokerAddressError(f"FLEETPIPE_MQTT_URL {url!r} is not {shape}")
        return cls(host=parts.hostname, port=port or _DEFAULT_PORTS[parts.scheme],
                   tls=parts.scheme == "mqtts",
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    def tls_context(self) -> ssl.SSLContext | None:
        """The system's trusted CAs for mqtts://, none for plain TCP."""
        return ssl.create_default_context() if self.tls else None

    def __str__(self) -> str:  # never the password: it goes into logs
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"
