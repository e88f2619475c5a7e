"""What bench/multiproc.py checks once its run is over: the store's own account (nothing lost,
no device commanded twice) and what each API process serves (the same for all of them)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from devices.sim_records import SimDelivery
from domain.ids import command_id
from domain.statuses import TERMINAL, RunKind
from store.db import make_engine, transaction
from store.runs.commands import Command
from store.runs.tables import TargetRun

PAGE = 500


@dataclass
class StoreFacts:
    target_runs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    not_terminal: int = 0
    commands: int = 0
    # Commands whose id is not the one of their target run's attempt (a stray second command).
    stray_commands: int = 0
    target_runs_with_two_commands: int = 0
    deliveries: int = 0  # sim_delivery rows of this run's commands: one per command started
    devices_commanded_twice: int = 0
    devices_never_commanded: int = 0
    ids: list[str] = field(default_factory=list)  # target run ids, sorted


def store_facts(db_url: str, pipeline_run_id: str) -> StoreFacts:
    """Read straight from the store what the run left there."""
    facts = StoreFacts()
    run = UUID(pipeline_run_id)
    engine = make_engine(db_url)
    try:
        with transaction(engine) as session:
            targets = session.execute(
                select(col(TargetRun.id), col(TargetRun.status), col(TargetRun.attempt),
                       col(TargetRun.target_id))
                .where(col(TargetRun.pipeline_run_id) == run)).all()
            of_run = select(col(TargetRun.id)).where(col(TargetRun.pipeline_run_id) == run)
            commands = session.execute(
                select(col(Command.id), col(Command.target_run_id))
                .where(col(Command.target_run_id).in_(of_run.scalar_subquery()))).all()
            of_commands = select(col(Command.id)).where(
                col(Command.target_run_id).in_(of_run.scalar_subquery()))
            delivered = session.execute(
                select(SimDelivery.c.device_id, func.count())
                .where(SimDelivery.c.command_id.in_(of_commands.scalar_subquery()))
                .group_by(SimDelivery.c.device_id)).all()
    finally:
        engine.dispose()
    terminal = TERMINAL[RunKind.TARGET]
    facts.target_runs = len(targets)
    facts.statuses = dict(collections.Counter(t.status for t in targets))
    facts.not_terminal = sum(1 for t in targets if t.status not in terminal)
    facts.ids = sorted(str(t.id) for t in targets)
    facts.commands = len(commands)
    expected = {command_id(t.id, a) for t in targets for a in range(t.attempt + 1)}
    facts.stray_commands = sum(1 for c in commands if c.id not in expected)
    per_target = collections.Counter(c.target_run_id for c in commands)
    facts.target_runs_with_two_commands = sum(
        1 for t in targets if per_target[t.id] > t.attempt + 1)
    per_device = dict(delivered)
    facts.deliveries = sum(per_device.values())
    wanted = collections.Counter(t.target_id for t in targets)  # target runs per device
    facts.devices_commanded_twice = sum(1 for d, k in per_device.items() if k > wanted[d])
    facts.devices_never_commanded = sum(1 for d in wanted if d not in per_device)
    return facts


@dataclass
class ApiView:
    """One API process's answer for the run: comparable field by field with another's."""

    run: dict[str, Any] = field(default_factory=dict)
    stage_runs: list[dict[str, Any]] = field(default_factory=list)
    target_runs: list[tuple[str, str]] = field(default_factory=list)  # (id, status) in order
    count: int = 0  # the list's own `count`
    pages: int = 0


async def api_view(http: httpx.AsyncClient, api_url: str, headers: dict[str, str],
                   pipeline_id: str, run_id: str) -> ApiView:
    """The run, its stage runs and every target run of each, paged `PAGE` at a time through
    the list's own `next` links."""
    async def get(url: str, **params: Any) -> Any:
        response = await http.get(url, headers=headers, params=params or None)
        response.raise_for_status()
        return response.json()["content"]

    view = ApiView()
    run = await get(f"{api_url}/pipelines/{pipeline_id}/runs/{run_id}")
    view.run = {k: run.get(k) for k in ("id", "status", "status_reason")}
    stage_runs = (await get(f"{api_url}/runs/{run_id}/stageruns", limit=1000))["results"]
    for stage_run in stage_runs:
        view.stage_runs.append({k: stage_run.get(k) for k in (
            "id", "status", "device_count", "target_run_counts")})
        page = await get(f"{api_url}/stageruns/{stage_run['id']}/targetruns", limit=PAGE)
        view.count += page["count"]
        while True:
            view.pages += 1
            view.target_runs += [(t["id"], t["status"]) for t in page["results"]]
            if not page["next"]:
                break
            response = await http.get(page["next"], headers=headers)
            response.raise_for_status()
            page = response.json()["content"]
    return view


def problems(devices: int, operations: int, facts: StoreFacts,
             views: dict[str, ApiView]) -> list[str]:
    """Everything that is not as it must be; empty means PASS."""
    found = []
    want = devices * operations
    if facts.target_runs != want:
        found.append(f"{facts.target_runs} target runs in the store, expected {want}")
    if facts.not_terminal:
        found.append(f"{facts.not_terminal} target runs not terminal: {facts.statuses}")
    if facts.statuses.get("success", 0) != want:
        found.append(f"target runs by status {facts.statuses}, expected {want} success")
    if facts.commands != want or facts.stray_commands or facts.target_runs_with_two_commands:
        found.append(f"{facts.commands} commands ({facts.stray_commands} not of their "
                     f"attempt, {facts.target_runs_with_two_commands} target runs with more "
                     f"than one per attempt), expected {want}")
    if (facts.deliveries != facts.commands or facts.devices_commanded_twice
            or facts.devices_never_commanded):
        found.append(f"{facts.deliveries} deliveries for {facts.commands} commands: "
                     f"{facts.devices_commanded_twice} devices commanded twice, "
                     f"{facts.devices_never_commanded} never")
    names = sorted(views)
    first = views[names[0]]
    for name in names:
        view = views[name]
        ids = sorted(i for i, _ in view.target_runs)
        if view.count != want or ids != facts.ids or len(set(ids)) != len(ids):
            found.append(f"{name} lists {len(ids)} target runs ({len(set(ids))} distinct, "
                         f"count {view.count}); they are not the store's {want}")
        if view.run.get("status") != "success":
            found.append(f"{name} says the run is {view.run}")
    for name in names[1:]:
        other = views[name]
        for part in ("run", "stage_runs", "target_runs"):
            if getattr(other, part) != getattr(first, part):
                found.append(f"{name} and {names[0]} disagree on the {part.replace('_', ' ')}")
    return found
