"""What must hold after any number of crashes, read from the store, the simulated fleet's own
record and the Temporal server, each check with examples of what broke it:

- terminal: every target run, its stage run and the pipeline run have a terminal status;
- lost: a target-run row for every device x operation (none missing);
- duplicates: no device got a second command: at most one delivery per command (the sim's
  record), one command per target-run attempt (ids derived from the attempt), and no device
  delivered more commands than its target runs have attempts;
- not_success: every device succeeds, so every terminal target run must be `success`;
- result_mismatches: every workflow closed completed and its result says what its row says
  (a target run: status, command_id, command_status; the stage and pipeline runs: status);
- replay_failures: every history of the run's workflows (continued-as-new runs too) replays
  on today's workflow code.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from devices.sim_records import SimDelivery
from domain.ids import (
    command_id,
    pipeline_run_workflow_id,
    stage_run_workflow_id,
    target_run_workflow_id,
)
from domain.statuses import RunKind, is_terminal
from store.db import transaction
from store.runs.commands import Command
from store.runs.tables import PipelineRun, StageRun, TargetRun
from worker import WORKFLOWS
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import PipelineRunResult, StageRunResult, TargetRunResult

EXAMPLES = 5  # ids shown per broken check
_FETCHES = 16  # histories fetched at once
_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


@dataclass
class Verdict:
    expected_targets: int
    target_rows: int = 0
    targets_terminal: int = 0
    run_status: str = ""
    stage_statuses: list[str] = field(default_factory=list)
    target_statuses: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicates: int = 0
    not_success: int = 0
    result_mismatches: int = 0
    workflows_checked: int = 0
    histories_replayed: int = 0
    replay_failures: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def all_terminal(self) -> bool:
        return (self.targets_terminal == self.target_rows == self.expected_targets
                and is_terminal(RunKind.PIPELINE, self.run_status)
                and bool(self.stage_statuses)
                and all(is_terminal(RunKind.STAGE, s) for s in self.stage_statuses))

    @property
    def passed(self) -> bool:
        return (self.all_terminal and not self.lost and not self.duplicates
                and not self.not_success and not self.result_mismatches
                and not self.replay_failures and self.histories_replayed > 0)

    def failed_checks(self) -> list[str]:
        failed = []
        if not self.all_terminal:
            failed.append("terminal")
        failed += [name for name in ("lost", "duplicates", "not_success", "result_mismatches",
                                     "replay_failures") if getattr(self, name)]
        if not self.histories_replayed:
            failed.append("replay_failures (no history was replayed)")
        return failed

    def note(self, check: str, example: str) -> None:
        if len(self.examples[check]) < EXAMPLES:
            self.examples[check].append(example)


async def check_run(engine: Engine, client: Client, *, run_id: str, task_queue: str,
                    devices: int, operations: int) -> Verdict:
    verdict = Verdict(expected_targets=devices * operations)
    rows = await asyncio.to_thread(_read_store, engine, UUID(run_id))
    _check_store(verdict, rows)
    histories = await _fetch_histories(client, task_queue, run_id, rows)
    await _check_results(verdict, rows, histories)
    await check_replay(verdict, [h for runs in histories.values() for h in runs])
    return verdict


# ---- the store and the simulator's record ------------------------------------------------------
@dataclass
class StoreRows:
    run: PipelineRun | None
    stages: list[StageRun]
    targets: list[TargetRun]
    commands: list[Command]
    deliveries: list[tuple[UUID, UUID]]  # (command_id, device_id) of every sim delivery


def _read_store(engine: Engine, run_id: UUID) -> StoreRows:
    with transaction(engine) as session:
        targets = list(session.execute(
            select(TargetRun).where(col(TargetRun.pipeline_run_id) == run_id)).scalars())
        ids, devices = {t.id for t in targets}, {t.target_id for t in targets}
        every = list(session.execute(select(Command)).scalars())
        known = {c.id for c in every}
        commands = [c for c in every if c.target_run_id in ids]
        mine = {c.id for c in commands}
        # This run's commands, and anything delivered to its devices that no command row names.
        deliveries = [(cid, did) for cid, did in session.execute(
            select(SimDelivery.c.command_id, SimDelivery.c.device_id)).all()
            if cid in mine or (did in devices and cid not in known)]
        return StoreRows(
            run=session.get(PipelineRun, run_id),
            stages=list(session.execute(
                select(StageRun).where(col(StageRun.pipeline_run_id) == run_id)).scalars()),
            targets=targets, commands=commands, deliveries=deliveries)


def _check_store(verdict: Verdict, rows: StoreRows) -> None:
    verdict.run_status = rows.run.status if rows.run else "missing"
    verdict.stage_statuses = [s.status for s in rows.stages]
    verdict.target_rows = len(rows.targets)
    statuses = Counter(t.status for t in rows.targets)
    verdict.target_statuses = dict(statuses.most_common())
    verdict.targets_terminal = sum(n for s, n in statuses.items()
                                   if is_terminal(RunKind.TARGET, s))
    for t in rows.targets:
        if not is_terminal(RunKind.TARGET, t.status):
            verdict.note("terminal", f"target run {t.id} is {t.status} (command {t.command_id} "
                                     f"{t.command_status})")
        elif t.status != "success":
            verdict.not_success += 1
            verdict.note("not_success", f"target run {t.id} ended {t.status}: "
                                        f"{t.status_reason!r}")
    if not is_terminal(RunKind.PIPELINE, verdict.run_status):
        verdict.note("terminal", f"pipeline run is {verdict.run_status}")
    for s in rows.stages:
        if not is_terminal(RunKind.STAGE, s.status):
            verdict.note("terminal", f"stage run {s.id} is {s.status}")
    # Lost: a device x operation without a (current) row.
    pairs = {(t.target_id, t.stage_run_operation_id) for t in rows.targets
             if t.superseded_by is None}
    operations = {t.stage_run_operation_id for t in rows.targets}
    verdict.lost = max(0, verdict.expected_targets - len(pairs))
    if verdict.lost:
        verdict.note("lost", f"{len(pairs)} device x operation rows of "
                             f"{verdict.expected_targets} ({len(operations)} operations seen)")
    _check_duplicates(verdict, rows)


def _check_duplicates(verdict: Verdict, rows: StoreRows) -> None:
    by_command = Counter(cid for cid, _ in rows.deliveries)
    for cid, n in by_command.items():
        if n > 1:
            verdict.duplicates += n - 1
            verdict.note("duplicates", f"command {cid} delivered {n} times")
    attempts: Counter[UUID] = Counter()  # per device: the attempts its target runs made
    commands_of: dict[UUID, list[UUID]] = defaultdict(list)
    for c in rows.commands:
        commands_of[c.target_run_id].append(c.id)
    for t in rows.targets:
        allowed = {command_id(t.id, k) for k in range(t.attempt + 1)}
        made = commands_of.get(t.id, [])
        extra = [c for c in made if c not in allowed]
        if extra or len(made) > t.attempt + 1:
            verdict.duplicates += max(len(extra), len(made) - t.attempt - 1)
            verdict.note("duplicates", f"target run {t.id} (attempt {t.attempt}) has commands "
                                       f"{[str(c) for c in made]}")
        if made:
            attempts[t.target_id] += t.attempt + 1
    per_device = Counter(did for _, did in rows.deliveries)
    for did, n in per_device.items():
        if n > attempts[did]:
            verdict.duplicates += n - attempts[did]
            verdict.note("duplicates", f"device {did} got {n} commands for {attempts[did]} "
                                       "target-run attempt(s)")


# ---- the workflows -----------------------------------------------------------------------------
async def _fetch_histories(client: Client, task_queue: str, run_id: str,
                           rows: StoreRows) -> dict[str, list[WorkflowHistory]]:
    """Every run of every workflow of the drill's task queues (visibility, waited for until it
    holds every workflow the store names), plus any the store names that it still lacks."""
    expected = ({pipeline_run_workflow_id(run_id)}
                | {stage_run_workflow_id(s.id) for s in rows.stages}
                | {target_run_workflow_id(t.id) for t in rows.targets})
    query = (f'TaskQueue = "{task_queue}" OR '
             f'TaskQueue = "{names.targets_task_queue(task_queue)}"')
    executions: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    while True:
        executions = [(w.id, w.run_id or "") async for w in client.list_workflows(query)]
        if expected <= {wid for wid, _ in executions} or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    listed = {wid for wid, _ in executions}
    executions += [(wid, "") for wid in sorted(expected - listed)]  # the latest run, by id
    gate = asyncio.Semaphore(_FETCHES)

    async def fetch(wid: str, rid: str) -> WorkflowHistory | None:
        async with gate:
            try:
                return await client.get_workflow_handle(wid, run_id=rid or None).fetch_history()
            except Exception:  # no such workflow: the result check names it
                return None

    fetched = await asyncio.gather(*(fetch(wid, rid) for wid, rid in executions))
    out: dict[str, list[WorkflowHistory]] = defaultdict(list)
    for history in fetched:
        if history is not None and history.events:
            out[history.workflow_id].append(history)
    for runs in out.values():  # oldest first: the last one is the workflow's latest run
        runs.sort(key=lambda h: h.events[0].event_time.ToDatetime())
    return out


async def _result_of(history: WorkflowHistory, result_type: type) -> Any:
    last = history.events[-1]
    if last.event_type != _COMPLETED:
        return None
    payloads = last.workflow_execution_completed_event_attributes.result.payloads
    (result,) = await DATA_CONVERTER.decode(list(payloads), [result_type])
    return result


def _closing(history: WorkflowHistory | None) -> str:
    if history is None:
        return "no workflow"
    return EventType.Name(history.events[-1].event_type).removeprefix("EVENT_TYPE_")


async def _check_results(verdict: Verdict, rows: StoreRows,
                         histories: dict[str, list[WorkflowHistory]]) -> None:
    def latest(wid: str) -> WorkflowHistory | None:
        runs = histories.get(wid)
        return runs[-1] if runs else None

    async def compare(wid: str, result_type: type, want: dict[str, Any]) -> None:
        verdict.workflows_checked += 1
        history = latest(wid)
        result = await _result_of(history, result_type) if history else None
        if result is None:
            verdict.result_mismatches += 1
            verdict.note("result_mismatches", f"{wid}: {_closing(history)} (row: {want})")
            return
        got = {key: getattr(result, key) for key in want}
        if got != want:
            verdict.result_mismatches += 1
            verdict.note("result_mismatches", f"{wid}: result {got} != row {want}")

    if rows.run is not None:
        await compare(pipeline_run_workflow_id(rows.run.id), PipelineRunResult,
                      {"status": rows.run.status})
    for s in rows.stages:
        await compare(stage_run_workflow_id(s.id), StageRunResult, {"status": s.status})
    for t in rows.targets:
        await compare(target_run_workflow_id(t.id), TargetRunResult, {
            "status": t.status,
            "command_id": str(t.command_id) if t.command_id else None,
            "command_status": t.command_status})


async def check_replay(verdict: Verdict, histories: Iterable[WorkflowHistory],
                       workflows: Sequence[type] = WORKFLOWS) -> None:
    """Replay every history on `workflows` (today's), counting and naming the failures."""
    every = list(histories)

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in every:
            yield history

    replayer = Replayer(workflows=workflows, data_converter=DATA_CONVERTER)
    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    verdict.histories_replayed = len(every)
    verdict.replay_failures = len(results.replay_failures)
    by_run = {h.run_id: h.workflow_id for h in every if h.events}
    for rid, err in list(results.replay_failures.items())[:EXAMPLES]:
        verdict.note("replay_failures", f"{by_run.get(rid, '?')} run {rid}: "
                                        f"{type(err).__name__}: {str(err)[:300]}")
