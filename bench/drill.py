"""Fault drill: one real pipeline run of N simulated devices while its processes are killed.

    .venv/bin/python bench/drill.py                       # 1,000 devices, 20 worker kills,
                                                          # one 150 s Temporal outage, one API kill
    .venv/bin/python bench/drill.py --outages 5,60 --seed 7

It starts its own `temporal server start-dev` (fresh SQLite file in WAL mode, free ports), the
real worker (`python worker.py`) and the real API (`uvicorn api.app:app`) as separate
processes, writes the fleet straight into a fresh store and starts the run through the API.
Then it SIGKILLs the worker (restarting it each time), the API once, and the Temporal server
(down for each outage, then restarted on the same port and database), at random moments of
the run's progress (bench/faults/drill.py), waits for the run to end, and checks
(bench/faults/checks.py): every target run terminal, none lost, no device got a second
command, every workflow's result equals its store row, every history replays.

Progress goes to stderr; the last stdout line is the figures, ending PASS or FAIL; the exit
code is 0 only on PASS. Every wait is bounded; every process it started is stopped on exit,
failure or Ctrl-C. A drill is not part of the test suite (tests/reliability has a small one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.fanout import log  # noqa: E402
from bench.faults.drill import DrillConfig, DrillReport, run_drill, summary  # noqa: E402


def outages(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("outages are seconds, 0 or more")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = DrillConfig()
    parser.add_argument("--devices", type=int, default=defaults.devices)
    parser.add_argument("--operations", type=int, choices=(1, 2), default=defaults.operations)
    parser.add_argument("--window", type=int, default=defaults.window,
                        help="FLEETPIPE_STAGE_WINDOW (default %(default)s)")
    parser.add_argument("--slow-every", type=int, default=defaults.slow_every,
                        help="every n-th device answers after --slow-ms (0: none)")
    parser.add_argument("--slow-ms", type=int, default=defaults.slow_ms)
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--api-kills", type=int, default=defaults.api_kills)
    parser.add_argument("--outages", type=outages, default=defaults.outages_s,
                        help="seconds of each Temporal outage, comma-separated; the longest "
                        "comes last (default 150)")
    parser.add_argument("--seed", type=int, help="of the fault schedule (default: random)")
    parser.add_argument("--settle-timeout", type=float, default=defaults.settle_timeout_s,
                        help="seconds the run may take to end after the last fault")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, dbs)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.devices < 1 or args.window < 1:
        parser.error("--devices and --window must be at least 1")
    config = DrillConfig(devices=args.devices, operations=args.operations, window=args.window,
                         slow_every=args.slow_every, slow_ms=args.slow_ms,
                         worker_kills=args.worker_kills, api_kills=args.api_kills,
                         outages_s=args.outages, seed=args.seed,
                         settle_timeout_s=args.settle_timeout)
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-drill-"))
    log(f"work dir {work}")

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report: DrillReport | None = None
    code = 1
    try:
        report = asyncio.run(run_drill(config, work, log))
        if args.json:
            args.json.write_text(json.dumps(summary(report), indent=2, default=str) + "\n")
        for problem in report.problems:
            log(f"problem: {problem}")
        if report.verdict is not None and not report.verdict.passed:
            log(f"failed checks: {', '.join(report.verdict.failed_checks())}")
        print(report.line(), flush=True)
        code = 0 if report.passed else 1
    except KeyboardInterrupt:
        log("interrupted: every process was stopped")
        code = 130
    except Exception as err:
        log(f"drill broke before its checks: {type(err).__name__}: {err}")
        print(f"drill devices={config.devices} FAIL ({type(err).__name__}: {err})", flush=True)
    if not (report and report.passed) or args.keep:
        log(f"kept {work} (logs of every process incarnation, both databases)")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
