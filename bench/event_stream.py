"""Event-stream benchmark: what 1,000 SSE subscribers on one run cost the API and the database.

    .venv/bin/python bench/event_stream.py --subscribers 1000 [--database postgresql://...]

One live API process (`uvicorn`, the app of api/app.py plus a statement counter:
bench/event_stream_api.py) on a fresh store (SQLite file, or a schema of its own in PostgreSQL).
The bench writes a pipeline run and, while it measures, appends entries to its log as its
workflow's activities would (`--rate` per second, one transaction each, like status changes
of its targets). Phases of `--seconds` each, in this order, in the same run:

  baseline idle      0 subscribers, nothing written
  baseline writing   0 subscribers, `--rate` entries/s written
  subscribers idle   N SSE subscribers connected, nothing written
  subscribers writing N subscribers, `--rate` entries/s written

For each: SQL statements per second the API process sent (counted inside it by a SQLAlchemy
event listener) and its CPU seconds per wall second (/proc). Then the run's terminal entry is
written and every stream must end, having received every entry exactly once in order.

Progress goes to stderr; the last stdout line is the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.databases import describe, fresh_store  # noqa: E402
from bench.fanout import BASE, Processes, cpu_seconds, free_port, log, run_bench  # noqa: E402
from store.db import make_engine, transaction  # noqa: E402
from store.definitions.tenants import create_token, ensure_enterprise  # noqa: E402
from store.migrations import upgrade  # noqa: E402
from store.runs.tables import PipelineRun, StatusEvent  # noqa: E402
from store.types import utcnow  # noqa: E402

_LOG = StatusEvent.__table__  # type: ignore[attr-defined]
_ID_LINE = re.compile(rb"^id: (\d+)\r?$", re.M)
_END = re.compile(rb"^event: end\r?$", re.M)


def seed(engine: Engine, replayed: int) -> tuple[str, UUID]:
    """(API key, run id): a running pipeline run with `replayed` entries in its log already."""
    enterprise = ensure_enterprise(engine, "bench")
    key = create_token(engine, enterprise.id, "bench")
    run = PipelineRun(enterprise_id=enterprise.id, pipeline_id=uuid4(), pipeline_name="bench",
                      run_number=1, status="running")
    with transaction(engine) as session:
        session.add(run)
    for _ in range(replayed):
        append(engine, run.id)
    return key, run.id


def append(engine: Engine, run_id: UUID, to_status: str = "running",
           kind: str = "target_run") -> int:
    with transaction(engine) as session:
        return int(session.execute(insert(_LOG).values(
            pipeline_run_id=run_id, kind=kind, run_id=uuid4(), from_status="queued",
            to_status=to_status, reason="", at=utcnow()).returning(_LOG.c.id)).scalar_one())


@dataclass
class Subscriber:
    ids: list[int] = field(default_factory=list)
    received: dict[int, float] = field(default_factory=dict)  # id -> when (monotonic)
    ended: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""


async def subscribe(port: int, key: str, run_id: UUID, sub: Subscriber) -> None:
    """One SSE client on a raw socket (light enough for a thousand in one process): reads the
    stream to its end, keeping every event id."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {BASE}/runs/{run_id}/events HTTP/1.1\r\nHost: bench\r\n"
                     f"Authorization: Token {key}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        pending = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            sub.connected.set()
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            whole, pending = pending[:cut], pending[cut:]
            now = time.monotonic()
            for found in _ID_LINE.findall(whole):
                sub.ids.append(int(found))
                sub.received.setdefault(int(found), now)
            if _END.search(whole):
                sub.ended = True
                break
        writer.close()
    except (OSError, asyncio.IncompleteReadError) as err:
        sub.error = f"{type(err).__name__}: {err}"
    finally:
        sub.connected.set()


@dataclass
class Figures:
    seconds: float
    statements_per_s: float
    api_cpu_per_s: float
    written_per_s: float


async def measure(http: httpx.AsyncClient, api_pid: int, engine: Engine, run_id: UUID,
                  seconds: float, rate: float, label: str,
                  written_at: dict[int, float] | None = None) -> Figures:
    async def statements() -> int:
        return int((await http.get("/bench/queries")).json()["statements"])

    before, cpu0, t0 = await statements(), cpu_seconds(api_pid), time.monotonic()
    written = 0
    while (elapsed := time.monotonic() - t0) < seconds:
        if rate > 0 and written < elapsed * rate:
            entry_id = await asyncio.to_thread(append, engine, run_id)
            if written_at is not None:
                written_at[entry_id] = time.monotonic()
            written += 1
        else:
            await asyncio.sleep(min(0.01, 1 / rate) if rate else 0.1)
    wall = time.monotonic() - t0
    # The counter's own route reads nothing from the store: it adds no statements.
    figures = Figures(round(wall, 2), round((await statements() - before) / wall, 2),
                      round((cpu_seconds(api_pid) - cpu0) / wall, 3), round(written / wall, 1))
    log(f"{label}: {figures.statements_per_s} statements/s, API CPU {figures.api_cpu_per_s} "
        f"s/s, {figures.written_per_s} entries/s written")
    return figures


async def bench(procs: Processes, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(args.database, work) as url:
        engine = make_engine(url)
        upgrade(engine)
        key, run_id = seed(engine, args.replayed)
        port = free_port()
        api = procs.start("api", [sys.executable, "-m", "uvicorn", "bench.event_stream_api:app",
                                  "--host", "127.0.0.1", "--port", str(port), "--log-level",
                                  "warning", "--backlog", "4096"], work / "api.log",
                          env={**_env(), "FLEETPIPE_DATABASE_URL": url})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                procs.check_alive("api")
                try:
                    if (await http.get("/bench/queries")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the API did not answer within 60 s")
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # past start-up work
            phases = {
                "baseline_idle": await measure(http, api.pid, engine, run_id, args.seconds, 0,
                                               "baseline idle (0 subscribers)"),
                "baseline_writing": await measure(http, api.pid, engine, run_id, args.seconds,
                                                  args.rate, "baseline writing"),
            }
            subs = [Subscriber() for _ in range(args.subscribers)]
            statements0 = int((await http.get("/bench/queries")).json()["statements"])
            cpu0, t0 = cpu_seconds(api.pid), time.monotonic()
            tasks = [asyncio.create_task(subscribe(port, key, run_id, s)) for s in subs]
            async with asyncio.timeout(120):
                await asyncio.gather(*(s.connected.wait() for s in subs))
                while min(len(s.ids) for s in subs) < args.replayed:
                    await asyncio.sleep(0.2)
            connect_s = time.monotonic() - t0
            connect_cpu = cpu_seconds(api.pid) - cpu0
            connect_statements = int((await http.get("/bench/queries")).json()["statements"]
                                     ) - statements0
            errors = [s.error for s in subs if s.error]
            log(f"{args.subscribers} subscribers connected and replayed {args.replayed} "
                f"entries in {connect_s:.1f} s ({len(errors)} errors): {connect_statements} "
                f"statements, API CPU {connect_cpu:.1f} s")
            await asyncio.sleep(2)
            phases["subscribers_idle"] = await measure(
                http, api.pid, engine, run_id, args.seconds, 0, "subscribers idle")
            written_at: dict[int, float] = {}
            phases["subscribers_writing"] = await measure(
                http, api.pid, engine, run_id, args.seconds, args.rate, "subscribers writing",
                written_at)
            await asyncio.to_thread(append, engine, run_id, "success", "pipeline_run")
            async with asyncio.timeout(120):
                await asyncio.gather(*tasks)
        expected = _log_ids(engine, run_id)
        complete = sum(1 for s in subs if s.ended and s.ids[:-1] == expected
                       and s.ids[-1] == expected[-1])
        engine.dispose()
    lags = sorted(s.received[i] - at for s in subs for i, at in written_at.items()
                  if i in s.received)
    result = {
        "database": describe(args.database), "subscribers": args.subscribers,
        "rate_per_s": args.rate, "seconds": args.seconds, "replayed": args.replayed,
        "connect_and_replay_s": round(connect_s, 1), "errors": len(errors),
        "connect_statements": connect_statements, "connect_api_cpu_s": round(connect_cpu, 1),
        "streams_complete_and_ended": complete, "log_entries": len(expected),
        "delivery_lag_p50_s": round(lags[len(lags) // 2], 3) if lags else None,
        "delivery_lag_p99_s": round(lags[int(len(lags) * 0.99)], 3) if lags else None,
        **{f"{name}_{k}": v for name, p in phases.items() for k, v in p.__dict__.items()
           if k != "seconds"},
    }
    if complete != args.subscribers:
        raise RuntimeError(f"only {complete} of {args.subscribers} streams got every entry "
                           f"once and ended: {result}")
    return result


def _log_ids(engine: Engine, run_id: UUID) -> list[int]:
    with engine.connect() as connection:
        return [int(i) for i in connection.execute(
            _LOG.select().with_only_columns(_LOG.c.id).where(_LOG.c.pipeline_run_id == run_id)
            .order_by(_LOG.c.id)).scalars()]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLEETPIPE_DATABASE_URL", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="log entries written per second while writing")
    parser.add_argument("--replayed", type=int, default=50,
                        help="entries in the run's log before the subscribers connect")
    parser.add_argument("--database", default="", help="a postgresql:// URL (default SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()

    def body(procs: Processes, work: Path) -> int:
        result = asyncio.run(bench(procs, work, args))
        print(json.dumps(result), flush=True)
        return 0

    return run_bench("fleetpipe-event-stream-", args.keep, body)


if __name__ == "__main__":
    raise SystemExit(main())
