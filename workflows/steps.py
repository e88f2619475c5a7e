"""What every workflow here does to reach the store: record status changes, call activities.

Recording is a local activity (one marker event, no task-queue round trip) because it happens
several times per target; everything else is a regular activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import names as activity_names
    from activities.messages import RecordStatusesInput, RecordStatusesResult, StatusChangeMsg

T = TypeVar("T")

# Store and gateway calls are retried until they work: a database or gateway outage delays a
# run, it never fails it. Business refusals are non-retryable ApplicationErrors.
STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30))
# Short, so an activity lost with a killed worker is retried elsewhere within seconds.
STORE_TIMEOUT = timedelta(seconds=20)


def change(kind: str, run_id: str, status: str, reason: str = "",
           **fields: Any) -> StatusChangeMsg:
    return StatusChangeMsg(kind=kind, run_id=run_id, status=status,
                           at_epoch=workflow.now().timestamp(), reason=reason, fields=fields)


async def record(*changes: StatusChangeMsg) -> list[str]:
    """Record status changes in the store, in order, in one transaction; returns the statuses
    the rows hold afterwards."""
    result = await workflow.execute_local_activity(
        activity_names.RECORD_STATUSES,
        RecordStatusesInput(list(changes)),
        result_type=RecordStatusesResult,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
    )
    return result.statuses


async def call(name: str, arg: Any, result_type: type[T],
               timeout: timedelta = STORE_TIMEOUT) -> T:
    return await workflow.execute_activity(
        name, arg, result_type=result_type, start_to_close_timeout=timeout,
        retry_policy=STORE_RETRY,
    )


async def call_local(name: str, arg: Any, result_type: type[T],
                     timeout: timedelta = STORE_TIMEOUT) -> T:
    """A short store-and-gateway call run as a local activity: one marker event in history
    instead of an activity task the server must queue, dispatch and record three times."""
    return await workflow.execute_local_activity(
        name, arg, result_type=result_type, start_to_close_timeout=timeout,
        retry_policy=STORE_RETRY,
    )


def epoch_now() -> float:
    return workflow.now().timestamp()
