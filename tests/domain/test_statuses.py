"""domain.statuses: the four status sets, every allowed and forbidden move, parsing, paths.

The expected tables below are written from the reference documents' lists, the normal paths
and the cascade rules (docs/architecture.md), not read back from the module under test.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise, product

import pytest

from domain.statuses import (
    STATUSES,
    TERMINAL,
    CommandStatus,
    PipelineRunStatus,
    RunKind,
    StageRunStatus,
    TargetRunStatus,
    allowed_next,
    can_transition,
    is_terminal,
    parse_status,
    transition_path,
)

P, S, T, C = RunKind.PIPELINE, RunKind.STAGE, RunKind.TARGET, RunKind.COMMAND
KINDS = [P, S, T, C]

# ---- the reference documents' lists, in their order ----------------------------------------
REFERENCE_STATUSES = {
    P: ("pending", "queued", "processing", "running", "waiting", "complete", "success",
        "failure", "cancelled", "invalid", "timeout"),
    S: ("pending", "queued", "processing", "running", "complete", "success", "failure",
        "cancelled", "invalid", "timeout"),
    T: ("pending", "queued", "processing", "dispatched", "running", "complete", "success",
        "failure", "cancelled", "invalid", "timeout"),
    C: ("scheduled", "queued", "initiated", "acknowledged", "inprogress", "success", "failure",
        "timeout", "cancelled"),
}
REFERENCE_TERMINAL = {
    P: {"success", "failure", "cancelled", "invalid", "timeout"},
    S: {"success", "failure", "cancelled", "invalid", "timeout"},
    T: {"success", "failure", "cancelled", "invalid", "timeout"},
    C: {"success", "failure", "timeout", "cancelled"},
}
ENUMS = {P: PipelineRunStatus, S: StageRunStatus, T: TargetRunStatus, C: CommandStatus}

# ---- every allowed move ------------------------------------------------------------------------
# Pipeline run: the normal path with waiting <-> running (manual gate, pause/resume); no stages
# -> invalid at processing; cancel and timeout from every open status; complete only decides.
# Stage run: same without waiting. Target run: cancelled only while pending/queued/processing
# (a dispatched or running one gets a cancel request and ends failure via complete); invalid
# before dispatch; pending -> complete for "a failed operation fails the device's later
# operations". Command: forward only, skipping allowed (devices report what they report).
EXPECTED_ALLOWED: dict[RunKind, dict[str, set[str]]] = {
    P: {
        "pending": {"queued", "cancelled", "timeout"},
        "queued": {"processing", "cancelled", "timeout"},
        "processing": {"running", "invalid", "cancelled", "timeout"},
        "running": {"waiting", "complete", "cancelled", "timeout"},
        "waiting": {"running", "cancelled", "timeout"},
        "complete": {"success", "failure"},
    },
    S: {
        "pending": {"queued", "cancelled", "timeout"},
        "queued": {"processing", "cancelled", "timeout"},
        "processing": {"running", "invalid", "cancelled", "timeout"},
        "running": {"complete", "cancelled", "timeout"},
        "complete": {"success", "failure"},
    },
    T: {
        "pending": {"queued", "complete", "cancelled", "invalid", "timeout"},
        "queued": {"processing", "cancelled", "invalid", "timeout"},
        "processing": {"dispatched", "cancelled", "invalid", "timeout"},
        "dispatched": {"running", "complete", "timeout"},
        "running": {"complete", "timeout"},
        "complete": {"success", "failure"},
    },
    C: {
        "scheduled": {"queued", "initiated", "acknowledged", "inprogress",
                      "success", "failure", "timeout", "cancelled"},
        "queued": {"initiated", "acknowledged", "inprogress",
                   "success", "failure", "timeout", "cancelled"},
        "initiated": {"acknowledged", "inprogress", "success", "failure", "timeout",
                      "cancelled"},
        "acknowledged": {"inprogress", "success", "failure", "timeout", "cancelled"},
        "inprogress": {"success", "failure", "timeout", "cancelled"},
    },
}

# The normal paths (docs/architecture.md), each ending in one of its outcomes.
NORMAL_PATHS: dict[RunKind, list[list[str]]] = {
    P: [["pending", "queued", "processing", "running", "waiting", "complete", end]
        for end in ("success", "failure")],
    S: [["pending", "queued", "processing", "running", "complete", end]
        for end in ("success", "failure")],
    T: [["pending", "queued", "processing", "dispatched", "running", "complete", end]
        for end in ("success", "failure")],
    C: [["scheduled", "queued", "initiated", "acknowledged", "inprogress", end]
        for end in ("success", "failure", "timeout", "cancelled")],
}
# waiting -> running is resume / passing a gate, not a step back.
NOT_BACKWARDS = {(P, "waiting", "running")}


def _pair_id(kind: RunKind, current: str, new: str) -> str:
    return f"{kind.value}:{current}->{new}"


ALLOWED_CASES = [
    pytest.param(kind, current, new, id=_pair_id(kind, current, new))
    for kind in KINDS
    for current, nexts in EXPECTED_ALLOWED[kind].items()
    for new in sorted(nexts, key=REFERENCE_STATUSES[kind].index)
]
FORBIDDEN_CASES = [
    pytest.param(kind, current, new, id=_pair_id(kind, current, new))
    for kind in KINDS
    for current, new in product(REFERENCE_STATUSES[kind], repeat=2)
    if new not in EXPECTED_ALLOWED[kind].get(current, set())
]
TERMINAL_EXIT_CASES = [
    pytest.param(kind, current, new, id=_pair_id(kind, current, new))
    for kind in KINDS
    for current in sorted(REFERENCE_TERMINAL[kind], key=REFERENCE_STATUSES[kind].index)
    for new in REFERENCE_STATUSES[kind]
]
BACKWARD_CASES = sorted(
    {
        (kind, path[later], path[earlier])
        for kind in KINDS
        for path in NORMAL_PATHS[kind]
        for earlier, later in product(range(len(path)), repeat=2)
        if earlier < later and (kind, path[later], path[earlier]) not in NOT_BACKWARDS
    },
    key=lambda case: (KINDS.index(case[0]), REFERENCE_STATUSES[case[0]].index(case[1]),
                      REFERENCE_STATUSES[case[0]].index(case[2])),
)
BACKWARD_PARAMS = [pytest.param(*case, id=_pair_id(*case)) for case in BACKWARD_CASES]
ALL_PAIRS = [
    pytest.param(kind, current, new, id=_pair_id(kind, current, new))
    for kind in KINDS
    for current, new in product(REFERENCE_STATUSES[kind], repeat=2)
]


# ---- the sets --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_status_set_is_the_reference_list(kind):
    assert tuple(STATUSES[kind]) == REFERENCE_STATUSES[kind]
    assert [member.value for member in ENUMS[kind]] == list(REFERENCE_STATUSES[kind])


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_terminal_set_is_the_reference_set(kind):
    assert set(TERMINAL[kind]) == REFERENCE_TERMINAL[kind]
    for status in REFERENCE_STATUSES[kind]:
        assert is_terminal(kind, status) == (status in REFERENCE_TERMINAL[kind]), status


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_every_open_status_has_a_way_forward_and_every_status_is_reachable(kind):
    start = REFERENCE_STATUSES[kind][0]
    seen, queue = {start}, deque([start])
    while queue:
        for step in allowed_next(kind, queue.popleft()):
            if step not in seen:
                seen.add(step)
                queue.append(step)
    assert seen == set(REFERENCE_STATUSES[kind])
    for status in REFERENCE_STATUSES[kind]:
        if status not in REFERENCE_TERMINAL[kind]:
            assert allowed_next(kind, status), f"{status} is a dead end"


# ---- moves -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, current, new", ALLOWED_CASES)
def test_allowed_transition(kind, current, new):
    assert new in allowed_next(kind, current)
    assert can_transition(kind, current, new)
    assert transition_path(kind, current, new) == [new]


@pytest.mark.parametrize("kind, current, new", FORBIDDEN_CASES)
def test_forbidden_transition(kind, current, new):
    assert new not in allowed_next(kind, current)
    assert not can_transition(kind, current, new)


@pytest.mark.parametrize("kind, current, new", TERMINAL_EXIT_CASES)
def test_a_terminal_status_never_changes(kind, current, new):
    assert allowed_next(kind, current) == frozenset()
    assert not can_transition(kind, current, new)
    assert transition_path(kind, current, new) == []


@pytest.mark.parametrize("kind, current, new", BACKWARD_PARAMS)
def test_no_backward_move_along_the_normal_path(kind, current, new):
    assert not can_transition(kind, current, new)
    assert transition_path(kind, current, new) == []


def test_backward_cases_cover_the_paths():
    # Guards the generator above: a typo in NORMAL_PATHS would silently drop cases.
    assert (T, "dispatched", "pending") in BACKWARD_CASES
    assert (P, "complete", "waiting") in BACKWARD_CASES
    assert (C, "inprogress", "scheduled") in BACKWARD_CASES
    assert (P, "waiting", "running") not in BACKWARD_CASES
    assert len(BACKWARD_CASES) > 60


@pytest.mark.parametrize("kind, current, new", [
    pytest.param(T, "dispatched", "cancelled", id="target_run:dispatched->cancelled"),
    pytest.param(T, "running", "cancelled", id="target_run:running->cancelled"),
    pytest.param(T, "dispatched", "invalid", id="target_run:dispatched->invalid"),
])
def test_a_target_out_at_the_gateway_never_ends_cancelled_or_invalid(kind, current, new):
    """A dispatched or running target gets a cancel request sent to its command and
    ends failure once the command is cancelled; it never becomes `cancelled` by any walk."""
    assert not can_transition(kind, current, new)
    assert transition_path(kind, current, new) == []


@pytest.mark.parametrize("kind, current, new, walk", [
    pytest.param(S, "pending", "invalid", ["queued", "processing", "invalid"],
                 id="stage_run:pending->invalid-only-after-processing"),
    pytest.param(P, "pending", "invalid", ["queued", "processing", "invalid"],
                 id="pipeline_run:pending->invalid-only-after-processing"),
    pytest.param(P, "waiting", "complete", ["running", "complete"],
                 id="pipeline_run:waiting->complete-only-after-resuming"),
])
def test_moves_that_must_pass_through_a_step(kind, current, new, walk):
    """Invalid is decided while processing (no stages / no targets); a waiting run resumes
    before it completes. Not a direct move, but reachable through the step."""
    assert not can_transition(kind, current, new)
    assert transition_path(kind, current, new) == walk


# ---- parse_status ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind, given, expected", [
    pytest.param(P, "PENDING", "pending", id="pipeline-upper"),
    pytest.param(P, "Waiting", "waiting", id="pipeline-title"),
    pytest.param(S, "cOmPlEtE", "complete", id="stage-mixed"),
    pytest.param(T, "DISPATCHED", "dispatched", id="target-upper"),
    pytest.param(T, " cancelled ", "cancelled", id="target-padded"),
    pytest.param(C, "InProgress", "inprogress", id="command-camel"),
    pytest.param(C, "timeout", "timeout", id="command-lower"),
])
def test_parse_status_accepts_any_case(kind, given, expected):
    assert parse_status(kind, given) == expected


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_parse_status_round_trips_every_status(kind):
    for status in REFERENCE_STATUSES[kind]:
        assert parse_status(kind, status.upper()) == status


@pytest.mark.parametrize("kind, given", [
    pytest.param(P, "bogus", id="pipeline-bogus"),
    pytest.param(P, "dispatched", id="pipeline-target-only-status"),
    pytest.param(S, "waiting", id="stage-pipeline-only-status"),
    pytest.param(T, "scheduled", id="target-command-only-status"),
    pytest.param(C, "pending", id="command-run-only-status"),
    pytest.param(C, "in progress", id="command-with-space"),
    pytest.param(T, "", id="target-empty"),
])
def test_parse_status_rejects_unknown_values_naming_the_allowed_ones(kind, given):
    with pytest.raises(ValueError) as raised:
        parse_status(kind, given)
    message = str(raised.value)
    assert repr(given) in message
    for status in REFERENCE_STATUSES[kind]:
        assert status in message


# ---- transition_path -------------------------------------------------------------------------
@pytest.mark.parametrize("kind, current, target, expected", [
    pytest.param(T, "pending", "dispatched", ["queued", "processing", "dispatched"],
                 id="target:pending->dispatched"),
    pytest.param(T, "pending", "running", ["queued", "processing", "dispatched", "running"],
                 id="target:pending->running"),
    pytest.param(T, "pending", "failure", ["complete", "failure"],
                 id="target:pending->failure-via-complete"),
    pytest.param(T, "processing", "success", ["dispatched", "complete", "success"],
                 id="target:processing->success"),
    pytest.param(T, "running", "failure", ["complete", "failure"],
                 id="target:running->failure"),
    pytest.param(S, "pending", "failure", ["queued", "processing", "running", "complete",
                                           "failure"], id="stage:pending->failure"),
    pytest.param(S, "queued", "running", ["processing", "running"], id="stage:queued->running"),
    pytest.param(P, "pending", "failure", ["queued", "processing", "running", "complete",
                                           "failure"], id="pipeline:pending->failure"),
    pytest.param(P, "pending", "waiting", ["queued", "processing", "running", "waiting"],
                 id="pipeline:pending->waiting"),
    pytest.param(P, "waiting", "success", ["running", "complete", "success"],
                 id="pipeline:waiting->success-via-running"),
    pytest.param(P, "queued", "invalid", ["processing", "invalid"],
                 id="pipeline:queued->invalid"),
    pytest.param(C, "scheduled", "success", ["success"], id="command:scheduled->success"),
    pytest.param(C, "queued", "inprogress", ["inprogress"], id="command:queued->inprogress"),
])
def test_transition_path_is_the_shortest_forward_walk(kind, current, target, expected):
    assert transition_path(kind, current, target) == expected


@pytest.mark.parametrize("kind, current, target", [
    pytest.param(T, "running", "queued", id="target-backwards"),
    pytest.param(P, "complete", "running", id="pipeline-backwards"),
    pytest.param(T, "success", "failure", id="target-terminal"),
    pytest.param(P, "cancelled", "running", id="pipeline-terminal"),
    pytest.param(S, "running", "running", id="stage-same"),
    pytest.param(T, "pending", "bogus", id="target-unknown"),
])
def test_transition_path_is_empty_when_no_forward_walk(kind, current, target):
    assert transition_path(kind, current, target) == []


def _distances(kind: RunKind, start: str) -> dict[str, int]:
    """Reference: fewest moves from start to every reachable status (plain BFS)."""
    distance = {start: 0}
    queue = deque([start])
    while queue:
        status = queue.popleft()
        for step in allowed_next(kind, status):
            if step not in distance:
                distance[step] = distance[status] + 1
                queue.append(step)
    return distance


@pytest.mark.parametrize("kind, current, target", ALL_PAIRS)
def test_every_returned_path_is_a_walk_of_allowed_moves(kind, current, target):
    path = transition_path(kind, current, target)
    distance = _distances(kind, current)
    if current == target or target not in distance:
        assert path == []
        return
    assert path, "a reachable status must give a path"
    assert path[-1] == target
    assert current not in path and len(set(path)) == len(path)
    for before, after in pairwise([current, *path]):
        assert can_transition(kind, before, after), f"{before}->{after}"
    assert len(path) == distance[target], "not the shortest walk"
