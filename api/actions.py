"""Status PUTs are actions: which values each resource takes, and carrying one to the workflow
that owns the run as a Temporal update (DESIGN §4). A refused action is a 400 naming what is
allowed; the API never writes a run's status itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import TemporalConnection
from api.envelope import respond
from api.errors import ApiError
from domain.statuses import STATUSES, RunKind, parse_status

R = TypeVar("R")

# resource -> the status values a PUT may carry, each an action (DESIGN §4).
PIPELINE_RUN_ACTIONS = ("cancelled", "waiting", "running")
STAGE_RUN_ACTIONS = ("queued", "cancelled")
TARGET_RUN_ACTIONS = ("cancelled",)
COMMAND_ACTIONS = ("cancelled",)

# Updates answer once the workflow has acted (it records the status first). A request waits
# for that at most ANSWER_WITHIN seconds; a busier run answers 202 and applies it shortly.
ANSWER_WITHIN = 1.7
UPDATE_TIMEOUT = timedelta(seconds=25)
ACCEPTED_MESSAGE = ("Accepted: the run has the request and is applying it; read it again "
                    "to see the result")
INVALID_ACTION = "InvalidAction"


def parse_action(kind: RunKind, value: str, allowed: tuple[str, ...], field: str = "status",
                 noun: str | None = None) -> str:
    """The normalised action, or a 400 naming the allowed values (any case is accepted)."""
    noun = noun or kind.value.replace("_", " ")
    try:
        status = parse_status(kind, value)
    except ValueError:
        raise ApiError(
            400, f"{field}: unknown {noun} status {value!r}; allowed: {', '.join(allowed)}",
            field=field, allowed=list(allowed)) from None
    if status not in allowed:
        raise ApiError(
            400, f"{field}: {status!r} cannot be set on a {noun}; allowed: {', '.join(allowed)}",
            field=field, allowed=list(allowed))
    return status


def parse_filter(kind: RunKind, value: str | None, field: str = "status") -> str | None:
    """A status filter in any case, or a 400 naming every status of that kind."""
    if value is None or value == "":
        return None
    try:
        return parse_status(kind, value)
    except ValueError:
        allowed = list(STATUSES[kind])
        raise ApiError(400, f"{field}: unknown status {value!r}; allowed: {', '.join(allowed)}",
                       field=field, allowed=allowed) from None


def refused(current: str, noun: str, action: str) -> ApiError:
    return ApiError(400, f"status: cannot {action}: the {noun} is {current}", field="status")


def answer_deadline() -> float:
    """When an action's response must be on its way (every request answers within 2 s)."""
    return time.monotonic() + ANSWER_WITHIN


@dataclass
class Sent(Generic[R]):
    """An update's outcome: answered (with its result), or still being applied by the run."""

    answered: bool
    result: R | None = None


async def send_update(
    temporal: TemporalConnection,
    workflow_id: str,
    update: str,
    arg: Any,
    *,
    deadline: float,
    result_type: type[R] | None = None,
    closed: Callable[[], ApiError],
    field: str = "status",
) -> Sent[R]:
    """Send an update and wait for its result until `deadline`. A validator's refusal is a
    400 with the workflow's own words; a workflow that is closed or gone answers `closed()`.
    A run too busy to answer by the deadline still has the update (Temporal holds it): the
    caller answers 202 and the run applies it shortly."""
    client = await temporal.get()
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await asyncio.wait_for(
            handle.execute_update(update, arg, result_type=result_type,
                                  rpc_timeout=UPDATE_TIMEOUT),
            timeout=max(0.05, deadline - time.monotonic()))
        return Sent(answered=True, result=result)
    except TimeoutError:
        return Sent(answered=False)
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type == INVALID_ACTION:
            raise ApiError(400, f"{field}: {cause.message}", field=field) from None
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return Sent(answered=False)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise closed() from None
        raise


async def settle(read: Callable[[], Any], done: Callable[[Any], bool], deadline: float,
                 interval: float = 0.05) -> Any:
    """Re-read a row (`read` blocks: it runs in a thread) until `done(row)` or the deadline,
    for actions a workflow applies just after its update answered (a signal to a child, a
    promotion the stage run records a moment later); returns the last row read."""
    row = await asyncio.to_thread(read)
    while not done(row) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        row = await asyncio.to_thread(read)
    return row


def action_response(content: Any, sent: Sent) -> JSONResponse:
    """200 with the state after the action, or 202 while the run is still applying it."""
    if sent.answered:
        return respond(content)
    return respond(content, 202, ACCEPTED_MESSAGE)
