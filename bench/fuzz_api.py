"""Fuzz the live API with Schemathesis, on SQLite and on PostgreSQL.

    .venv/bin/python bench/fuzz_api.py [--databases sqlite,postgres] [--examples 12]
                                       [--budget 120] [--seed 0]

For each database it starts the real processes (a Temporal dev server from the venv, shared;
then per database `python worker.py` and `uvicorn api.app:app` on a fresh store), makes real
objects through the API (devices, a group, a pipeline with an automatic and a manual stage, its
target and operation lists, a run finished up to its manual gate), and feeds their ids to the
path parameters of every operation of the live OpenAPI (`/openapi.json`). Each operation gets
`--examples` positive and as many negative cases (Schemathesis generates bodies and queries from
the schema, and breaks them for the negative ones); deletions go last so the objects live for
the rest. Every response is checked: not a server error (5xx), conforming to its declared
schema, a declared status code, a declared content type.

Each operation gets its share of `--budget` seconds per database (what one leaves unused
goes to the rest); past it, it generates no more cases. Printed per database and
in total: operations, requests, 5xx, schema violations, undeclared statuses and content types,
with the first cases of each (as curl commands). Exits 1 on any 5xx or violation, 0 otherwise.
Not part of the test suite: `.ci/run` runs it as its own step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import schemathesis  # noqa: E402
import sqlalchemy  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.core.result import Err  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench.fanout import Processes, child_env, connect, free_port, temporal_argv, wait_for_log  # noqa: E402
from store.db import make_engine  # noqa: E402
from store.definitions.tenants import create_token, ensure_enterprise  # noqa: E402
from store.migrations import upgrade  # noqa: E402
from workflows.codec import new_key_entry  # noqa: E402

BASE = "/api/pipelines/v0"
INSTALL = {"operation_type": "INSTALL",
           "args": {"package_name": "com.example.app", "app_version": "1.2.3"}}
CHECKS: dict[str, Callable[..., Any]] = {
    "schema violations": response_schema_conformance,
    "undeclared statuses": status_code_conformance,
    "undeclared content types": content_type_conformance,
}
SHOWN_PER_KIND = 3


@dataclass
class Counts:
    operations: int = 0
    requests: int = 0
    server_errors: int = 0
    generation_errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, text: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < SHOWN_PER_KIND:
            shown.append(text)

    def add(self, other: Counts) -> None:
        self.operations += other.operations
        self.requests += other.requests
        self.server_errors += other.server_errors
        self.generation_errors += other.generation_errors
        self.failures.update(other.failures)
        self.statuses.update(other.statuses)

    def line(self) -> str:
        return (f"operations={self.operations} requests={self.requests} "
                f"5xx={self.server_errors} "
                f"schema_violations={self.failures['schema violations']} "
                f"undeclared_statuses={self.failures['undeclared statuses']} "
                f"undeclared_content_types={self.failures['undeclared content types']}")

    @property
    def bad(self) -> bool:
        return self.server_errors > 0 or sum(self.failures.values()) > 0


# ---- the objects the path parameters name ------------------------------------------------------


def _content(response: httpx.Response, code: int = 200) -> Any:
    if response.status_code != code:
        raise RuntimeError(f"{response.request.method} {response.request.url} answered "
                           f"{response.status_code}: {response.text[:500]}")
    return response.json()["content"]


def seed_objects(http: httpx.Client) -> dict[str, str]:
    """Real objects for every path parameter, by its name (`groups_list_id`: the GROUPS list
    the device-group paths of a target list need)."""
    devices = [_content(http.post("/devices", json={
        "name": f"fuzz-{i}", "attributes": {"sim_behavior": "succeed"}}), 201)["id"]
        for i in range(3)]
    group = _content(http.post("/devicegroups", json={"name": "fuzz",
                                                      "device_ids": devices[:2]}), 201)
    pipeline = _content(http.post("/pipelines", json={"name": "fuzz", "stages": [
        {"name": "first", "trigger": "automatic", "device_ids": devices[:1],
         "operations": [INSTALL]},
        {"name": "gate", "trigger": "manual", "device_ids": devices[1:2],
         "operations": [{"operation_type": "REBOOT"}]},
    ]}), 201)
    first = pipeline["stages"][0]
    groups_list = _content(http.post(f"/pipelines/{pipeline['id']}/targetlists", json={
        "name": "groups", "target_list_type": "GROUPS"}), 201)
    _content(http.post(f"/pipelines/{pipeline['id']}/targetlists/{groups_list['id']}"
                       "/devicegroups", json={"device_group_id": group["id"]}), 201)
    operation_list_id = first["operation_list_ids"][0]
    operation = _content(http.get(f"/operationlists/{operation_list_id}/operations"))["results"][0]
    run = _content(http.post(f"/pipelines/{pipeline['id']}/runs", json={}))
    deadline = time.monotonic() + 120
    while _content(http.get(f"/pipelines/{pipeline['id']}/runs/{run['id']}"))["status"] != (
            "waiting"):
        if time.monotonic() > deadline:
            raise RuntimeError("the seed run did not reach its manual gate within 120 s")
        time.sleep(0.3)
    stage_run = _content(http.get(f"/runs/{run['id']}/stageruns?status=success"))["results"][0]
    target_run = _content(http.get(f"/stageruns/{stage_run['id']}/targetruns"))["results"][0]
    stage_run_operation = _content(
        http.get(f"/stageruns/{stage_run['id']}/operations"))["results"][0]
    return {
        "device_id": devices[2], "device_group_id": group["id"], "pipeline_id": pipeline["id"],
        "stage_id": first["id"], "target_list_id": first["target_list_ids"][0],
        "groups_list_id": groups_list["id"], "target_id": devices[0],
        "operation_list_id": operation_list_id, "operation_id": operation["id"],
        "pipeline_run_id": run["id"], "stage_run_id": stage_run["id"],
        "target_run_id": target_run["id"], "command_id": target_run["command_id"],
        "stage_run_operation_id": stage_run_operation["id"],
    }


def path_parameters(path: str, names: list[str], objects: dict[str, str]) -> dict[str, str]:
    chosen = {name: objects[name] for name in names if name in objects}
    if "/targetlists/{target_list_id}/devicegroups" in path:
        chosen["target_list_id"] = objects["groups_list_id"]
    if "run_id" in names:  # reference 002's routes name the pipeline run `run_id`
        chosen["run_id"] = objects["pipeline_run_id"]
    return chosen


# ---- fuzzing -----------------------------------------------------------------------------------


def fuzz_operation(operation: Any, fixed: dict[str, str], api_url: str, headers: dict[str, str],
                   examples: int, deadline: float, counts: Counts, rng_seed: int) -> None:
    def check(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        # Every case carries the key: the fuzzing is of the API behind authentication.
        case.headers = {**(case.headers or {}), **headers}
        response = case.call(base_url=api_url, timeout=60)
        counts.requests += 1
        counts.statuses[response.status_code] += 1
        curl = case.as_curl_command(headers=headers)
        if response.status_code >= 500:
            counts.server_errors += 1
            counts.note("5xx", f"{response.status_code}: {curl}\n    {response.text[:300]}")
        for kind, function in CHECKS.items():
            try:
                case.validate_response(response, checks=[function], headers=headers)
            except FailureGroup as group:
                counts.failures[kind] += 1
                counts.note(kind, f"{group.exceptions[0].title}: {curl}\n    "
                                  f"{str(group.exceptions[0])[:400]}")

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        if time.monotonic() > deadline:
            return
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        run = seed(rng_seed)(settings(
            max_examples=examples, deadline=None, database=None, derandomize=False,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
        )(given(case=strategy)(check)))
        try:
            run()
        except Exception as exc:  # the schema gave Hypothesis nothing to generate from
            counts.generation_errors += 1
            counts.note("generation errors", f"{operation.label} ({mode.value}): "
                                             f"{type(exc).__name__}: {str(exc)[:200]}")


def fuzz(api_url: str, key: str, objects: dict[str, str], examples: int, budget: float,
         rng_seed: int) -> Counts:
    schema = schemathesis.openapi.from_url(api_url.removesuffix(BASE) + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation Schemathesis cannot read is a defect too
            raise SystemExit(f"the OpenAPI has an operation Schemathesis cannot use: "
                             f"{result.err()}")
        operations.append(result.ok())
    # Cancels, then deletions, last: every other operation sees the objects alive (and the
    # seed run still waiting at its gate).
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path.endswith("/cancel")))
    headers = {"Authorization": f"Token {key}"}
    counts = Counts()
    deadline = time.monotonic() + budget
    for index, operation in enumerate(operations):
        # Each operation gets its share of what is left, so a slow machine fuzzes every
        # operation with fewer cases rather than skipping the last ones.
        share = (deadline - time.monotonic()) / (len(operations) - index)
        counts.operations += 1
        names = [p.name for p in operation.path_parameters]
        fixed = path_parameters(operation.path, names, objects)
        fuzz_operation(operation, fixed, api_url.removesuffix(BASE), headers, examples,
                       time.monotonic() + max(share, 0.5), counts, rng_seed)
    return counts


# ---- the processes -----------------------------------------------------------------------------


def postgres_store(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema in PostgreSQL: (the store's URL, what drops it)."""
    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{name}"'))
    joiner = "&" if "?" in admin_url else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    return f"{admin_url}{joiner}options=-csearch_path%3D{name}", drop


def wait_for_api(procs: Processes, api_url: str, key: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        procs.check_alive("api")
        try:
            if httpx.get(f"{api_url}/runs", headers={"Authorization": f"Token {key}"},
                         timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the API did not answer within 60 s")
        time.sleep(0.3)


def fuzz_database(kind: str, db_url: str, address: str, work: Path, args: argparse.Namespace,
                  procs: Processes) -> Counts:
    engine = make_engine(db_url)
    upgrade(engine)
    key = create_token(engine, ensure_enterprise(engine, "fuzz").id, "fuzz")
    engine.dispose()
    api_port = free_port()
    env = child_env({"FLEETPIPE_TEMPORAL_ADDRESS": address, "FLEETPIPE_DATABASE_URL": db_url,
                     "FLEETPIPE_DATA_DIR": str(work / f"data-{kind}"),
                     "FLEETPIPE_TASK_QUEUE": f"fuzz-{kind}-{uuid.uuid4().hex[:6]}",
                     # So /codec/* is fuzzed as deployed (without keys it answers 503).
                     "FLEETPIPE_CODEC_KEYS": new_key_entry("fuzz")})
    procs.start("worker", [sys.executable, str(REPO / "worker.py")], work / f"worker-{kind}.log",
                env=env)
    procs.start("api", [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1",
                        "--port", str(api_port), "--log-level", "warning"],
                work / f"api-{kind}.log", env=env)
    try:
        asyncio.run(wait_for_log(procs, "worker", "worker polling task queue", 60))
        api_url = f"http://127.0.0.1:{api_port}{BASE}"
        wait_for_api(procs, api_url, key)
        with httpx.Client(base_url=api_url, headers={"Authorization": f"Token {key}"},
                          timeout=60) as http:
            objects = seed_objects(http)
        counts = fuzz(api_url, key, objects, args.examples, args.budget, args.seed)
        procs.check_alive("api", "worker")
        return counts
    finally:
        procs.stop("api")
        procs.stop("worker")


def report(kind: str, counts: Counts) -> None:
    print(f"{kind}: {counts.line()} generation_errors={counts.generation_errors}")
    print(f"  answers by status: {dict(sorted(counts.statuses.items()))}")
    for what, shown in counts.examples.items():
        for text in shown:
            print(f"  {what}: {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres")
    parser.add_argument("--examples", type=int, default=12,
                        help="positive (and as many negative) cases per operation")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds of fuzzing per database, at most")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (reproducible runs)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "FLEETPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-fuzz-"))
    procs = Processes()
    total = Counts()
    try:
        port = free_port()
        procs.start("temporal", temporal_argv(work / "temporal.db", port, free_port(),
                                              free_port()), work / "temporal.log")
        address = f"127.0.0.1:{port}"
        asyncio.run(connect(address, time.monotonic() + 60))
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
            if kind == "sqlite":
                counts = fuzz_database(kind, f"sqlite:///{work / 'fuzz.db'}", address, work,
                                       args, procs)
            elif kind == "postgres":
                db_url, drop = postgres_store(args.postgres_url)
                try:
                    counts = fuzz_database(kind, db_url, address, work, args, procs)
                finally:
                    drop()
            else:
                parser.error(f"unknown database {kind!r}: use sqlite or postgres")
            report(kind, counts)
            total.add(counts)
    finally:
        procs.stop_all()
    print(f"fuzz total: {total.line()} (logs in {work})")
    return 1 if total.bad else 0


if __name__ == "__main__":
    sys.exit(main())
