"""Materialising one big stage run: every row in one chunk (the old shape) against chunks.

    .venv/bin/python bench/materialize.py [--devices 100000] [--operations 3] [--chunk 5000]
        [--rounds 2] [--databases sqlite,postgresql://postgres@127.0.0.1:5432/test]

For each database (a fresh SQLite file, a fresh schema in PostgreSQL: bench/databases.py) it
seeds N devices in one group and a pipeline whose stage targets the group with K operations,
then makes stage runs of new runs of it, `--rounds` times each way, alternating which goes
first (the second one inserts into a table that is 300,000 rows bigger):

- baseline: store.runs.materialize with one chunk of every device, i.e. all N x K rows in one
  transaction, as materialize_targets did before it was split;
- chunked: chunks of `--chunk` devices, interrupted half-way (the work of a killed attempt)
  and resumed by a fresh `begin`, as the activity's retry does.

Printed per database: wall time, rows, transactions, the longest single transaction and the
resumed `begin` (the fixed cost every attempt of the activity pays), and how many attempts the
activity would need with its budget (half of the workflow's 20 s start-to-close). Every stage
run's (position, device, operation) list is checked equal. Last stdout line per database
(wall times are the means over the rounds):
`db=… rows=… baseline_s=… chunked_s=… ratio=… longest_txn_s=… baseline_txn_s=… attempts=…`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from uuid import UUID

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import col, func, select  # noqa: E402

from bench.databases import describe, fresh_store  # noqa: E402
from store.db import make_engine, transaction  # noqa: E402
from store.definitions.devices import Device, DeviceGroup, DeviceGroupMember  # noqa: E402
from store.definitions.operation_lists import Operation, OperationList  # noqa: E402
from store.definitions.pipelines import Pipeline, Stage  # noqa: E402
from store.definitions.target_lists import (  # noqa: E402
    StageTargetList,
    TargetList,
    TargetListGroup,
)
from store.definitions.tenants import ensure_enterprise  # noqa: E402
from store.migrations import upgrade  # noqa: E402
from store.runs import materialize  # noqa: E402
from store.runs.creation import create_pipeline_run, prepare_stage_runs  # noqa: E402
from store.runs.tables import TargetRun  # noqa: E402
from store.types import utcnow  # noqa: E402

T = TypeVar("T")
ATTEMPT_BUDGET_S = 10.0  # the activity's share (0.5) of the workflow's 20 s start-to-close


def seed(engine: Engine, devices: int, operations: int) -> tuple[UUID, UUID]:
    """(enterprise id, pipeline id): N devices in one group, one stage on it, K operations."""
    enterprise = ensure_enterprise(engine, "bench")
    now = utcnow()
    with transaction(engine) as session:
        pipeline = Pipeline(enterprise_id=enterprise.id, name="materialize")
        group = DeviceGroup(enterprise_id=enterprise.id, name="fleet")
        session.add_all([pipeline, group])
        session.flush()
        stage = Stage(pipeline_id=pipeline.id, name="fleet", order=0, trigger="automatic")
        target_list = TargetList(pipeline_id=pipeline.id, name="fleet",
                                 target_list_type="GROUPS")
        session.add_all([stage, target_list])
        session.flush()
        op_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id, name="ops")
        session.add_all([op_list, StageTargetList(stage_id=stage.id,
                                                  target_list_id=target_list.id),
                         TargetListGroup(target_list_id=target_list.id,
                                         device_group_id=group.id)])
        session.flush()
        session.add_all([Operation(operation_list_id=op_list.id, order=n, operation_type="REBOOT",
                                   args={}) for n in range(operations)])
        ids = [uuid.uuid4() for _ in range(devices)]
        for start in range(0, devices, 5000):
            batch = ids[start:start + 5000]
            session.execute(insert(Device.__table__), [  # type: ignore[attr-defined]
                {"id": d, "enterprise_id": enterprise.id, "name": f"dev-{start + i:06d}",
                 "alias": f"d{start + i}", "attributes": {}, "created_at": now,
                 "updated_at": now} for i, d in enumerate(batch)])
            session.execute(insert(DeviceGroupMember.__table__), [  # type: ignore[attr-defined]
                {"device_group_id": group.id, "device_id": d} for d in batch])
        return enterprise.id, pipeline.id


def new_stage_run(engine: Engine, enterprise_id: UUID, pipeline_id: UUID) -> UUID:
    run = create_pipeline_run(engine, enterprise_id, pipeline_id)
    (stage,) = prepare_stage_runs(engine, run.id)
    return UUID(stage.stage_run_id)


class Timed:
    """Every transaction's duration (each store.runs.materialize call is one)."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def __call__(self, fn: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        result = fn(*args)
        self.durations.append(time.perf_counter() - started)
        return result


def make_stage(engine: Engine, stage_run_id: UUID, chunk: int,
               interrupt_after: int | None = None) -> tuple[Timed, float]:
    """Materialise, timing each transaction; after `interrupt_after` chunks, drop the state
    and begin again (a retried attempt). Returns the timings and the resumed begin's time."""
    timed, resumed_begin = Timed(), 0.0
    state = timed(materialize.begin, engine, stage_run_id)
    while state.plan is None:
        state = timed(materialize.write_chunk, engine, state, chunk)
        if interrupt_after is not None and state.chunks == interrupt_after:
            state = timed(materialize.begin, engine, stage_run_id)
            resumed_begin, interrupt_after = timed.durations[-1], None
    return timed, resumed_begin


def attempts_needed(durations: list[float], resumed_begin: float) -> int:
    """How many attempts the activity would need: each pays a begin, then writes chunks until
    it has used ATTEMPT_BUDGET_S (always at least one chunk)."""
    chunks = durations[1:]
    attempts, index = 0, 0
    while index < len(chunks):
        attempts += 1
        spent = durations[0] if attempts == 1 else resumed_begin
        spent += chunks[index]
        index += 1
        while index < len(chunks) and spent < ATTEMPT_BUDGET_S:
            spent += chunks[index]
            index += 1
    return attempts


def layout(engine: Engine, stage_run_id: UUID) -> list[tuple[int, UUID, int]]:
    with transaction(engine) as session:
        return [tuple(row) for row in session.execute(
            select(TargetRun.device_seq, TargetRun.target_id, TargetRun.operation_order)
            .where(TargetRun.stage_run_id == stage_run_id)
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))).all()]


def row_count(engine: Engine, stage_run_id: UUID) -> int:
    with transaction(engine) as session:
        return int(session.execute(select(func.count()).select_from(TargetRun)
                                   .where(TargetRun.stage_run_id == stage_run_id)).scalar_one())


def run_one(database: str, devices: int, operations: int, chunk: int, rounds: int) -> None:
    name = describe(database) if database else "sqlite"
    with tempfile.TemporaryDirectory() as work, fresh_store(database, Path(work)) as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        enterprise_id, pipeline_id = seed(engine, devices, operations)
        print(f"[{name}] seeded {devices} devices in {time.perf_counter() - started:.1f} s")
        half = max(1, devices // chunk // 2)
        walls: dict[str, list[float]] = {"baseline": [], "chunked": []}
        timings: dict[str, list[Timed]] = {"baseline": [], "chunked": []}
        resumed: list[float] = []
        layouts = []
        for round_ in range(rounds):
            # Alternate which goes first: the second one inserts into a bigger table.
            modes = ["baseline", "chunked"] if round_ % 2 == 0 else ["chunked", "baseline"]
            for mode in modes:
                stage_run_id = new_stage_run(engine, enterprise_id, pipeline_id)
                started = time.perf_counter()
                if mode == "baseline":
                    timed, _ = make_stage(engine, stage_run_id, chunk=devices)
                else:
                    timed, resumed_begin = make_stage(engine, stage_run_id, chunk,
                                                      interrupt_after=half)
                    resumed.append(resumed_begin)
                walls[mode].append(time.perf_counter() - started)
                timings[mode].append(timed)
                assert row_count(engine, stage_run_id) == devices * operations
                assert materialize.materialize_targets(engine, stage_run_id).device_count \
                    == devices
                layouts.append([row[1:] for row in layout(engine, stage_run_id)])
        assert all(found == layouts[0] for found in layouts)  # same devices, same positions
        engine.dispose()

    for mode in ("baseline", "chunked"):
        begins = [t.durations[0] for t in timings[mode]]
        if mode == "baseline":
            rows_s = [t.durations[1] for t in timings[mode]]
            print(f"[{name}] baseline (one chunk): wall {fmt(walls[mode])} s, 2 transactions "
                  f"(begin {fmt(begins)} s, all rows {fmt(rows_s)} s)")
            continue
        chunks = [d for t in timings[mode] for d in without_resumed_begin(t, half)[1:]]
        print(f"[{name}] chunked ({chunk} devices): wall {fmt(walls[mode])} s, "
              f"{len(timings[mode][0].durations)} transactions (first begin {fmt(begins)} s, "
              f"resumed begin {fmt(resumed)} s, chunks {min(chunks):.2f}-{max(chunks):.2f} s)")
    longest = max(max(t.durations) for t in timings["chunked"])
    attempts = max(attempts_needed(without_resumed_begin(t, half), begin)
                   for t, begin in zip(timings["chunked"], resumed, strict=True))
    baseline_s, chunked_s = (sum(walls[m]) / rounds for m in ("baseline", "chunked"))
    print(f"db={name} rows={devices * operations} baseline_s={baseline_s:.2f} "
          f"chunked_s={chunked_s:.2f} ratio={chunked_s / baseline_s:.2f} "
          f"longest_txn_s={longest:.2f} "
          f"baseline_txn_s={max(max(t.durations) for t in timings['baseline']):.2f} "
          f"attempts={attempts}")


def without_resumed_begin(timed: Timed, half: int) -> list[float]:
    """The first begin and the chunks (the resumed begin came after chunk `half`)."""
    return timed.durations[:half + 1] + timed.durations[half + 2:]


def fmt(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=materialize.CHUNK_DEVICES)
    parser.add_argument("--rounds", type=int, default=2,
                        help="each mode this many times, alternating which goes first")
    parser.add_argument("--databases", default="sqlite,postgresql://postgres@127.0.0.1:5432/test",
                        help="comma-separated: `sqlite` (a fresh file) or PostgreSQL URLs")
    args = parser.parse_args()
    for database in args.databases.split(","):
        run_one("" if database == "sqlite" else database, args.devices, args.operations,
                args.chunk, args.rounds)


if __name__ == "__main__":
    main()
