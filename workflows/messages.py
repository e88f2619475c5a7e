"""One typed input and result per workflow, signal and update (dataclasses: they grow safely).

Ids travel as strings. Fields added later must have defaults so running histories still decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from domain.commands import CommandEvent
from domain.inputs import SensitiveValues


# ---- names for people: summaries and search attributes in the Temporal Web UI -------------
@dataclass
class RunLabels:
    """What a person calls a run: carried down from the pipeline run to its stage and target
    runs, so each can be summarised and searched by name (workflows/labels.py)."""

    enterprise_name: str = ""
    enterprise_id: str = ""
    pipeline_name: str = ""
    run_number: int = 0
    stage_name: str = ""
    stage_order: int = 0
    device_name: str = ""
    operation: str = ""  # "1 INSTALL": the operation's position and type


# ---- PipelineRunWorkflow -------------------------------------------------------------------
@dataclass
class PipelineRunInput:
    pipeline_run_id: str
    enterprise_id: str
    search_attributes: bool = True
    stage_window: int = 200  # in-flight target runs per stage run (<= 500: docs/scale.md)
    stage_history_budget: int = 4_000
    targets_task_queue: str = ""  # empty: names.targets_task_queue of the run's own queue
    concurrency_key: str | None = None  # runs one at a time with the enterprise's others
    # For the lane this run starts, if it starts one (domain.concurrency.LaneInput).
    lane_check_seconds: int = 300
    lane_history_budget: int = 2_000
    # The run's sensitive inputs, passed down to every dispatch; the codec encrypts every
    # payload that carries them (workflows/converter.py). None: the run has none.
    sensitive: SensitiveValues | None = None
    labels: RunLabels | None = None  # None: started before runs carried their names


@dataclass
class PipelineRunResult:
    status: str
    reason: str = ""


@dataclass
class RunStatusRequest:
    """PUT pipeline run status: cancelled, waiting (pause) or running (resume / pass a gate)."""

    status: str
    reason: str = ""
    by: str = ""  # who asks (the API key's id): kept with a pause, and on the stage run a
    #               gate pass releases
    by_name: str = ""  # that key's name


@dataclass
class StageStatusRequest:
    """PUT stage run {"status": ...}: queued (promote) or cancelled."""

    stage_run_id: str
    status: str
    reason: str = ""
    by: str = ""  # who asks (the API key's id): recorded on the stage run a promote releases


@dataclass
class StageRunView:
    stage_run_id: str
    order: int
    name: str
    trigger: str
    status: str


@dataclass
class RunState:
    pipeline_run_id: str
    status: str
    paused: bool = False
    waiting_for_stage_run_id: str | None = None
    current_stage_run_id: str | None = None
    stages: list[StageRunView] = field(default_factory=list)


# ---- StageRunWorkflow ----------------------------------------------------------------------
class Lane(NamedTuple):
    """One device x operation of a stage run on its way through the window (a list on the
    wire: [device_id, op_index, generation]; histories from before generation decode too)."""

    device_id: str
    op_index: int
    generation: int = 0  # 0: its first target run; n: its n-th retry row (domain.retries)


class PageEntry(NamedTuple):
    """A device read from the store's page of a stage run's devices, not yet started."""

    device_seq: int
    device_id: str
    # The operation it starts at: 0, or in a retry the first one not carried over (-1: none).
    op_index: int = 0


class Resumption(NamedTuple):
    """The next operation of a device whose operation, sent again, succeeded: it gets a retry
    row if it had ended for that operation's failure."""

    device_id: str
    op_index: int
    target_run_id: str


@dataclass
class StageCarry:
    """What a stage run carries across continue-as-new."""

    started: bool = False
    deadline_epoch: float = 0.0
    operation_ids: list[str] = field(default_factory=list)
    device_count: int = 0
    cursor: int = -1  # last device_seq read from the store
    page: list[PageEntry] = field(default_factory=list)  # read, not yet started
    ready: list[Lane] = field(default_factory=list)  # to start next
    in_flight: dict[str, Lane] = field(default_factory=dict)  # by target run id
    counts: dict[str, int] = field(default_factory=dict)  # finished target runs per status
    failed_kinds: dict[str, int] = field(default_factory=dict)  # FAILED / TIMED_OUT counts
    dispatched: int = 0
    dispatch_times: list[float] = field(default_factory=list)  # for the rate limit window
    paused: bool = False
    stop_status: str | None = None
    stop_reason: str = ""
    abort_reason: str = ""
    cancelled_targets: list[str] = field(default_factory=list)
    # Target runs sent again (domain.retries): "device_id:op_index" -> the current row's
    # generation, for those above 0.
    generations: dict[str, int] = field(default_factory=dict)
    resume: list[Resumption] = field(default_factory=list)
    # A retry's stage run carrying target runs over: devices start at their first operation
    # not carried over, and a device with none carried over is skipped.
    carried: bool = False
    operation_types: list[str] = field(default_factory=list)  # beside operation_ids
    # device_id -> name, for the devices with target runs still to start or in flight (only
    # those: a stage of 100,000 devices must still fit one continue-as-new payload).
    device_names: dict[str, str] = field(default_factory=dict)


@dataclass
class StageRunInput:
    stage_run_id: str
    pipeline_run_id: str
    enterprise_id: str
    timeout_seconds: int
    rollout: dict = field(default_factory=dict)  # domain.schemas.RolloutConfig as a dict
    window: int = 200
    paused: bool = False
    carry: StageCarry | None = None
    history_budget: int = 4_000  # events before continue-as-new (10,240 is Temporal's warning)
    targets_task_queue: str = ""  # empty: names.targets_task_queue of the stage's own queue
    sensitive: SensitiveValues | None = None  # the run's, for its target runs
    labels: RunLabels | None = None  # None: started before runs carried their names
    # Set fleetpipe's search attributes on itself and its target runs (the setting
    # FLEETPIPE_SEARCH_ATTRIBUTES, from the pipeline run). False by default: a stage started
    # before this field existed was started without them.
    search_attributes: bool = False


@dataclass
class StageRunResult:
    status: str
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class StageControl:
    """From the pipeline run: pause, resume, or stop with cancelled / timeout."""

    action: str  # "pause" | "resume" | "stop"
    status: str = ""  # with stop: cancelled | timeout
    reason: str = ""


@dataclass
class AddTargetRequest:
    device_id: str
    device_name: str = ""
    device_alias: str = ""


@dataclass
class AddTargetResult:
    target_run_ids: list[str] = field(default_factory=list)


@dataclass
class TargetCancelRequest:
    target_run_id: str
    reason: str = ""


@dataclass
class TargetRetryRequest:
    """POST .../command on a finished target run: send it again, as a retry row."""

    target_run_id: str
    device_id: str  # the target run's device and operation index, checked against its id
    operation_index: int


@dataclass
class TargetRetryResult:
    target_run_id: str  # the new target run
    retry_of: str
    waiting: str = ""  # why it does not start at once (paused, rate limit, full window), or ""


@dataclass
class StageState:
    stage_run_id: str
    status: str
    paused: bool
    device_count: int
    dispatched: int
    in_flight: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class TargetFinished:
    target_run_id: str
    status: str
    failure_type: str = ""  # FAILED or TIMED_OUT when not a success
    # Its row had ended before it started (an operator cancelled it while pending): whoever
    # ended it counted it, so the stage only carries on with the device's later operations.
    closed_before_start: bool = False


# ---- TargetRunWorkflow ---------------------------------------------------------------------
@dataclass
class TargetRunInput:
    target_run_id: str
    stage_run_id: str
    enterprise_id: str
    timeout_seconds: int
    stage_workflow_id: str
    retries: dict[str, int] = field(default_factory=dict)  # FAILED / TIMED_OUT -> count
    sensitive: SensitiveValues | None = None  # the run's, for the dispatch only
    labels: RunLabels | None = None
    search_attributes: bool = False  # as StageRunInput's: set at start, upserted at the end
    # Set by a stage past PATCH_LEAN_TARGETS (older inputs decode False and keep the old
    # shape): the stage reads this run's end from its completion, not from a signal (unless
    # told otherwise before a continue-as-new), and its own deadline stands in for the
    # target's backstop timer.
    reports_by_completion: bool = False


@dataclass
class TargetRunResult:
    status: str
    failure_type: str = ""
    command_id: str | None = None
    command_status: str | None = None
    closed_before_start: bool = False  # as TargetFinished's


@dataclass
class CommandEvents:
    """Events for one target run's commands, batched: a device that answers at once sends one."""

    events: list[CommandEvent] = field(default_factory=list)


@dataclass
class TargetStop:
    status: str  # cancelled | timeout
    reason: str = ""
    only_before_dispatch: bool = False  # an operator's target cancel: ignored once dispatched


@dataclass
class CommandCancelRequest:
    command_id: str
    reason: str = ""
