"""Experiment only: the product worker (`worker.py`, unchanged) with Temporal's workflow
sandbox switched off, to measure what the sandbox costs per target.

`bench/fanout.py --worker-variant unsandboxed` runs this instead of `worker.py`. It patches the
Worker class that worker.py uses to pass `workflow_runner=UnsandboxedWorkflowRunner()`; nothing
else differs. Not a recommendation to ship as is (see docs/benchmarks.md).
"""

from __future__ import annotations

import functools

from temporalio.worker import UnsandboxedWorkflowRunner

import worker

worker.Worker = functools.partial(  # type: ignore[assignment, misc]
    worker.Worker, workflow_runner=UnsandboxedWorkflowRunner())

if __name__ == "__main__":
    worker.main()
