"""Carrying an action to its workflow as a Temporal update, and waiting for its result within the
time a caller is answered in.

Updates answer once the workflow has acted (it records the status first). A caller waits for
that at most ANSWER_WITHIN seconds; a busier run has the update all the same (Temporal holds
it) and applies it shortly, so the caller is told it is still applying rather than kept waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from control.errors import ActionRefused

A = TypeVar("A")
R = TypeVar("R")
T = TypeVar("T")

# Every request answers within 2 s; this leaves room for the reads around the update.
ANSWER_WITHIN = 1.7
UPDATE_TIMEOUT = timedelta(seconds=25)
# The ApplicationError type the workflows' validators refuse an action with.
INVALID_ACTION = "InvalidAction"
# The failure type Temporal gives an accepted update whose workflow completed before it did.
ACCEPTED_THEN_CLOSED = "AcceptedUpdateCompletedWorkflow"


def answer_deadline() -> float:
    """When an action's answer must be on its way."""
    return time.monotonic() + ANSWER_WITHIN


@dataclass
class Sent(Generic[R]):
    """An update's outcome: answered (with its result), or still being applied by the run."""

    answered: bool
    result: R | None = None


async def send_update(
    client: Client,
    workflow_id: str,
    update: UpdateMethodMultiParam[[Any, A], Awaitable[R]],
    arg: A,
    *,
    deadline: float,
    closed: Callable[[], Exception],
    field: str = "status",
) -> Sent[R]:
    """Send an update and wait for its result until `deadline`. A validator's refusal is an
    ActionRefused in the workflow's own words; a workflow that is closed or gone raises
    `closed()`. A run too busy to answer by the deadline still has the update."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await asyncio.wait_for(
            handle.execute_update(update, arg, rpc_timeout=UPDATE_TIMEOUT),
            timeout=max(0.05, deadline - time.monotonic()))
        # An async handler declared with `name=` is typed as returning its coroutine; the
        # client decodes the handler's actual result type from its annotations.
        return Sent(answered=True, result=cast(R, result))
    except TimeoutError:
        return Sent(answered=False)
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type == INVALID_ACTION:
            raise ActionRefused(field, cause.message) from None
        if isinstance(cause, ApplicationError) and cause.type == ACCEPTED_THEN_CLOSED:
            # The run took the action and ended before answering it (a cancel can close the
            # run that fast): the caller reads the outcome from its row, as for a busy run.
            return Sent(answered=False)
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return Sent(answered=False)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise closed() from None
        raise


async def settle(read: Callable[[], T], done: Callable[[T], bool], deadline: float,
                 interval: float = 0.05) -> T:
    """Re-read a row (`read` blocks: it runs in a thread) until `done(row)` or the deadline,
    for actions a workflow applies just after its update answered (a signal to a child, a
    promotion the stage run records a moment later); returns the last row read."""
    row = await asyncio.to_thread(read)
    while not done(row) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        row = await asyncio.to_thread(read)
    return row
