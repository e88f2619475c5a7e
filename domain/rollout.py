"""Rollout controls of a stage run, as pure functions (AWS IoT Jobs' meaning).

- rate: a constant `maximum_per_minute`, or an exponential rate that starts at
  `base_rate_per_minute` and multiplies by `increment_factor` each time another
  `number_of_notified_things` were dispatched (or `number_of_succeeded_things` succeeded);
- abort: when, among at least `min_number_of_executed_things` finished targets, the share that
  failed with `failure_type` reaches `threshold_percentage`;
- retries: how many more commands a target may get after a failure of a given type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.rollups import reaches_percentage
from domain.schemas import FailureType, RolloutConfig
from domain.statuses import CommandStatus

WINDOW_SECONDS = 60.0


def rate_per_minute(config: RolloutConfig, notified: int, succeeded: int) -> float | None:
    """Dispatches allowed per minute now; None means no limit."""
    if config.exponential_rate is not None:
        exp = config.exponential_rate
        criteria = exp.rate_increase_criteria
        steps = 0
        if criteria.number_of_notified_things:
            steps = notified // criteria.number_of_notified_things
        elif criteria.number_of_succeeded_things:
            steps = succeeded // criteria.number_of_succeeded_things
        rate = exp.base_rate_per_minute * exp.increment_factor ** steps
        if config.maximum_per_minute is not None:
            rate = min(rate, config.maximum_per_minute)
        return rate
    if config.maximum_per_minute is not None:
        return float(config.maximum_per_minute)
    return None


def dispatch_allowance(
    config: RolloutConfig, recent_dispatches: Sequence[float], now: float, notified: int,
    succeeded: int,
) -> tuple[int | None, float | None]:
    """(how many may be dispatched now, when to look again if that is 0) under the rate.

    `recent_dispatches` are the epochs of dispatches in the last minute. (None, None): no limit.
    """
    rate = rate_per_minute(config, notified, succeeded)
    if rate is None:
        return None, None
    in_window = [t for t in recent_dispatches if t > now - WINDOW_SECONDS]
    allowed = int(rate) - len(in_window)
    if allowed > 0:
        return allowed, None
    return 0, min(in_window) + WINDOW_SECONDS if in_window else now + 1.0


def failures_of(failure_type: FailureType, failed: Mapping[str, int]) -> int:
    if failure_type == FailureType.ALL:
        return sum(failed.values())
    return failed.get(failure_type.value, 0)


def abort_reason(config: RolloutConfig, executed: int, failed: Mapping[str, int]) -> str:
    """Why the stage must abort now, or "" to go on. `failed` counts finished targets by
    failure type (FAILED, TIMED_OUT); `executed` counts every finished target."""
    for criterion in config.abort_criteria:
        if executed < criterion.min_number_of_executed_things:
            continue
        count = failures_of(criterion.failure_type, failed)
        if reaches_percentage(count, executed, criterion.threshold_percentage):
            return (
                f"abort criteria met: {count} of {executed} executed targets failed with "
                f"{criterion.failure_type.value} (threshold {criterion.threshold_percentage}%)"
            )
    return ""


def retries_allowed(config: RolloutConfig) -> dict[str, int]:
    """Retries per failure type (FAILED, TIMED_OUT) after folding ALL into both."""
    allowed = {FailureType.FAILED.value: 0, FailureType.TIMED_OUT.value: 0}
    for criterion in config.retry_criteria:
        kinds = (
            list(allowed) if criterion.failure_type == FailureType.ALL
            else [criterion.failure_type.value]
        )
        for kind in kinds:
            allowed[kind] = max(allowed[kind], criterion.number_of_retries)
    return allowed


def failure_type_of(command_status: str) -> str:
    """The failure type (abort criteria, retries) of a command that ended without success."""
    if command_status == CommandStatus.TIMEOUT:
        return FailureType.TIMED_OUT.value
    return FailureType.FAILED.value
