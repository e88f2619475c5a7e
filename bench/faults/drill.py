"""One pipeline run of N simulated devices under faults, then the checks (bench.faults.checks).

The faults come at random moments of the run's progress: each fires when the count of
terminal target runs passes a random threshold (seeded; the faults left share what is left
between 5 % and 85 % of the target runs), after at least one more target run ended since the
previous fault recovered, so every fault hits a run that is moving, however fast the machine.
Kinds: the worker SIGKILLed and restarted, the API SIGKILLed and restarted, the Temporal dev
server SIGKILLed, left down for an outage and restarted on the same port and database. The
longest outage comes last, after every worker kill: a starting worker resends the signals it
owes, so what brings the run home after that outage is the product itself, not a restart the
drill happened to make.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bench.faults.checks import Verdict, check_run
from bench.faults.fleet import Fleet, seed_fleet
from bench.faults.stack import API, TEMPORAL, WORKER, Stack
from domain.statuses import TERMINAL, RunKind, is_terminal
from store.db import make_engine, transaction
from store.runs.tables import PipelineRun, TargetRun

Log = Callable[..., None]
_POLL_S = 0.2


@dataclass(frozen=True)
class DrillConfig:
    devices: int = 1000
    operations: int = 1
    window: int = 20  # FLEETPIPE_STAGE_WINDOW: small, so the run lasts long enough to be hurt
    slow_every: int = 10  # every n-th device answers after slow_ms (0: none)
    slow_ms: int = 3000
    worker_kills: int = 20
    api_kills: int = 1
    outages_s: tuple[float, ...] = (150.0,)  # one Temporal kill per entry, the longest last
    seed: int | None = None  # of the fault schedule; None: a fresh one (printed)
    first_fraction: float = 0.05
    last_fraction: float = 0.85
    stall_timeout_s: float = 600.0  # no target run ended for this long: stop hurting it
    settle_timeout_s: float = 900.0  # after the last fault, for the run to end


@dataclass
class DrillReport:
    config: DrillConfig
    seed: int
    verdict: Verdict | None = None
    run_id: str = ""
    worker_kills: int = 0
    api_kills: int = 0
    outages_s: list[float] = field(default_factory=list)  # measured: kill -> answering again
    worker_exits: int = 0  # the worker ended by itself (then restarted)
    api_exits: int = 0
    wall_s: float = 0.0  # the run's POST -> its row terminal (or the drill gave up)
    faults: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # stalls and time-outs of the drill

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed and not self.problems

    def line(self) -> str:
        v = self.verdict
        outages = "+".join(f"{s:.0f}" for s in self.outages_s) or "0"
        checks = ("no checks ran" if v is None else
                  f"targets_terminal={v.targets_terminal}/{v.expected_targets} lost={v.lost} "
                  f"duplicates={v.duplicates} not_success={v.not_success} "
                  f"result_mismatches={v.result_mismatches}/{v.workflows_checked} "
                  f"replay_failures={v.replay_failures}/{v.histories_replayed} "
                  f"run={v.run_status}")
        return (f"drill devices={self.config.devices} operations={self.config.operations} "
                f"window={self.config.window} worker_kills={self.worker_kills} "
                f"worker_self_exits={self.worker_exits} api_kills={self.api_kills} "
                f"temporal_kills={len(self.outages_s)} outage_s={outages} "
                f"wall_s={self.wall_s:.0f} {checks} seed={self.seed} "
                f"{'PASS' if self.passed else 'FAIL'}")


def fault_plan(config: DrillConfig, rng: random.Random) -> list[tuple[str, float]]:
    """(kind, outage seconds) in firing order: kills and short outages shuffled, the longest
    outage last."""
    outages = sorted(config.outages_s)
    plan = ([(WORKER, 0.0)] * config.worker_kills + [(API, 0.0)] * config.api_kills
            + [(TEMPORAL, s) for s in outages[:-1]])
    rng.shuffle(plan)
    return plan + [(TEMPORAL, s) for s in outages[-1:]]


async def run_drill(config: DrillConfig, work: Path, log: Log) -> DrillReport:
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(10**6)
    report = DrillReport(config=config, seed=seed)
    rng = random.Random(seed)
    stack = Stack(work, task_queue=f"drill-{uuid.uuid4().hex[:8]}", window=config.window)
    engine = make_engine(stack.db_url)
    try:
        fleet = await asyncio.to_thread(seed_fleet, stack.db_url, config.devices,
                                        config.operations, config.slow_every, config.slow_ms)
        stack.api_key = fleet.api_key
        log(f"store seeded: {fleet.devices} devices ({fleet.slow_devices} answer after "
            f"{config.slow_ms} ms), {fleet.operations} operation(s); fault seed {seed}")
        await stack.start_temporal()
        await stack.start_worker()
        await stack.start_api()
        began = time.monotonic()
        report.run_id = await _start_run(stack, fleet)
        log(f"run {report.run_id} started through the API")
        await _hurt(stack, engine, config, rng, report, log)
        await _settle(stack, engine, config, report, log)
        report.wall_s = time.monotonic() - began
        assert stack.client is not None
        log("checking the store, the fleet's record and every workflow ...")
        report.verdict = await check_run(engine, stack.client, run_id=report.run_id,
                                         task_queue=stack.task_queue, devices=config.devices,
                                         operations=config.operations)
        for check, examples in report.verdict.examples.items():
            for example in examples:
                log(f"check {check}: {example}")
        return report
    finally:
        stack.stop_all()
        engine.dispose()


async def _start_run(stack: Stack, fleet: Fleet) -> str:
    async with httpx.AsyncClient(timeout=60.0) as http:
        answer = await http.post(f"{stack.api_url}/pipelines/{fleet.pipeline_id}/runs",
                                 headers=stack.headers, json={})
    if answer.status_code != 200:
        raise RuntimeError(f"POST run: {answer.status_code} {answer.text[:500]}")
    return str(answer.json()["content"]["id"])


# ---- progress ----------------------------------------------------------------------------------
def _terminal_targets(engine: Engine, run_id: str) -> int:
    with transaction(engine) as session:
        return int(session.execute(
            select(func.count()).select_from(TargetRun)
            .where(col(TargetRun.pipeline_run_id) == uuid.UUID(run_id),
                   col(TargetRun.status).in_(TERMINAL[RunKind.TARGET]))
        ).scalar_one())


def _run_status(engine: Engine, run_id: str) -> str:
    with transaction(engine) as session:
        row = session.get(PipelineRun, uuid.UUID(run_id))
        return row.status if row else "missing"


async def _tend(stack: Stack, report: DrillReport, log: Log) -> None:
    """Restart a worker or API that ended by itself (the product's own crash), counted."""
    for name in (WORKER, API):
        code = stack.exited(name)
        if code is None:
            continue
        log(f"{name} exited by itself with {code}; restarting it. Its log ends:\n"
            + stack.log_tail(name))
        stack.forget(name)
        if name == WORKER:
            report.worker_exits += 1
            await stack.start_worker()
        else:
            report.api_exits += 1
            await stack.start_api()
    stack.procs.check_alive(TEMPORAL)


async def _wait_progress(stack: Stack, engine: Engine, run_id: str, at_least: int,
                         stall_s: float, report: DrillReport, log: Log) -> bool:
    """Until `at_least` target runs are terminal; False if none ended for `stall_s`."""
    last, last_change = -1, time.monotonic()
    while True:
        await _tend(stack, report, log)
        done = await asyncio.to_thread(_terminal_targets, engine, run_id)
        if done >= at_least:
            return True
        if done != last:
            last, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return False
        if is_terminal(RunKind.PIPELINE, await asyncio.to_thread(_run_status, engine, run_id)):
            return False
        await asyncio.sleep(_POLL_S)


# ---- the faults --------------------------------------------------------------------------------
async def _hurt(stack: Stack, engine: Engine, config: DrillConfig, rng: random.Random,
                report: DrillReport, log: Log) -> None:
    total = config.devices * config.operations
    plan = fault_plan(config, rng)
    first = round(total * config.first_fraction)
    last = max(first + len(plan), round(total * config.last_fraction))
    done = 0
    for index, (kind, outage_s) in enumerate(plan):
        threshold = next_threshold(rng, done, first, last, len(plan) - index)
        reached = await _wait_progress(stack, engine, report.run_id, threshold,
                                       config.stall_timeout_s, report, log)
        if not reached:
            done = await asyncio.to_thread(_terminal_targets, engine, report.run_id)
            report.problems.append(
                f"the run stopped moving or ended at {done}/{total} terminal target runs "
                f"before the fault planned at {threshold} ({kind}); "
                f"{len(report.faults)} of {len(plan)} faults made")
            log(report.problems[-1])
            return
        await asyncio.sleep(rng.uniform(0.0, 1.0))  # a random moment, not the poll's
        done = await asyncio.to_thread(_terminal_targets, engine, report.run_id)
        await _fault(stack, kind, outage_s, report, log)
        report.faults.append(f"{kind}{f' {outage_s:.0f}s' if kind == TEMPORAL else ''} at "
                             f"{done}/{total}")
        log(f"fault {len(report.faults)}/{len(plan)}: {report.faults[-1]} (recovered)")
        done = await asyncio.to_thread(_terminal_targets, engine, report.run_id)


def next_threshold(rng: random.Random, done: int, first: int, last: int, left: int) -> int:
    """Terminal target runs at which the next of `left` faults fires: a random point of an
    even share of what is left up to `last` (the share is recomputed after every fault, so a
    fault whose recovery took long leaves the rest spread over less), and always at least one
    more than `done`, so the fault lands on a run that moved since the last one."""
    start = max(done, first)
    share = max(1.0, (last - start) / left)
    return max(done + 1, start + round(rng.uniform(0.0, share)))


async def _fault(stack: Stack, kind: str, outage_s: float, report: DrillReport,
                 log: Log) -> None:
    if kind == WORKER:
        stack.kill(WORKER)
        report.worker_kills += 1
        await stack.start_worker()
    elif kind == API:
        stack.kill(API)
        report.api_kills += 1
        await stack.start_api()
    else:
        killed = time.monotonic()
        stack.kill(TEMPORAL)
        log(f"Temporal dev server killed; down for {outage_s:.0f} s")
        await asyncio.sleep(outage_s)
        await stack.start_temporal()
        report.outages_s.append(time.monotonic() - killed)
        log(f"Temporal back after {report.outages_s[-1]:.0f} s")


async def _settle(stack: Stack, engine: Engine, config: DrillConfig, report: DrillReport,
                  log: Log) -> None:
    """Wait (bounded) for the run's row to be terminal, tending the processes meanwhile."""
    deadline = time.monotonic() + config.settle_timeout_s
    next_note = time.monotonic() + 30
    while True:
        await _tend(stack, report, log)
        status = await asyncio.to_thread(_run_status, engine, report.run_id)
        if is_terminal(RunKind.PIPELINE, status):
            log(f"run ended {status}")
            return
        if time.monotonic() > deadline:
            done = await asyncio.to_thread(_terminal_targets, engine, report.run_id)
            report.problems.append(
                f"the run is still {status} {config.settle_timeout_s:.0f} s after the last "
                f"fault ({done}/{config.devices * config.operations} target runs terminal)")
            log(report.problems[-1])
            return
        if time.monotonic() > next_note:
            next_note = time.monotonic() + 30
            done = await asyncio.to_thread(_terminal_targets, engine, report.run_id)
            log(f"waiting for the run to end: {status}, {done} target runs terminal")
        await asyncio.sleep(1.0)


def summary(report: DrillReport) -> dict[str, Any]:
    """Every figure, for --json."""
    v = report.verdict
    return {"line": report.line(), "passed": report.passed, "seed": report.seed,
            "run_id": report.run_id, "config": report.config.__dict__,
            "worker_kills": report.worker_kills, "api_kills": report.api_kills,
            "outages_s": report.outages_s, "worker_self_exits": report.worker_exits,
            "api_self_exits": report.api_exits, "wall_s": report.wall_s,
            "faults": report.faults, "problems": report.problems,
            "verdict": None if v is None else {
                **{k: getattr(v, k) for k in (
                    "expected_targets", "target_rows", "targets_terminal", "run_status",
                    "stage_statuses", "target_statuses", "lost", "duplicates", "not_success",
                    "result_mismatches", "workflows_checked", "histories_replayed",
                    "replay_failures")},
                "failed_checks": v.failed_checks(), "examples": dict(v.examples)}}
