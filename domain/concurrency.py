"""Concurrency keys: runs of one enterprise that share a key run one at a time, in the order
they were created.

The rules (what a key may be, who is next) and the values the lane workflow, the pipeline-run
workflow and the activity that joins a lane exchange, written once for all of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

MAX_KEY_LENGTH = 128

# Temporal names of the lane: kept stable, running lanes depend on them.
LANE_WORKFLOW = "ConcurrencyLaneWorkflow"
SIGNAL_LANE_JOIN = "lane_join"  # LaneEntry, to the lane (signal-with-start)
SIGNAL_LANE_LEAVE = "lane_leave"  # LaneLeave, to the lane, from a run that ended
SIGNAL_LANE_GO = "lane_go"  # LaneGo, from the lane to the run whose turn it is
QUERY_LANE_STATE = "lane_state"  # -> LaneState


def check_concurrency_key(value: str) -> str:
    """The key as given, or ValueError saying what a key may be."""
    if not value or len(value) > MAX_KEY_LENGTH:
        raise ValueError(f"concurrency_key must be 1 to {MAX_KEY_LENGTH} characters")
    if value != value.strip():
        raise ValueError("concurrency_key must not start or end with whitespace")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("concurrency_key must not contain control characters")
    return value


def lane_workflow_id(enterprise_id: str, key: str) -> str:
    """One lane per (enterprise, key). The key is hashed: it may hold any printable text, and
    the id stays short and the same in every process."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"concurrency-lane-{enterprise_id}-{digest}"


@dataclass
class LaneEntry:
    """A pipeline run waiting for its turn (or holding it)."""

    workflow_id: str
    pipeline_run_id: str
    created_epoch: float  # the run row's created_at: the lane's order
    # Workflows of the runs with the key created just before it that were still active when
    # it joined (the nearest AHEAD_KEPT): their joins may arrive after its own, and the turn
    # goes in creation order, not in the order the joins happen to arrive.
    ahead: list[str] = field(default_factory=list)


@dataclass
class LaneLeave:
    workflow_id: str


@dataclass
class LaneGo:
    """Sent to the run whose turn it is."""

    lane_workflow_id: str


@dataclass
class LaneInput:
    enterprise_id: str
    concurrency_key: str
    # Carried across continue-as-new.
    holder: LaneEntry | None = None
    waiting: list[LaneEntry] = field(default_factory=list)
    # While runs wait, how often the lane checks that the holder's workflow is still open
    # (a terminated workflow never says it left).
    check_seconds: int = 300
    history_budget: int = 2_000  # events before continue-as-new
    # Runs that left lately: a join of theirs that arrives late (a retried activity) is stale.
    recently_left: list[str] = field(default_factory=list)


RECENTLY_LEFT_KEPT = 200
AHEAD_KEPT = 20


@dataclass
class LaneState:
    holder: str | None
    waiting: list[str] = field(default_factory=list)  # pipeline run ids, in order


def admit(waiting: list[LaneEntry], entry: LaneEntry, holder: LaneEntry | None,
          recently_left: list[str] | None = None) -> bool:
    """Put `entry` in line by creation time (a join that arrives late still goes before runs
    created after it); False if it is there already (a retried join) or has left already."""
    if (holder is not None and holder.workflow_id == entry.workflow_id) or any(
            w.workflow_id == entry.workflow_id for w in waiting):
        return False
    if recently_left and entry.workflow_id in recently_left:
        return False
    at = len(waiting)
    while at > 0 and waiting[at - 1].created_epoch > entry.created_epoch:
        at -= 1
    waiting.insert(at, entry)
    return True


def not_joined(entry: LaneEntry, holder: LaneEntry | None, waiting: list[LaneEntry],
               left: list[str], given_up: set[str]) -> list[str]:
    """The runs created before `entry` that have neither joined the lane nor left it (nor
    been found closed): `entry` must not take the turn before them."""
    here = {w.workflow_id for w in waiting} | ({holder.workflow_id} if holder else set())
    return [w for w in entry.ahead if w not in here and w not in left and w not in given_up]


def queued_reason(key: str, ahead: list[str]) -> str:
    """What a queued run's status_reason says: the run right ahead of it, and how many."""
    if not ahead:
        return f"queued: waiting for its turn on concurrency key {key!r}"
    return (f"queued behind run {ahead[-1]} (concurrency key {key!r}; "
            f"{len(ahead)} active run{'s' if len(ahead) != 1 else ''} ahead)")
