"""Answering with what a run-control action left: 200 with the state after the action, or 202
while the run still applies it (control.Outcome says which, and the message)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.responses import JSONResponse

from api.envelope import respond
from control.service import Outcome

T = TypeVar("T")


def respond_outcome(outcome: Outcome[T], present: Callable[[T], Any]) -> JSONResponse:
    return respond(present(outcome.content), 200 if outcome.answered else 202, outcome.message)
