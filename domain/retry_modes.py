"""Retrying a finished pipeline run: which stages of the new run carry the old run's results
over and which run again, for each mode. Pure rules: the store gathers the facts, this decides.

A stage's key is its stage id in the run's snapshot: every run of one snapshot (a run and all
its retries) has the same keys, and a rename of the stage later does not change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class RetryMode(StrEnum):
    FROM_FAILED = "from_failed"  # default: only what did not succeed, and what was not reached
    FROM_STEP = "from_step"  # everything from the stage whose key is given
    FULL = "full"  # everything again


class Carry(StrEnum):
    """What a stage run of a retry does with the retried run's stage run."""

    NONE = ""  # runs as usual
    STAGE = "stage"  # recorded as it ended (success), no workflow: carried over whole
    TARGETS = "targets"  # its successful target runs carried over, the others sent again


ALL_MODES = tuple(mode.value for mode in RetryMode)


class RetryNotPossible(ValueError):
    """A retry the request or the retried run refuses. `conflict`: the run's state refuses it
    (not finished, nothing to retry); else the request is wrong (`field`, `allowed`)."""

    def __init__(self, field: str, message: str, *, allowed: Sequence[str] | None = None,
                 conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.allowed = list(allowed) if allowed is not None else None
        self.conflict = conflict


@dataclass(frozen=True)
class PastStage:
    """A stage run of the retried run, as far as a retry needs it."""

    key: str
    name: str
    status: str
    made_targets: bool  # it created its target runs (it was reached)
    all_succeeded: bool  # every current target run of it succeeded


@dataclass(frozen=True)
class StageStep:
    """One stage of the retry: what it carries, and whether the retry itself releases its gate
    (the stage a retry starts at runs at once: the retry is the operator's decision)."""

    carry: Carry
    released: bool = False


def parse_mode(value: str | None) -> RetryMode:
    text = (value or RetryMode.FROM_FAILED.value).strip().lower()
    try:
        return RetryMode(text)
    except ValueError:
        raise RetryNotPossible("mode", f"unknown mode {value!r}; allowed: "
                               f"{', '.join(ALL_MODES)}", allowed=ALL_MODES) from None


def plan_retry(mode: RetryMode, stages: Sequence[PastStage], step_key: str | None,
               run_number: int) -> list[StageStep]:
    """The retry's steps, one per stage of the snapshot, in order."""
    keys = [stage.key for stage in stages]
    if mode == RetryMode.FROM_STEP:
        if not step_key:
            raise RetryNotPossible("step_key", "mode from_step needs step_key, the key of the "
                                   "stage to start from", allowed=keys)
        if step_key not in keys:
            raise RetryNotPossible("step_key", f"run {run_number} has no stage with key "
                                   f"{step_key!r}", allowed=keys)
        start = keys.index(step_key)
        for stage in stages[:start]:
            if stage.status != "success":
                raise RetryNotPossible(
                    "step_key", f"stage {stage.name!r} before it ended {stage.status} in run "
                    f"{run_number}, so it cannot be carried over: retry from it, or use "
                    "mode from_failed", allowed=keys, conflict=True)
        carries = [Carry.STAGE] * start + [Carry.NONE] * (len(stages) - start)
    elif mode == RetryMode.FULL:
        carries = [Carry.NONE] * len(stages)
    else:
        carries = []
        for stage in stages:
            reached_all = all(carry == Carry.STAGE for carry in carries)
            if reached_all and stage.status == "success" and stage.all_succeeded:
                carries.append(Carry.STAGE)
            elif stage.made_targets:
                carries.append(Carry.TARGETS)
            else:
                carries.append(Carry.NONE)
        if stages and all(carry == Carry.STAGE for carry in carries):
            raise RetryNotPossible("mode", f"every stage of run {run_number} succeeded: nothing "
                                   "failed, so from_failed has nothing to send again; use "
                                   "mode full or from_step", allowed=ALL_MODES, conflict=True)
    first = next((i for i, carry in enumerate(carries) if carry != Carry.STAGE), None)
    return [StageStep(carry, released=index == first) for index, carry in enumerate(carries)]
