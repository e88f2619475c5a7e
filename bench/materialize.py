"""Materialising one big stage run: every row in one chunk (the old shape) against chunks.

    .venv/bin/python bench/materialize.py [--devices 100000] [--operations 3] [--chunk 5000]
        [--databases sqlite,postgresql://postgres@127.0.0.1:5432/test]

For each database (a fresh SQLite file, a fresh schema in PostgreSQL: bench/databases.py) it
seeds N devices in one group and a pipeline whose stage targets the group with K operations,
then makes two runs' stage runs:

- baseline: store.runs.materialize with one chunk of every device, i.e. all N x K rows in one
  transaction, as materialize_targets did before it was split;
- chunked: chunks of `--chunk` devices, interrupted half-way (the work of a killed attempt)
  and resumed by a fresh `begin`, as the activity's retry does.

Printed per database: wall time, rows, transactions, the longest single transaction and the
resumed `begin` (the fixed cost every attempt of the activity pays), and how many attempts the
activity would need with its budget (half of the workflow's 20 s start-to-close). The two runs'
(position, device, operation) lists are checked equal. Last stdout line per database:
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


def run_one(database: str, devices: int, operations: int, chunk: int) -> None:
    name = describe(database) if database else "sqlite"
    with tempfile.TemporaryDirectory() as work, fresh_store(database, Path(work)) as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        enterprise_id, pipeline_id = seed(engine, devices, operations)
        print(f"[{name}] seeded {devices} devices in {time.perf_counter() - started:.1f} s")

        one = new_stage_run(engine, enterprise_id, pipeline_id)
        started = time.perf_counter()
        baseline, _ = make_stage(engine, one, chunk=devices)
        baseline_s = time.perf_counter() - started

        split = new_stage_run(engine, enterprise_id, pipeline_id)
        half = max(1, devices // chunk // 2)
        started = time.perf_counter()
        chunked, resumed_begin = make_stage(engine, split, chunk, interrupt_after=half)
        chunked_s = time.perf_counter() - started

        rows = row_count(engine, split)
        assert rows == row_count(engine, one) == devices * operations, rows
        assert [r[1:] for r in layout(engine, split)] == [r[1:] for r in layout(engine, one)]
        again = materialize.materialize_targets(engine, split)
        assert again.device_count == devices, again
        engine.dispose()

    longest = max(chunked.durations)
    attempts = attempts_needed(chunked.durations[:half + 1] + chunked.durations[half + 2:],
                               resumed_begin)
    print(f"[{name}] baseline (one chunk): {baseline_s:.2f} s, {len(baseline.durations)} "
          f"transactions (begin {baseline.durations[0]:.2f} s, rows {baseline.durations[1]:.2f} s)")
    print(f"[{name}] chunked ({chunk} devices): {chunked_s:.2f} s, {len(chunked.durations)} "
          f"transactions (first begin {chunked.durations[0]:.2f} s, resumed begin "
          f"{resumed_begin:.2f} s, chunks {min(chunked.durations[1:half + 1]):.2f}-"
          f"{max(chunked.durations[1:]):.2f} s)")
    print(f"db={name} rows={rows} baseline_s={baseline_s:.2f} chunked_s={chunked_s:.2f} "
          f"ratio={chunked_s / baseline_s:.2f} longest_txn_s={longest:.2f} "
          f"baseline_txn_s={max(baseline.durations):.2f} attempts={attempts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=materialize.CHUNK_DEVICES)
    parser.add_argument("--databases", default="sqlite,postgresql://postgres@127.0.0.1:5432/test",
                        help="comma-separated: `sqlite` (a fresh file) or PostgreSQL URLs")
    args = parser.parse_args()
    for database in args.databases.split(","):
        run_one("" if database == "sqlite" else database, args.devices, args.operations,
                args.chunk)


if __name__ == "__main__":
    main()
