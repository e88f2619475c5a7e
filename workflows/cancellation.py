"""A cancel requested in Temporal (Web UI "Request Cancellation", `temporal workflow cancel`)
taken as the workflow's own stop, and the exceptions that fail a workflow instead of retrying
its task for ever.

Temporal cancels a workflow by cancelling the coroutine of its run, wherever it waits. Left
alone, that drops the run mid-step: its rows stay open and its children (started with ABANDON)
run on. So each workflow runs its body as a task shielded from that cancel: the cancel becomes
the same stop the API's cancel sets, the body ends the run through its normal path (children
stopped, rows recorded), and only then does the workflow end cancelled in Temporal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from temporalio import workflow

R = TypeVar("R")

CANCEL_REASON = "cancellation requested in Temporal"
# Histories recorded before this change ended at the cancel; they replay that way.
PATCH_CANCEL_CASCADES = "temporal-cancel-runs-the-cancel-path"

# Errors of a run's data that no retry of the workflow task can mend (a timeout too large for a
# date, a value the code cannot take): they fail the workflow, and the reconciler ends its run
# `failure` with the error. Errors of the code itself (TypeError, AttributeError, NameError)
# and non-determinism keep failing the task, visibly, so a fixed worker can carry the run on.
DATA_ERRORS: list[type[BaseException]] = [ArithmeticError, LookupError, ValueError,
                                          AssertionError]


async def run_to_its_end(body: Coroutine[Any, Any, R],
                         on_cancel: Callable[[str], None]) -> R:
    """Run the workflow's body; a cancel from Temporal calls `on_cancel(reason)` (which sets
    the workflow's stop) and the body carries on to its end, after which the workflow is
    cancelled."""
    task = asyncio.create_task(body)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise  # the body itself was cancelled
            if not workflow.patched(PATCH_CANCEL_CASCADES):
                task.cancel()
                return await task
            cancelled = True
            on_cancel(CANCEL_REASON)
    if cancelled:
        raise asyncio.CancelledError(CANCEL_REASON)
    return result
