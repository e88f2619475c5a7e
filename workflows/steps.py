"""What every workflow here does to reach the store: record status changes, call activities.

Activities are called by typed reference (`RunActivities.method`): the name and the result type
come from the activity's own definition. Recording is a local activity (one marker event, no
task-queue round trip) because it happens several times per target; the rest are regular
activities, or local ones where a target run's hot path wants fewer events (`call_local`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.messages import RecordStatusesInput
    from activities.run_activities import RunActivities
    from domain.records import StatusChange

A = TypeVar("A")
R = TypeVar("R")
Activity = Callable[[Any, A], Awaitable[R]]  # an activity method of RunActivities

# Store and gateway calls are retried until they work: a database or gateway outage delays a
# run, it never fails it. Business refusals are non-retryable ApplicationErrors.
STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30))
# Short, so an activity lost with a killed worker is retried elsewhere within seconds.
STORE_TIMEOUT = timedelta(seconds=20)


def change(kind: str, run_id: str, status: str, reason: str = "",
           **fields: Any) -> StatusChange:
    return StatusChange(kind=kind, run_id=run_id, status=status, at=workflow.now(),
                        reason=reason, fields=fields)


async def record(*changes: StatusChange) -> list[str]:
    """Record status changes in the store, in order, in one transaction; returns the statuses
    the rows hold afterwards."""
    result = await workflow.execute_local_activity_method(
        RunActivities.record_statuses,
        RecordStatusesInput(list(changes)),
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
    )
    return result.statuses


async def call(activity: Activity[A, R], arg: A, timeout: timedelta = STORE_TIMEOUT,
               heartbeat_timeout: timedelta | None = None) -> R:
    result: R = await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=timeout,  # type: ignore[call-overload]
        heartbeat_timeout=heartbeat_timeout, retry_policy=STORE_RETRY,
    )
    return result


async def call_local(activity: Activity[A, R], arg: A, timeout: timedelta = STORE_TIMEOUT) -> R:
    """A short store-and-gateway call run as a local activity: one marker event in history
    instead of an activity task the server must queue, dispatch and record three times."""
    result: R = await workflow.execute_local_activity_method(
        activity, arg, start_to_close_timeout=timeout,  # type: ignore[call-overload]
        retry_policy=STORE_RETRY,
    )
    return result


def epoch_now() -> float:
    return workflow.now().timestamp()
