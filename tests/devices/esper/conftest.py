"""The fake Esper server as its own process on loopback, and gateway settings fit for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devices.esper.config import EsperConfig

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "test-key"
ENTERPRISE = "11111111-2222-3333-4444-555555555555"


@dataclass
class FakeEsper:
    """A running fake Esper server: its SDK host, its process, and its control endpoints."""

    url: str  # the SDK's host (…/api)
    process: subprocess.Popen[bytes]

    @property
    def _base(self) -> str:
        return self.url.removesuffix("/api")

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self._base}/_fake/requests").json()

    def commands(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self._base}/_fake/commands").json()

    def commands_for(self, esper_device_id: str) -> list[dict[str, Any]]:
        return [c for c in self.commands() if c["devices"] == [esper_device_id]]

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self._base}/_fake/faults", json=faults).raise_for_status()

    def release(self) -> None:
        httpx.post(f"{self._base}/_fake/release").raise_for_status()

    def configure(self, **config: Any) -> None:
        httpx.post(f"{self._base}/_fake/config", json=config).raise_for_status()

    def pause(self) -> None:
        """A network outage as clients see one: connections open, nothing answers."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def fake_esper(tmp_path: Path) -> Iterator[FakeEsper]:
    log = (tmp_path / "fake-esper.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devices.esper.fake_server", "--api-key", API_KEY,
         "--enterprise-id", ENTERPRISE, "--step-s", "0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, env=dict(os.environ))
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()  # printed once it listens
        if "listening on " not in line:
            pytest.fail(f"the fake Esper server did not start: {line!r}")
        yield FakeEsper(url=line.split("listening on ", 1)[1].strip(), process=process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)
        log.close()


def quick_config(fake: FakeEsper, **overrides: Any) -> EsperConfig:
    """Quick polls, short timeouts and leases: seconds, not minutes, to see every path."""
    values: dict[str, Any] = dict(
        url=fake.url, api_key=API_KEY, enterprise_id=ENTERPRISE, max_requests_per_second=100,
        poll_interval_s=0.05, poll_max_interval_s=0.4, request_timeout_s=1, lease_s=3.0,
        retry_base_s=0.1, retry_max_s=0.5)
    values.update(overrides)
    return EsperConfig(**values)
