"""Bare Temporal, for comparison: a tree of child workflows whose leaves each run one trivial
activity (the baseline shape measured in docs/architecture.md: at most 100 children per parent).

`python -m bench.baseline --address HOST:PORT --task-queue Q` runs its worker in a process of
its own (as the product's worker runs in one), with the product worker's concurrency limits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

NODE_WORKFLOW = "BenchTreeNode"
LEAF_WORKFLOW = "BenchTreeLeaf"
NOOP_ACTIVITY = "bench_noop"
FANOUT = 100  # children per parent at most


def subtree_sizes(count: int, fanout: int = FANOUT) -> list[int]:
    """How `count` leaves split among a node's children: at most `fanout` children, each
    holding at most fanout**k leaves (so a subtree is itself a valid tree)."""
    chunk = 1
    while -(-count // chunk) > fanout:
        chunk *= fanout
    return [min(chunk, count - start) for start in range(0, count, chunk)]


@activity.defn(name=NOOP_ACTIVITY)
async def noop(value: int) -> int:
    return value


@workflow.defn(name=LEAF_WORKFLOW)
class TreeLeaf:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(
            NOOP_ACTIVITY, value, start_to_close_timeout=timedelta(seconds=60),
            result_type=int)


@workflow.defn(name=NODE_WORKFLOW)
class TreeNode:
    """A node of `count` leaves: leaf children if count <= FANOUT, else node children. The
    root is a node too."""

    @workflow.run
    async def run(self, count: int) -> int:
        me = workflow.info().workflow_id
        sizes = subtree_sizes(count)
        if all(size == 1 for size in sizes):
            calls = [workflow.execute_child_workflow(LEAF_WORKFLOW, i, id=f"{me}-l{i}",
                                                     result_type=int)
                     for i in range(len(sizes))]
        else:
            calls = [workflow.execute_child_workflow(NODE_WORKFLOW, size, id=f"{me}-n{i}",
                                                     result_type=int)
                     for i, size in enumerate(sizes)]
        done = await asyncio.gather(*calls)
        return len(done) if all(size == 1 for size in sizes) else sum(done)


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The same limits as the product worker (worker.py), so the comparison is like for like.
    async with Worker(client, task_queue=task_queue,
                      workflows=[TreeNode, TreeLeaf], activities=[noop],
                      max_concurrent_activities=200, max_concurrent_workflow_tasks=100,
                      graceful_shutdown_timeout=timedelta(seconds=5)):
        print("baseline worker polling", task_queue, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))
    # Shut down cleanly above; skip interpreter finalization, where the SDK's native runtime
    # was seen to abort (PyGILState_Release) after a clean worker shutdown.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
