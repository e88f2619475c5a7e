"""domain.rollout and RolloutConfig: rate limits over a sliding minute, exponential growth,
abort criteria, retries, and the validation of a stage's rollout settings (AWS IoT Jobs)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.rollout import (
    WINDOW_SECONDS,
    abort_reason,
    dispatch_allowance,
    failure_type_of,
    rate_per_minute,
    retries_allowed,
)
from domain.schemas import RolloutConfig

NOW = 1_700_000_000.0


def config(**kwargs: Any) -> RolloutConfig:
    return RolloutConfig.model_validate(kwargs)


def exponential(base: int, factor: float, *, notified: int | None = None,
                succeeded: int | None = None, maximum: int | None = None) -> RolloutConfig:
    criteria: dict[str, int] = {}
    if notified is not None:
        criteria["number_of_notified_things"] = notified
    if succeeded is not None:
        criteria["number_of_succeeded_things"] = succeeded
    body: dict[str, Any] = {"exponential_rate": {
        "base_rate_per_minute": base, "increment_factor": factor,
        "rate_increase_criteria": criteria}}
    if maximum is not None:
        body["maximum_per_minute"] = maximum
    return config(**body)


# ---- no limit ----------------------------------------------------------------------------------
def test_default_config_has_no_limit_never_aborts_never_retries():
    default = RolloutConfig()
    assert rate_per_minute(default, notified=10_000, succeeded=0) is None
    assert dispatch_allowance(default, [NOW] * 5000, NOW, 5000, 0) == (None, None)
    assert abort_reason(default, executed=100, failed={"FAILED": 100}) == ""
    assert retries_allowed(default) == {"FAILED": 0, "TIMED_OUT": 0}
    assert default.success_threshold_percentage == 100.0


# ---- constant rate -----------------------------------------------------------------------------
def test_constant_rate_allows_the_maximum_in_an_empty_minute():
    assert dispatch_allowance(config(maximum_per_minute=5), [], NOW, 0, 0) == (5, None)


def test_constant_rate_subtracts_dispatches_in_the_last_minute():
    recent = [NOW - 50, NOW - 30, NOW - 1]
    assert dispatch_allowance(config(maximum_per_minute=5), recent, NOW, 3, 0) == (2, None)


def test_constant_rate_ignores_dispatches_older_than_a_minute():
    recent = [NOW - 120, NOW - WINDOW_SECONDS, NOW - 61, NOW - 59.9]
    assert dispatch_allowance(config(maximum_per_minute=5), recent, NOW, 4, 0) == (4, None)


def test_full_window_says_when_the_oldest_dispatch_leaves_it():
    recent = [NOW - 10, NOW - 45, NOW - 20, NOW - 5, NOW - 1]
    allowance, wake_at = dispatch_allowance(config(maximum_per_minute=5), recent, NOW, 5, 0)
    assert allowance == 0
    assert wake_at == pytest.approx(NOW - 45 + WINDOW_SECONDS)
    # At that moment the oldest has left the window, so one more may go.
    assert dispatch_allowance(config(maximum_per_minute=5), recent, wake_at, 5, 0)[0] == 1


def test_a_sliding_minute_never_holds_more_than_the_maximum():
    """Drive the allowance like the stage workflow does for five minutes and check every
    60-second window: at most `maximum_per_minute`, and the rate is actually used."""
    rule = config(maximum_per_minute=7)
    now, sent = NOW, []
    end = NOW + 300
    while now < end:
        allowance, wake_at = dispatch_allowance(rule, sent, now, len(sent), 0)
        assert allowance is not None
        sent.extend([now] * allowance)
        now = wake_at if allowance == 0 else now + 0.5
    for start in sent:
        in_window = [t for t in sent if start <= t < start + WINDOW_SECONDS]
        assert len(in_window) <= 7
    assert len([t for t in sent if t < NOW + 300]) >= 7 * 5


# ---- exponential rate --------------------------------------------------------------------------
@pytest.mark.parametrize("notified, expected", [
    pytest.param(0, 10, id="start"),
    pytest.param(99, 10, id="one-short-of-a-step"),
    pytest.param(100, 20, id="one-step"),
    pytest.param(250, 40, id="two-steps"),
    pytest.param(299, 40, id="still-two-steps"),
    pytest.param(300, 80, id="three-steps"),
    pytest.param(400, 160, id="four-steps"),
])
def test_exponential_rate_grows_with_notified_things(notified, expected):
    rule = exponential(10, 2, notified=100)
    assert rate_per_minute(rule, notified=notified, succeeded=0) == expected
    # succeeded things do not count when the criterion is notified things
    assert rate_per_minute(rule, notified=notified, succeeded=10_000) == expected


@pytest.mark.parametrize("succeeded, expected", [
    pytest.param(0, 4, id="start"),
    pytest.param(49, 4, id="one-short"),
    pytest.param(50, 6, id="one-step"),
    pytest.param(100, 9, id="two-steps"),
])
def test_exponential_rate_grows_with_succeeded_things(succeeded, expected):
    rule = exponential(4, 1.5, succeeded=50)
    assert rate_per_minute(rule, notified=10_000, succeeded=succeeded) == pytest.approx(expected)


@pytest.mark.parametrize("notified, expected", [
    pytest.param(0, 10, id="below-cap"),
    pytest.param(10, 20, id="below-cap-after-a-step"),
    pytest.param(20, 30, id="capped"),
    pytest.param(1000, 30, id="capped-far-on"),
])
def test_exponential_rate_is_capped_by_maximum_per_minute(notified, expected):
    rule = exponential(10, 2, notified=10, maximum=30)
    assert rate_per_minute(rule, notified=notified, succeeded=0) == expected


def test_exponential_allowance_uses_whole_dispatches():
    rule = exponential(10, 1.5, notified=10)
    # 10 * 1.5**2 = 22.5 per minute: 22 may go in an empty window
    assert dispatch_allowance(rule, [], NOW, notified=20, succeeded=0) == (22, None)
    assert dispatch_allowance(rule, [NOW - 1] * 20, NOW, notified=20, succeeded=0) == (2, None)


# ---- abort criteria ----------------------------------------------------------------------------
def aborting(failure_type: str, threshold: float, minimum: int = 1) -> RolloutConfig:
    return config(abort_criteria=[{"failure_type": failure_type,
                                   "threshold_percentage": threshold,
                                   "min_number_of_executed_things": minimum}])


@pytest.mark.parametrize("failure_type, executed, failed, aborts", [
    pytest.param("FAILED", 10, {"FAILED": 5}, True, id="FAILED-at-threshold"),
    pytest.param("FAILED", 10, {"FAILED": 4}, False, id="FAILED-below-threshold"),
    pytest.param("FAILED", 10, {"TIMED_OUT": 10}, False, id="FAILED-ignores-timeouts"),
    pytest.param("TIMED_OUT", 10, {"TIMED_OUT": 5}, True, id="TIMED_OUT-at-threshold"),
    pytest.param("TIMED_OUT", 10, {"FAILED": 10, "TIMED_OUT": 4}, False,
                 id="TIMED_OUT-ignores-failures"),
    pytest.param("ALL", 10, {"FAILED": 3, "TIMED_OUT": 2}, True, id="ALL-sums-both"),
    pytest.param("ALL", 10, {"FAILED": 2, "TIMED_OUT": 2}, False, id="ALL-below"),
    pytest.param("FAILED", 0, {}, False, id="nothing-executed"),
])
def test_abort_per_failure_type(failure_type, executed, failed, aborts):
    reason = abort_reason(aborting(failure_type, 50), executed, failed)
    assert bool(reason) == aborts
    if aborts:
        assert failure_type in reason and f"of {executed}" in reason


@pytest.mark.parametrize("executed, failed, aborts", [
    pytest.param(9, 9, False, id="all-failed-below-minimum"),
    pytest.param(10, 5, True, id="at-minimum-and-threshold"),
    pytest.param(10, 4, False, id="at-minimum-below-threshold"),
    pytest.param(11, 6, True, id="past-minimum"),
])
def test_abort_waits_for_min_number_of_executed_things(executed, failed, aborts):
    reason = abort_reason(aborting("FAILED", 50, minimum=10), executed, {"FAILED": failed})
    assert bool(reason) == aborts


@pytest.mark.parametrize("threshold, executed, failed, aborts", [
    pytest.param(100, 10, 10, True, id="100%-all-failed"),
    pytest.param(100, 10, 9, False, id="100%-one-succeeded"),
    pytest.param(0.1, 1000, 1, True, id="0.1%-one-in-a-thousand"),
    pytest.param(0.1, 1001, 1, False, id="0.1%-one-in-1001"),
    pytest.param(33.3, 3, 1, True, id="33.3%-one-third"),
    pytest.param(33.34, 3, 1, False, id="33.34%-one-third"),
])
def test_abort_threshold_edges(threshold, executed, failed, aborts):
    reason = abort_reason(aborting("ALL", threshold), executed, {"FAILED": failed})
    assert bool(reason) == aborts


def test_abort_exactly_at_a_decimal_threshold():
    assert abort_reason(aborting("FAILED", 32.2), 500, {"FAILED": 161})


def test_any_abort_criterion_is_enough():
    rule = config(abort_criteria=[
        {"failure_type": "FAILED", "threshold_percentage": 90},
        {"failure_type": "TIMED_OUT", "threshold_percentage": 20,
         "min_number_of_executed_things": 5},
    ])
    assert abort_reason(rule, 10, {"FAILED": 1, "TIMED_OUT": 1}) == ""
    assert "TIMED_OUT" in abort_reason(rule, 10, {"FAILED": 1, "TIMED_OUT": 2})
    assert "FAILED" in abort_reason(rule, 10, {"FAILED": 9})


# ---- retries -----------------------------------------------------------------------------------
@pytest.mark.parametrize("criteria, expected", [
    pytest.param([], {"FAILED": 0, "TIMED_OUT": 0}, id="none"),
    pytest.param([("FAILED", 2)], {"FAILED": 2, "TIMED_OUT": 0}, id="failed-only"),
    pytest.param([("TIMED_OUT", 3)], {"FAILED": 0, "TIMED_OUT": 3}, id="timed-out-only"),
    pytest.param([("ALL", 2)], {"FAILED": 2, "TIMED_OUT": 2}, id="ALL-folds-into-both"),
    pytest.param([("ALL", 1), ("FAILED", 3)], {"FAILED": 3, "TIMED_OUT": 1},
                 id="specific-above-ALL"),
    pytest.param([("FAILED", 4), ("ALL", 2)], {"FAILED": 4, "TIMED_OUT": 2},
                 id="ALL-never-lowers-a-specific"),
    pytest.param([("TIMED_OUT", 1), ("TIMED_OUT", 5)], {"FAILED": 0, "TIMED_OUT": 5},
                 id="repeated-takes-the-most"),
])
def test_retries_allowed(criteria, expected):
    rule = config(retry_criteria=[{"failure_type": kind, "number_of_retries": n}
                                  for kind, n in criteria])
    assert retries_allowed(rule) == expected


# ---- validation --------------------------------------------------------------------------------
VALID_EXPONENTIAL = {"base_rate_per_minute": 10, "increment_factor": 2,
                     "rate_increase_criteria": {"number_of_notified_things": 5}}


@pytest.mark.parametrize("body, field", [
    pytest.param({"maximum_per_minute": 0}, "maximum_per_minute", id="maximum-zero"),
    pytest.param({"maximum_per_minute": -5}, "maximum_per_minute", id="maximum-negative"),
    pytest.param({"exponential_rate": {**VALID_EXPONENTIAL, "base_rate_per_minute": -1}},
                 "base_rate_per_minute", id="base-rate-negative"),
    pytest.param({"exponential_rate": {**VALID_EXPONENTIAL, "base_rate_per_minute": 0}},
                 "base_rate_per_minute", id="base-rate-zero"),
    pytest.param({"exponential_rate": {**VALID_EXPONENTIAL, "increment_factor": 1}},
                 "increment_factor", id="factor-one"),
    pytest.param({"exponential_rate": {**VALID_EXPONENTIAL, "increment_factor": 0.5}},
                 "increment_factor", id="factor-below-one"),
    pytest.param({"exponential_rate": {
        **VALID_EXPONENTIAL, "rate_increase_criteria": {"number_of_notified_things": 0}}},
        "number_of_notified_things", id="notified-zero"),
    pytest.param({"exponential_rate": {
        **VALID_EXPONENTIAL, "rate_increase_criteria": {"number_of_succeeded_things": -1}}},
        "number_of_succeeded_things", id="succeeded-negative"),
    pytest.param({"abort_criteria": [{"failure_type": "FAILED",
                                      "threshold_percentage": 100.5}]},
                 "threshold_percentage", id="abort-threshold-above-100"),
    pytest.param({"abort_criteria": [{"failure_type": "FAILED", "threshold_percentage": 0}]},
                 "threshold_percentage", id="abort-threshold-zero"),
    pytest.param({"abort_criteria": [{"failure_type": "FAILED", "threshold_percentage": -1}]},
                 "threshold_percentage", id="abort-threshold-negative"),
    pytest.param({"abort_criteria": [{"failure_type": "REJECTED",
                                      "threshold_percentage": 10}]},
                 "failure_type", id="abort-unknown-failure-type"),
    pytest.param({"abort_criteria": [{"failure_type": "FAILED", "threshold_percentage": 10,
                                      "min_number_of_executed_things": 0}]},
                 "min_number_of_executed_things", id="abort-min-executed-zero"),
    pytest.param({"retry_criteria": [{"failure_type": "BOGUS", "number_of_retries": 1}]},
                 "failure_type", id="retry-unknown-failure-type"),
    pytest.param({"retry_criteria": [{"failure_type": "FAILED", "number_of_retries": -1}]},
                 "number_of_retries", id="retries-negative"),
    pytest.param({"retry_criteria": [{"failure_type": "FAILED", "number_of_retries": 11}]},
                 "number_of_retries", id="retries-above-10"),
    pytest.param({"success_threshold_percentage": 100.1}, "success_threshold_percentage",
                 id="success-threshold-above-100"),
    pytest.param({"success_threshold_percentage": -0.1}, "success_threshold_percentage",
                 id="success-threshold-negative"),
])
def test_rollout_config_refuses_bad_values_naming_the_field(body, field):
    with pytest.raises(ValidationError) as raised:
        RolloutConfig.model_validate(body)
    locations = [error["loc"] for error in raised.value.errors()]
    assert any(field in loc for loc in locations), locations


def test_rollout_config_accepts_the_edges():
    accepted = RolloutConfig.model_validate({
        "maximum_per_minute": 1,
        "exponential_rate": {"base_rate_per_minute": 1, "increment_factor": 1.01,
                             "rate_increase_criteria": {"number_of_succeeded_things": 1}},
        "abort_criteria": [{"failure_type": "ALL", "threshold_percentage": 100}],
        "retry_criteria": [{"failure_type": "TIMED_OUT", "number_of_retries": 10}],
        "success_threshold_percentage": 0,
    })
    assert accepted.abort_criteria[0].min_number_of_executed_things == 1
    assert rate_per_minute(accepted, notified=0, succeeded=1) == 1  # capped at 1 per minute


@pytest.mark.parametrize("criteria", [
    pytest.param({}, id="neither"),
    pytest.param({"number_of_notified_things": 5, "number_of_succeeded_things": 5}, id="both"),
])
def test_rate_increase_criteria_needs_exactly_one_count(criteria):
    with pytest.raises(ValidationError):
        RolloutConfig.model_validate({"exponential_rate": {
            **VALID_EXPONENTIAL, "rate_increase_criteria": criteria}})


@pytest.mark.parametrize("command_status, expected", [
    ("timeout", "TIMED_OUT"), ("failure", "FAILED"), ("cancelled", "FAILED")])
def test_a_command_that_did_not_succeed_has_a_failure_type(command_status, expected):
    assert failure_type_of(command_status) == expected
