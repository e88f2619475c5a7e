"""Readiness: named checks, each a probe that raises when its dependency is not usable,
run together under one timeout. The answer names every check and what failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from observability.logs import mask_secrets

OK = "ok"
DEFAULT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    name: str  # what is checked: "store", "temporal", "worker"
    probe: Callable[[], Awaitable[None]]  # returns when ready, raises (anything) when not


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # check name -> "ok" or why it is not ready

    @property
    def ready(self) -> bool:
        return all(result == OK for result in self.checks.values())

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> dict[str, Any]:
        not_ready = [name for name, result in self.checks.items() if result != OK]
        return {"status": "ready" if self.ready else "not ready", "not_ready": not_ready,
                "checks": self.checks}


def _why(error: BaseException) -> str:
    """The error's class and first line, without credentials: readiness is unauthenticated."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return mask_secrets(f"{type(error).__name__}: {text}" if text else type(error).__name__)[:300]


async def _run(check: Check, timeout_s: float) -> str:
    try:
        await asyncio.wait_for(check.probe(), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as error:
        return _why(error)
    return OK


async def check_readiness(checks: Sequence[Check],
                          timeout_s: float = DEFAULT_TIMEOUT_S) -> Readiness:
    results = await asyncio.gather(*(_run(check, timeout_s) for check in checks))
    return Readiness(dict(zip((check.name for check in checks), results, strict=True)))
